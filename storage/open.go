package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver

	"github.com/nexus-suite/nexus/configs"
)

// SQLiteFileName is the database file that Open creates in the data
// directory when no database URL is configured.
const SQLiteFileName = "nexus.db"

// sqliteMemoryURL opens a private in-memory SQLite database.
const sqliteMemoryURL = "sqlite::memory:"

// File modes of the embedded database. The database holds sealed signing keys
// and sessions, so only the owner may read it.
const (
	dataDirMode    os.FileMode = 0o700
	sqliteFileMode os.FileMode = 0o600
)

// sqlitePragmas run on every new SQLite connection of the pool. WAL lets
// readers run beside the single writer, busy_timeout makes a writer wait up to
// 5 s for the lock instead of failing at once, and SQLite leaves foreign keys
// off unless each connection turns them on.
var sqlitePragmas = []string{
	"busy_timeout(5000)",
	"journal_mode(WAL)",
	"foreign_keys(ON)",
	"synchronous(NORMAL)",
}

// Open connects to the database that cfg selects and pings it once with ctx.
//
// An empty cfg.URL opens SQLite at <dataDir>/nexus.db, creating dataDir with
// mode 0700 and the file with mode 0600 when they are missing. A URL of the
// form sqlite:/path/to/file.db opens that file instead, and sqlite::memory:
// opens a private in-memory database on a single connection, for tests.
// A postgres:// or postgresql:// URL opens PostgreSQL through pgx. Any other
// scheme is an error.
//
// cfg.MaxOpenConns, cfg.MaxIdleConns and cfg.ConnMaxLifetime apply to both
// engines when they are positive. Errors name the engine and never contain
// the password of the URL.
func Open(ctx context.Context, cfg configs.Database, dataDir string) (*DB, error) {
	var (
		db  *DB
		err error
	)
	switch {
	case cfg.URL == "":
		db, err = openSQLiteFile(filepath.Join(dataDir, SQLiteFileName), true)
	case strings.HasPrefix(cfg.URL, "sqlite:"):
		db, err = openSQLiteURL(strings.TrimPrefix(cfg.URL, "sqlite:"))
	case strings.HasPrefix(cfg.URL, "postgres://"), strings.HasPrefix(cfg.URL, "postgresql://"):
		db, err = openPostgres(cfg.URL)
	default:
		return nil, fmt.Errorf("open database %s: unsupported URL scheme, want postgres://, postgresql:// or sqlite:", RedactURL(cfg.URL))
	}
	if err != nil {
		return nil, err
	}

	if cfg.MaxOpenConns > 0 && db.redacted != sqliteMemoryURL {
		db.SetMaxOpenConns(cfg.MaxOpenConns)
	}
	if cfg.MaxIdleConns > 0 {
		db.SetMaxIdleConns(cfg.MaxIdleConns)
	}
	if cfg.ConnMaxLifetime > 0 {
		db.SetConnMaxLifetime(cfg.ConnMaxLifetime)
	}

	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("ping %s database %s: %w", db.Dialect, db.Redacted(), redactError(err, cfg.URL))
	}
	return db, nil
}

// openSQLiteURL opens the target of a sqlite: URL: a file path or ":memory:".
func openSQLiteURL(target string) (*DB, error) {
	target = strings.TrimPrefix(target, "//")
	if target == "" {
		return nil, errors.New("open sqlite database: the URL sqlite: names no file, want sqlite:/path/to/file.db or sqlite::memory:")
	}
	if target != ":memory:" {
		return openSQLiteFile(target, false)
	}

	dsn := "file::memory:?" + sqliteQuery(false)
	conn, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite database :memory:: %w", err)
	}
	// Every connection to :memory: is a database of its own, so the pool
	// keeps exactly one.
	conn.SetMaxOpenConns(1)
	return &DB{DB: conn, Dialect: SQLite, redacted: sqliteMemoryURL}, nil
}

// openSQLiteFile opens the SQLite file at path, creating its directory when
// createDir is set and the file with mode 0600 when it is missing.
func openSQLiteFile(path string, createDir bool) (*DB, error) {
	dir := filepath.Dir(path)
	if createDir {
		if err := ensureDataDir(dir); err != nil {
			return nil, err
		}
	}

	file, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, sqliteFileMode)
	if err != nil {
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	if err := file.Close(); err != nil {
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}

	dsn := (&url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: sqliteQuery(true)}).String()
	conn, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	return &DB{DB: conn, Dialect: SQLite, redacted: "sqlite:" + path}, nil
}

// ensureDataDir creates dir with mode 0700 when it is missing. An existing
// directory keeps its mode.
func ensureDataDir(dir string) error {
	info, err := os.Stat(dir)
	if err == nil {
		if !info.IsDir() {
			return fmt.Errorf("create data directory %s: a file is in the way", dir)
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("check data directory %s: %w", dir, err)
	}

	if err := os.MkdirAll(dir, dataDirMode); err != nil {
		return fmt.Errorf("create data directory %s: %w", dir, err)
	}
	// MkdirAll applies the umask; set the mode exactly.
	if err := os.Chmod(dir, dataDirMode); err != nil {
		return fmt.Errorf("set mode of data directory %s: %w", dir, err)
	}
	return nil
}

// sqliteQuery returns the DSN parameters of the modernc driver. Transactions
// begin IMMEDIATE so that a writer waits for the lock at BEGIN, under
// busy_timeout, instead of failing with SQLITE_BUSY when a read transaction
// tries to become a write transaction.
func sqliteQuery(wal bool) string {
	query := url.Values{}
	for _, pragma := range sqlitePragmas {
		if !wal && strings.HasPrefix(pragma, "journal_mode") {
			continue
		}
		query.Add("_pragma", pragma)
	}
	query.Set("_txlock", "immediate")
	return query.Encode()
}

// openPostgres opens a pgx pool from a postgres:// URL.
func openPostgres(rawURL string) (*DB, error) {
	conn, err := sql.Open("pgx", rawURL)
	if err != nil {
		return nil, fmt.Errorf("open postgres database %s: %w", RedactURL(rawURL), redactError(err, rawURL))
	}
	return &DB{DB: conn, Dialect: Postgres, redacted: RedactURL(rawURL)}, nil
}

// RedactURL returns rawURL with the password of its user info and of a
// "password" query parameter replaced by "xxxxx". A URL that does not parse
// is returned as "<invalid URL>", because its text may contain a password.
func RedactURL(rawURL string) string {
	parsed, err := url.Parse(rawURL)
	if err != nil {
		return "<invalid URL>"
	}

	query := parsed.Query()
	if query.Has("password") {
		query.Set("password", "xxxxx")
		parsed.RawQuery = query.Encode()
	}
	return parsed.Redacted()
}

// urlPassword returns the passwords that rawURL carries, in user info or in
// a "password" query parameter.
func urlPassword(rawURL string) []string {
	parsed, err := url.Parse(rawURL)
	if err != nil {
		return nil
	}

	var passwords []string
	if password, ok := parsed.User.Password(); ok && password != "" {
		passwords = append(passwords, password, url.QueryEscape(password), url.PathEscape(password))
	}
	if password := parsed.Query().Get("password"); password != "" {
		passwords = append(passwords, password, url.QueryEscape(password))
	}
	return passwords
}

// redactError hides the password of rawURL in err's message, in case a
// driver quotes its connection string. errors.Is and errors.As still reach err.
func redactError(err error, rawURL string) error {
	passwords := urlPassword(rawURL)
	if len(passwords) == 0 {
		return err
	}
	return &redactedError{err: err, passwords: passwords}
}

type redactedError struct {
	err       error
	passwords []string
}

func (e *redactedError) Error() string {
	message := e.err.Error()
	for _, password := range e.passwords {
		message = strings.ReplaceAll(message, password, "xxxxx")
	}
	return message
}

func (e *redactedError) Unwrap() error { return e.err }
