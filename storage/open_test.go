package storage_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/storage"
)

func openSQLite(t *testing.T, dataDir string) *storage.DB {
	t.Helper()
	db, err := storage.Open(context.Background(), configs.Database{}, dataDir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOpenSQLiteCreatesPrivateFiles(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "nested", "data")
	db := openSQLite(t, dataDir)

	if db.Dialect != storage.SQLite {
		t.Errorf("dialect = %q, want %q", db.Dialect, storage.SQLite)
	}
	dirInfo, err := os.Stat(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if got := dirInfo.Mode().Perm(); got != 0o700 {
		t.Errorf("data dir mode = %o, want 700", got)
	}
	fileInfo, err := os.Stat(filepath.Join(dataDir, storage.SQLiteFileName))
	if err != nil {
		t.Fatal(err)
	}
	if got := fileInfo.Mode().Perm(); got != 0o600 {
		t.Errorf("database file mode = %o, want 600", got)
	}
}

func TestOpenSQLitePragmasOnEveryConnection(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t, t.TempDir())

	// Hold several connections at once so the pool must open new ones.
	var conns []interface{ Close() error }
	for i := 0; i < 3; i++ {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)

		var journalMode string
		var foreignKeys, busyTimeout, synchronous int
		if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&journalMode); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&foreignKeys); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busyTimeout); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&synchronous); err != nil {
			t.Fatal(err)
		}

		if journalMode != "wal" {
			t.Errorf("connection %d: journal_mode = %q, want wal", i, journalMode)
		}
		if foreignKeys != 1 {
			t.Errorf("connection %d: foreign_keys = %d, want 1", i, foreignKeys)
		}
		if busyTimeout != 5000 {
			t.Errorf("connection %d: busy_timeout = %d, want 5000", i, busyTimeout)
		}
		if synchronous != 1 {
			t.Errorf("connection %d: synchronous = %d, want 1 (NORMAL)", i, synchronous)
		}
	}
	for _, conn := range conns {
		conn.Close()
	}
}

func TestOpenExistingDataDirKeepsMode(t *testing.T) {
	dataDir := t.TempDir()
	if err := os.Chmod(dataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	openSQLite(t, dataDir)

	info, err := os.Stat(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o750 {
		t.Errorf("mode of an existing data dir = %o, want it unchanged at 750", got)
	}
}

func TestOpenDataDirIsAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	_, err := storage.Open(context.Background(), configs.Database{}, path)
	if err == nil {
		t.Fatal("Open with a file as data dir succeeded")
	}
}

func TestOpenSQLiteURLs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "custom.db")

	cases := []struct {
		name string
		url  string
	}{
		{"file", "sqlite:" + path},
		{"memory", "sqlite::memory:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db, err := storage.Open(ctx, configs.Database{URL: tc.url}, "")
			if err != nil {
				t.Fatalf("Open %s: %v", tc.url, err)
			}
			defer db.Close()

			if err := storage.Migrate(ctx, db, storage.CoreMigrations); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			if got := db.Redacted(); got != tc.url {
				t.Errorf("Redacted = %q, want %q", got, tc.url)
			}
		})
	}

	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file of the sqlite: URL: %v", err)
	}
}

func TestOpenAppliesPoolSettings(t *testing.T) {
	cfg := configs.Database{MaxOpenConns: 7, MaxIdleConns: 2, ConnMaxLifetime: time.Minute}
	db, err := storage.Open(context.Background(), cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	if got := db.Stats().MaxOpenConnections; got != 7 {
		t.Errorf("max open connections = %d, want 7", got)
	}
}

func TestOpenErrors(t *testing.T) {
	cases := []struct {
		name       string
		url        string
		wantEngine string
	}{
		{"unknown scheme", "mysql://root:s3cret-pw@127.0.0.1/db", "unsupported URL scheme"},
		{"postgres unreachable", "postgres://nexus:s3cret-pw@127.0.0.1:1/db?connect_timeout=2", "postgres"},
		{"password parameter", "postgres://127.0.0.1:1/db?user=nexus&password=s3cret-pw&connect_timeout=2", "postgres"},
		{"sqlite without path", "sqlite:", "sqlite"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := storage.Open(context.Background(), configs.Database{URL: tc.url}, "")
			if err == nil {
				t.Fatalf("Open %s succeeded", tc.name)
			}
			if strings.Contains(err.Error(), "s3cret-pw") {
				t.Errorf("error %q contains the password", err)
			}
			if !strings.Contains(err.Error(), tc.wantEngine) {
				t.Errorf("error %q does not mention %q", err, tc.wantEngine)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	cases := []struct {
		in   string
		want string
	}{
		{"postgres://nexus:s3cret@db:5432/nexus", "postgres://nexus:xxxxx@db:5432/nexus"},
		{"postgres://nexus@db/nexus", "postgres://nexus@db/nexus"},
		{"postgres://db/nexus?password=s3cret&sslmode=require", "postgres://db/nexus?password=xxxxx&sslmode=require"},
		{"redis://:s3cret@127.0.0.1:6379/0", "redis://:xxxxx@127.0.0.1:6379/0"},
		{"postgres://nexus:s3cret@db:5432/%zz", "<invalid URL>"},
	}
	for _, tc := range cases {
		if got := storage.RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
