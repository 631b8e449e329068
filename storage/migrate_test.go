package storage_test

import (
	"context"
	"testing"
	"testing/fstest"

	"github.com/nexus-suite/nexus/storage"
	"github.com/nexus-suite/nexus/storage/storagetest"
)

// exampleSet is a second module's migrations, with the same files on both engines.
func exampleSet() storage.MigrationSet {
	files := fstest.MapFS{
		"00001_widgets.sql": {Data: []byte("-- +goose Up\nCREATE TABLE widgets (id TEXT PRIMARY KEY);\n-- +goose Down\nDROP TABLE widgets;\n")},
		"00002_gadgets.sql": {Data: []byte("-- +goose Up\nCREATE TABLE gadgets (id TEXT PRIMARY KEY);\n-- +goose Down\nDROP TABLE gadgets;\n")},
	}
	return storage.MigrationSet{Name: "example", SQLite: files, Postgres: files}
}

func TestMigrationStatusCore(t *testing.T) {
	storagetest.Engines(t, func(t *testing.T, db *storage.DB) {
		states, err := storage.MigrationStatus(context.Background(), db, storage.CoreMigrations)
		if err != nil {
			t.Fatal(err)
		}

		sources := []string{"00001_core.sql", "00002_signing_key_activation.sql"}
		if len(states) != len(sources) {
			t.Fatalf("states = %+v, want %d", states, len(sources))
		}
		for i, state := range states {
			if state.Set != "core" {
				t.Errorf("set = %q, want core", state.Set)
			}
			if state.Version != int64(i+1) {
				t.Errorf("version = %d, want %d", state.Version, i+1)
			}
			if state.Source != sources[i] {
				t.Errorf("source = %q, want %s", state.Source, sources[i])
			}
			if !state.Applied {
				t.Errorf("core migration %s is pending, want applied", state.Source)
			}
			if state.AppliedAt.IsZero() {
				t.Errorf("applied time of %s is zero", state.Source)
			}
		}
	})
}

func TestMigrateTwiceIsNoop(t *testing.T) {
	storagetest.Engines(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		set := exampleSet()

		before, err := storage.MigrationStatus(ctx, db, set)
		if err != nil {
			t.Fatal(err)
		}
		for _, state := range before {
			if state.Applied {
				t.Errorf("version %d applied before Migrate", state.Version)
			}
		}

		if err := storage.Migrate(ctx, db, set); err != nil {
			t.Fatalf("first Migrate: %v", err)
		}
		first, err := storage.MigrationStatus(ctx, db, storage.CoreMigrations, set)
		if err != nil {
			t.Fatal(err)
		}
		if err := storage.Migrate(ctx, db, storage.CoreMigrations, set); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		second, err := storage.MigrationStatus(ctx, db, storage.CoreMigrations, set)
		if err != nil {
			t.Fatal(err)
		}

		if len(first) != 4 {
			t.Fatalf("states = %+v, want 4 (core 1 and 2, example 1 and 2)", first)
		}
		for i := range first {
			if !first[i].Applied {
				t.Errorf("%s version %d pending after Migrate", first[i].Set, first[i].Version)
			}
			if first[i] != second[i] {
				t.Errorf("state changed by the second Migrate: %+v, then %+v", first[i], second[i])
			}
		}
		if _, err := db.ExecContext(ctx, "INSERT INTO gadgets (id) VALUES ($1)", "g1"); err != nil {
			t.Errorf("insert into a migrated table: %v", err)
		}
	})
}

func TestMigrationSetsHaveOwnVersionTables(t *testing.T) {
	storagetest.Engines(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if err := storage.Migrate(ctx, db, exampleSet()); err != nil {
			t.Fatal(err)
		}

		for _, table := range []string{"nexus_migrations_core", "nexus_migrations_example"} {
			var maxVersion int64
			if err := db.QueryRowContext(ctx, "SELECT MAX(version_id) FROM "+table).Scan(&maxVersion); err != nil {
				t.Errorf("read %s: %v", table, err)
				continue
			}
			// Both sets have two migrations, each numbered from 1.
			want := int64(2)
			if maxVersion != want {
				t.Errorf("%s max version = %d, want %d", table, maxVersion, want)
			}
		}
	})
}

func TestMigrateInvalidSet(t *testing.T) {
	db := storagetest.SQLite(t)
	files := exampleSet().SQLite

	cases := []struct {
		name string
		set  storage.MigrationSet
	}{
		{"bad name", storage.MigrationSet{Name: "Bad-Name", SQLite: files, Postgres: files}},
		{"empty name", storage.MigrationSet{SQLite: files, Postgres: files}},
		{"no sqlite files", storage.MigrationSet{Name: "postgres_only", Postgres: files}},
		{"empty folder", storage.MigrationSet{Name: "empty", SQLite: fstest.MapFS{}, Postgres: files}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := storage.Migrate(context.Background(), db, tc.set); err == nil {
				t.Error("Migrate succeeded, want an error")
			}
		})
	}
}

func TestMigrateConcurrentPostgres(t *testing.T) {
	db := storagetest.Postgres(t)
	ctx := context.Background()

	const nodes = 4
	errs := make(chan error, nodes)
	for range nodes {
		go func() { errs <- storage.Migrate(ctx, db, exampleSet()) }()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Migrate: %v", err)
		}
	}

	states, err := storage.MigrationStatus(ctx, db, exampleSet())
	if err != nil {
		t.Fatal(err)
	}
	for _, state := range states {
		if !state.Applied {
			t.Errorf("version %d pending after concurrent Migrate", state.Version)
		}
	}
}
