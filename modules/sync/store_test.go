package sync

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/storage"
	"github.com/nexus-suite/nexus/storage/storagetest"
)

// newTestStore returns a store on db with one user, usr_1.
func newTestStore(t *testing.T, db *storage.DB) *store {
	t.Helper()
	if err := storage.NewSessions(db).InsertUser(context.Background(), "usr_1", "usr_1@example.com", time.Now()); err != nil {
		t.Fatalf("insert user: %v", err)
	}
	return &store{db: db}
}

// putItems creates n items of size bytes each in collection "c".
func putItems(t *testing.T, s *store, n, size int) {
	t.Helper()
	ops := make([]itemOp, n)
	for i := range ops {
		ops[i] = itemOp{ID: fmt.Sprintf("i%02d", i), Payload: make([]byte, size), Match: precondition{IfNoneMatch: true}}
	}
	err := s.write(context.Background(), "usr_1", time.Now(), func(w *writeTx) error {
		_, err := applyOps(context.Background(), w, "c", ops, 1<<30)
		return err
	})
	if err != nil {
		t.Fatalf("write items: %v", err)
	}
}

func TestChangesPageLimits(t *testing.T) {
	storagetest.Engines(t, func(t *testing.T, db *storage.DB) {
		s := newTestStore(t, db)
		putItems(t, s, 10, 100)
		ctx := context.Background()

		cases := []struct {
			name     string
			since    int64
			limit    int
			maxBytes int64
			want     int
			wantMore bool
		}{
			{"by count", 0, 4, 1 << 20, 4, true},
			{"by bytes", 0, 10, 350, 3, true},
			{"one change over the byte limit", 0, 10, 50, 1, true},
			{"the rest", 7, 10, 1 << 20, 3, false},
			{"exactly the rest", 6, 4, 1 << 20, 4, false},
			{"nothing left", 10, 10, 1 << 20, 0, false},
		}
		for _, c := range cases {
			changes, more, err := s.changes(ctx, "usr_1", "c", c.since, c.limit, c.maxBytes)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if len(changes) != c.want {
				t.Errorf("%s: %d changes, want %d", c.name, len(changes), c.want)
			}
			if more != c.wantMore {
				t.Errorf("%s: more = %v, want %v", c.name, more, c.wantMore)
			}
			for i, change := range changes {
				if want := c.since + int64(i) + 1; change.Seq != want {
					t.Errorf("%s: change %d has sequence number %d, want %d", c.name, i, change.Seq, want)
				}
			}
		}
	}, (&Module{}).Migrations())
}

func TestPurgeRaisesPurgePointAndVersionFloor(t *testing.T) {
	storagetest.Engines(t, func(t *testing.T, db *storage.DB) {
		s := newTestStore(t, db)
		putItems(t, s, 3, 10)
		ctx := context.Background()
		deletedAt := time.Now()
		err := s.write(ctx, "usr_1", deletedAt, func(w *writeTx) error {
			_, err := applyOps(ctx, w, "c", []itemOp{{ID: "i01", Delete: true, Match: precondition{Version: 1}}}, 0)
			return err
		})
		if err != nil {
			t.Fatalf("delete: %v", err)
		}

		var purged int
		err = s.write(ctx, "usr_1", deletedAt, func(w *writeTx) error {
			var purgeErr error
			purged, purgeErr = w.purgeTombstones(ctx, deletedAt.Add(time.Millisecond))
			return purgeErr
		})
		if err != nil {
			t.Fatalf("purge: %v", err)
		}
		if purged != 1 {
			t.Errorf("purged %d tombstones, want 1", purged)
		}

		user, err := s.user(ctx, "usr_1")
		if err != nil {
			t.Fatalf("read user: %v", err)
		}
		want := userState{Seq: 4, BytesUsed: 20, ItemCount: 2, PurgedSeq: 4, VersionFloor: 2}
		if user != want {
			t.Errorf("user after the purge = %+v, want %+v", user, want)
		}
		collections, err := s.collections(ctx, "usr_1")
		if err != nil {
			t.Fatalf("read collections: %v", err)
		}
		if len(collections) != 1 || collections[0] != (collectionStats{Name: "c", MaxSeq: 3, Bytes: 20, Items: 2}) {
			t.Errorf("collections after the purge = %+v", collections)
		}
	}, (&Module{}).Migrations())
}
