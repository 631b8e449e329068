// Package storagetest gives tests of every package a migrated database and
// the Redis URL, on the services that the test machine runs.
//
// SQLite always works. PostgreSQL and Redis tests skip when the service is
// unreachable, unless NEXUS_TEST_SERVICES=required, where they fail. Every
// PostgreSQL database is a fresh schema, dropped at cleanup, and every Redis
// store has a random key prefix whose keys are deleted at cleanup, because
// other tests share both services at the same time.
package storagetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/storage"
	"github.com/nexus-suite/nexus/storage/kv"
)

// Environment variables that tests read.
const (
	// EnvServices set to "required" turns an unreachable service from a skip into a failure.
	EnvServices = "NEXUS_TEST_SERVICES"
	// EnvPostgresURL overrides DefaultPostgresURL.
	EnvPostgresURL = "NEXUS_TEST_POSTGRES_URL"
	// EnvRedisURL overrides DefaultRedisURL.
	EnvRedisURL = "NEXUS_TEST_REDIS_URL"
)

// Default service URLs of the test machine.
const (
	DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test"
	DefaultRedisURL    = "redis://127.0.0.1:6379/0"
)

// connectTimeout bounds each attempt to reach a service, so an unreachable
// one skips quickly.
const connectTimeout = 5 * time.Second

// Required reports whether NEXUS_TEST_SERVICES=required, where tests must
// fail instead of skipping when PostgreSQL or Redis is unreachable.
func Required() bool {
	return os.Getenv(EnvServices) == "required"
}

// SQLite returns a SQLite database in a temporary directory, migrated with
// CoreMigrations and then sets, and closed at cleanup.
func SQLite(t testing.TB, sets ...storage.MigrationSet) *storage.DB {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	dataDir := filepath.Join(t.TempDir(), "data")
	db, err := storage.Open(ctx, configs.Database{}, dataDir)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })

	migrate(t, ctx, db, sets)
	return db
}

// Postgres returns a PostgreSQL database whose pooled connections all use a
// fresh schema t_<random>, migrated with CoreMigrations and then sets. At
// cleanup it closes the pool and drops the schema with CASCADE. It connects
// to NEXUS_TEST_POSTGRES_URL, or DefaultPostgresURL when that is empty.
func Postgres(t testing.TB, sets ...storage.MigrationSet) *storage.DB {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	schemaURL := PostgresURL(t)
	db, err := storage.Open(ctx, configs.Database{URL: schemaURL}, "")
	if err != nil {
		t.Fatalf("open postgres schema %s: %v", storage.RedactURL(schemaURL), err)
	}
	t.Cleanup(func() { db.Close() })

	migrate(t, ctx, db, sets)
	return db
}

// PostgresURL creates a fresh, empty schema t_<random> and returns a URL
// whose connections use it, for tests that open the database themselves
// (a whole server, say). The schema is dropped with CASCADE at cleanup.
func PostgresURL(t testing.TB) string {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	baseURL := envOr(EnvPostgresURL, DefaultPostgresURL)
	admin := openPostgres(t, baseURL)
	defer admin.Close()

	schema := "t_" + randomHex(t, 8)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema %s on %s: %v", schema, admin.Redacted(), err)
	}
	t.Cleanup(func() { dropSchema(t, baseURL, schema) })

	schemaURL, err := withSearchPath(baseURL, schema)
	if err != nil {
		t.Fatalf("add search_path to %s: %v", storage.RedactURL(baseURL), err)
	}
	return schemaURL
}

// Engines runs fn as one subtest per engine, named "sqlite" and "postgres",
// each on a fresh database migrated with CoreMigrations and then sets.
func Engines(t *testing.T, fn func(t *testing.T, db *storage.DB), sets ...storage.MigrationSet) {
	t.Helper()

	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t, sets...)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t, sets...)) })
}

// Redis returns the URL of the test Redis: NEXUS_TEST_REDIS_URL, or
// DefaultRedisURL when that is empty. It skips the test when the server does
// not reply to PING, or fails it when Required.
func Redis(t testing.TB) string {
	t.Helper()

	redisURL := envOr(EnvRedisURL, DefaultRedisURL)
	client, err := newRedisClient(redisURL)
	if err != nil {
		unreachable(t, "redis", storage.RedactURL(redisURL), err)
	}
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if err := client.Do(ctx, client.B().Ping().Build()).Error(); err != nil {
		unreachable(t, "redis", storage.RedactURL(redisURL), err)
	}
	return redisURL
}

// RedisStore returns a kv.Redis on the test Redis with a random prefix,
// using c as its clock. At cleanup it deletes every key under the prefix and
// closes the store. It skips or fails like Redis.
func RedisStore(t testing.TB, c clock.Clock) *kv.Redis {
	t.Helper()

	redisURL := Redis(t)
	prefix := Prefix(t)

	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	store, err := kv.NewRedis(ctx, redisURL, prefix, c)
	if err != nil {
		t.Fatalf("open redis store: %v", err)
	}
	t.Cleanup(func() {
		store.Close()
		deleteRedisPrefix(t, redisURL, prefix)
	})
	return store
}

// Prefix returns a random key prefix, such as "test:3f9a0c1b2d4e5f60:", so
// that tests sharing one Redis never see each other's keys.
func Prefix(t testing.TB) string {
	t.Helper()
	return "test:" + randomHex(t, 8) + ":"
}

func migrate(t testing.TB, ctx context.Context, db *storage.DB, sets []storage.MigrationSet) {
	t.Helper()

	all := append([]storage.MigrationSet{storage.CoreMigrations}, sets...)
	if err := storage.Migrate(ctx, db, all...); err != nil {
		t.Fatalf("migrate %s: %v", db.Redacted(), err)
	}
}

// openPostgres opens rawURL, skipping or failing the test when it is unreachable.
func openPostgres(t testing.TB, rawURL string) *storage.DB {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()

	db, err := storage.Open(ctx, configs.Database{URL: rawURL}, "")
	if err != nil {
		unreachable(t, "postgres", storage.RedactURL(rawURL), err)
	}
	return db
}

func dropSchema(t testing.TB, baseURL, schema string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	admin, err := storage.Open(ctx, configs.Database{URL: baseURL}, "")
	if err != nil {
		t.Errorf("drop schema %s: %v", schema, err)
		return
	}
	defer admin.Close()

	if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
		t.Errorf("drop schema %s: %v", schema, err)
	}
}

// withSearchPath adds search_path=schema to a postgres URL; pgx sends
// unknown URL parameters as run-time parameters on every connection.
func withSearchPath(rawURL, schema string) (string, error) {
	parsed, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	query := parsed.Query()
	query.Set("search_path", schema)
	parsed.RawQuery = query.Encode()
	return parsed.String(), nil
}

func newRedisClient(redisURL string) (rueidis.Client, error) {
	option, err := rueidis.ParseURL(redisURL)
	if err != nil {
		return nil, err
	}
	option.DisableCache = true
	option.Dialer.Timeout = connectTimeout
	return rueidis.NewClient(option)
}

// deleteRedisPrefix deletes every key that starts with prefix. Prefix
// returns no glob characters, so the prefix is used as a SCAN pattern as is.
func deleteRedisPrefix(t testing.TB, redisURL, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	client, err := newRedisClient(redisURL)
	if err != nil {
		t.Errorf("delete redis keys %s*: %v", prefix, err)
		return
	}
	defer client.Close()

	var cursor uint64
	for {
		entry, err := client.Do(ctx, client.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Errorf("scan redis keys %s*: %v", prefix, err)
			return
		}
		if len(entry.Elements) > 0 {
			if err := client.Do(ctx, client.B().Del().Key(entry.Elements...).Build()).Error(); err != nil {
				t.Errorf("delete redis keys %s*: %v", prefix, err)
				return
			}
		}
		if entry.Cursor == 0 {
			return
		}
		cursor = entry.Cursor
	}
}

// unreachable skips the test, or fails it when Required.
func unreachable(t testing.TB, service, target string, err error) {
	t.Helper()

	if Required() {
		t.Fatalf("%s at %s is unreachable and %s=required: %v", service, target, EnvServices, err)
	}
	t.Skipf("%s at %s is unreachable, skipping (set %s=required to fail instead): %v", service, target, EnvServices, err)
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

func randomHex(t testing.TB, n int) string {
	t.Helper()

	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		t.Fatalf("read random bytes: %v", err)
	}
	return hex.EncodeToString(buf)
}
