package storage

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/crc64"
	"io/fs"
	"log/slog"
	"path"
	"regexp"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// MigrationSet is the migrations of one module, one folder of goose SQL
// files per engine, named NNNNN_description.sql. Each set records its
// applied versions in its own table, nexus_migrations_<Name>, so modules
// number their migrations independently.
//
// An applied migration is never edited: a change to the schema is a new file
// with the next version.
type MigrationSet struct {
	// Name identifies the set: lowercase letters, digits and underscores.
	Name string
	// SQLite and Postgres hold the migration files at their root.
	SQLite   fs.FS
	Postgres fs.FS
}

// EmbeddedMigrationSet returns the set name whose files are in the folders
// migrations/sqlite and migrations/postgres of files, the layout of every
// module's embedded migrations.
func EmbeddedMigrationSet(name string, files fs.FS) MigrationSet {
	sqlite, _ := fs.Sub(files, "migrations/sqlite")
	postgres, _ := fs.Sub(files, "migrations/postgres")
	return MigrationSet{Name: name, SQLite: sqlite, Postgres: postgres}
}

// MigrationState is the state of one migration of a set.
type MigrationState struct {
	Set     string
	Version int64
	// Source is the migration's file name, such as "00001_core.sql".
	Source  string
	Applied bool
	// AppliedAt is when the migration was applied, as the database recorded
	// it; zero when pending.
	AppliedAt time.Time
}

//go:embed migrations
var coreMigrationFiles embed.FS

// CoreMigrations creates the tables that the runtime itself uses: users,
// sessions and signing_keys.
var CoreMigrations = MigrationSet{
	Name:     "core",
	SQLite:   mustSub(coreMigrationFiles, "migrations/sqlite"),
	Postgres: mustSub(coreMigrationFiles, "migrations/postgres"),
}

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(fmt.Sprintf("storage: embedded migrations %s: %v", dir, err))
	}
	return sub
}

var setNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// migrationLockAttempts and migrationLockPeriodSeconds bound how long Migrate
// waits on PostgreSQL for another node that is migrating the same set:
// 300 attempts one second apart.
const (
	migrationLockAttempts      = 300
	migrationLockPeriodSeconds = 1
)

// Migrate applies every pending migration of each set, in the order given,
// and logs each applied migration through slog's default logger. Running it
// again applies nothing. On PostgreSQL, a session advisory lock per set and
// schema keeps two nodes from migrating the same set at once.
func Migrate(ctx context.Context, db *DB, sets ...MigrationSet) error {
	for _, set := range sets {
		provider, err := newProvider(ctx, db, set, true)
		if err != nil {
			return err
		}

		results, err := provider.Up(ctx)
		if err != nil {
			return fmt.Errorf("migrate set %s on %s: %w", set.Name, db.Dialect, err)
		}
		for _, result := range results {
			slog.InfoContext(ctx, "migration applied",
				slog.String("set", set.Name),
				slog.Int64("version", result.Source.Version),
				slog.String("source", sourceName(result.Source)),
				slog.String("duration", result.Duration.String()))
		}
	}
	return nil
}

// MigrationStatus lists every migration of each set, in the order given and
// then by version, with whether it is applied. It creates a set's version
// table when it is missing but applies nothing.
func MigrationStatus(ctx context.Context, db *DB, sets ...MigrationSet) ([]MigrationState, error) {
	var states []MigrationState
	for _, set := range sets {
		provider, err := newProvider(ctx, db, set, false)
		if err != nil {
			return nil, err
		}

		statuses, err := provider.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("read migration status of set %s on %s: %w", set.Name, db.Dialect, err)
		}
		for _, status := range statuses {
			states = append(states, MigrationState{
				Set:       set.Name,
				Version:   status.Source.Version,
				Source:    sourceName(status.Source),
				Applied:   status.State == goose.StateApplied,
				AppliedAt: status.AppliedAt,
			})
		}
	}
	return states, nil
}

// newProvider returns a goose provider for set on db, with the set's own
// version table and goose's logging off. withLock adds the PostgreSQL
// advisory lock.
func newProvider(ctx context.Context, db *DB, set MigrationSet, withLock bool) (*goose.Provider, error) {
	if !setNamePattern.MatchString(set.Name) {
		return nil, fmt.Errorf("migration set name %q is invalid: use lowercase letters, digits and underscores", set.Name)
	}
	table := "nexus_migrations_" + set.Name

	var (
		dialect goose.Dialect
		fsys    fs.FS
	)
	switch db.Dialect {
	case SQLite:
		dialect, fsys = goose.DialectSQLite3, set.SQLite
	case Postgres:
		dialect, fsys = goose.DialectPostgres, set.Postgres
	default:
		return nil, fmt.Errorf("migrate set %s: unknown dialect %q", set.Name, db.Dialect)
	}
	if fsys == nil {
		return nil, fmt.Errorf("migrate set %s: the set has no migrations for %s", set.Name, db.Dialect)
	}

	options := []goose.ProviderOption{
		goose.WithTableName(table),
		goose.WithVerbose(false),
		goose.WithDisableGlobalRegistry(true),
	}
	if withLock && db.Dialect == Postgres {
		locker, err := postgresLocker(ctx, db, table)
		if err != nil {
			return nil, fmt.Errorf("migrate set %s: %w", set.Name, err)
		}
		options = append(options, goose.WithSessionLocker(locker))
	}

	provider, err := goose.NewProvider(dialect, db.DB, fsys, options...)
	if errors.Is(err, goose.ErrNoMigrations) {
		return nil, fmt.Errorf("migrate set %s: no migration files for %s", set.Name, db.Dialect)
	}
	if err != nil {
		return nil, fmt.Errorf("migrate set %s: %w", set.Name, err)
	}
	return provider, nil
}

// postgresLocker returns an advisory lock whose id is the CRC-64 of the
// database, schema and version table names, so that different sets and
// schemas take different locks unless their hashes collide.
func postgresLocker(ctx context.Context, db *DB, table string) (lock.SessionLocker, error) {
	var database, schema string
	row := db.QueryRowContext(ctx, "SELECT current_database(), COALESCE(current_schema(), '')")
	if err := row.Scan(&database, &schema); err != nil {
		return nil, fmt.Errorf("read current schema: %w", err)
	}

	id := crc64.Checksum([]byte(database+"."+schema+"."+table), crc64.MakeTable(crc64.ECMA))
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(int64(id)),
		lock.WithLockTimeout(migrationLockPeriodSeconds, migrationLockAttempts),
	)
	if err != nil {
		return nil, fmt.Errorf("create migration lock: %w", err)
	}
	return locker, nil
}

// sourceName returns the file name of a migration source.
func sourceName(source *goose.Source) string {
	if source == nil {
		return ""
	}
	return path.Base(source.Path)
}
