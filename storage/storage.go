// Package storage opens the database that every module shares: SQLite
// (modernc.org/sqlite, the embedded default) or PostgreSQL (pgx/v5), and runs
// the migrations embedded in the binary.
//
// Queries are written once with PostgreSQL's numbered placeholders ($1, $2);
// the SQLite driver accepts the same form. Engine-only SQL sits next to its
// twin and switches on DB.Dialect.
package storage

import (
	"database/sql"
)

// Dialect names a database engine.
type Dialect string

// The supported engines.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is a connection pool with the engine it talks to.
type DB struct {
	*sql.DB
	Dialect Dialect
	// redacted names the database for logs, with any password replaced.
	redacted string
}

// Redacted returns the database's URL or file path with the password
// replaced, for logs and errors. It returns the dialect's name when the DB
// was not made by Open.
func (db *DB) Redacted() string {
	if db.redacted == "" {
		return string(db.Dialect)
	}
	return db.redacted
}
