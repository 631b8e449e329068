package skills

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/storage"
	"github.com/nexus-suite/nexus/storage/storagetest"
)

func TestSweepKeepsReferencedAndRecentBlobs(t *testing.T) {
	storagetest.Engines(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		fake := clock.NewFake(start)
		blobs := &dbBlobs{db: db, clock: fake}
		s := &store{db: db}
		if _, err := db.ExecContext(ctx, `INSERT INTO users (id, email, created_at) VALUES ('usr_sweep', 'sweep@example.com', 0)`); err != nil {
			t.Fatalf("insert user: %v", err)
		}

		// An archive of a published version, one of a rejected publish, and
		// one of a rejected publish that is stored again by a publish in flight.
		for _, digest := range []string{"sha256:used", "sha256:orphan", "sha256:again"} {
			if err := blobs.Put(ctx, digest, []byte(digest)); err != nil {
				t.Fatalf("put %s: %v", digest, err)
			}
		}
		version, _ := parseVersion("1.0.0")
		in := publishInput{
			UserID: "usr_sweep", Manifest: manifest{Name: "swept", Description: "A skill."}, Version: version,
			VersionText: "1.0.0", Digest: "sha256:used", Size: 1, UnpackedSize: 1, Files: 1, Now: start, MonthlyLimit: 10,
		}
		if _, _, err := s.publish(ctx, in); err != nil {
			t.Fatalf("publish: %v", err)
		}
		fake.Advance(2 * time.Hour)
		if err := blobs.Put(ctx, "sha256:again", []byte("sha256:again")); err != nil {
			t.Fatalf("put again: %v", err)
		}

		deleted, err := blobs.sweepUnreferenced(ctx, fake.Now().Add(-blobSweepGrace))
		if err != nil {
			t.Fatalf("sweep: %v", err)
		}
		if deleted != 1 {
			t.Errorf("sweep deleted %d blobs, want 1", deleted)
		}
		for digest, wantKept := range map[string]bool{"sha256:used": true, "sha256:orphan": false, "sha256:again": true} {
			_, err := blobs.Get(ctx, digest)
			if stored := err == nil; stored != wantKept {
				t.Errorf("%s stored = %v (%v), want %v", digest, stored, err, wantKept)
			}
			if err != nil && !errors.Is(err, errBlobNotFound) {
				t.Errorf("get %s: %v", digest, err)
			}
		}
	}, (&Module{}).Migrations())
}
