package skills

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/storage"
)

// errBlobNotFound is returned by BlobStore.Get for an unknown digest.
var errBlobNotFound = errors.New("blob not found")

// BlobStore keeps archive bytes by their digest. Put is idempotent: putting
// a digest that is already stored keeps the stored bytes. Implementations
// must be safe for concurrent use.
type BlobStore interface {
	Put(ctx context.Context, digest string, data []byte) error
	// Get returns errBlobNotFound when nothing is stored under digest.
	Get(ctx context.Context, digest string) ([]byte, error)
	// Delete removes the bytes of digest; deleting a missing digest is not an error.
	Delete(ctx context.Context, digest string) error
}

// dbBlobs stores blobs in the skill_blobs table, on either engine (BYTEA
// on PostgreSQL, BLOB on SQLite).
type dbBlobs struct {
	db    *storage.DB
	clock clock.Clock
}

func (b *dbBlobs) Put(ctx context.Context, digest string, data []byte) error {
	_, err := b.db.ExecContext(ctx,
		`INSERT INTO skill_blobs (digest, data, size, created_at) VALUES ($1, $2, $3, $4)
		 ON CONFLICT (digest) DO UPDATE SET created_at = excluded.created_at`,
		digest, data, len(data), b.clock.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("store blob %s: %w", digest, err)
	}
	return nil
}

func (b *dbBlobs) Get(ctx context.Context, digest string) ([]byte, error) {
	var data []byte
	err := b.db.QueryRowContext(ctx, `SELECT data FROM skill_blobs WHERE digest = $1`, digest).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errBlobNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load blob %s: %w", digest, err)
	}
	return data, nil
}

func (b *dbBlobs) Delete(ctx context.Context, digest string) error {
	if _, err := b.db.ExecContext(ctx, `DELETE FROM skill_blobs WHERE digest = $1`, digest); err != nil {
		return fmt.Errorf("delete blob %s: %w", digest, err)
	}
	return nil
}

// sweepUnreferenced deletes the blobs that no version refers to and that
// were last stored before cutoff. A publish stores its blob before its
// version row, and storing again refreshes created_at, so a blob of a
// publish in flight is younger than the cutoff and survives. The check
// and the delete are one statement.
func (b *dbBlobs) sweepUnreferenced(ctx context.Context, cutoff time.Time) (int64, error) {
	result, err := b.db.ExecContext(ctx,
		`DELETE FROM skill_blobs WHERE created_at < $1
		 AND NOT EXISTS (SELECT 1 FROM skill_versions v WHERE v.digest = skill_blobs.digest)`,
		cutoff.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("sweep unreferenced blobs: %w", err)
	}
	deleted, _ := result.RowsAffected()
	return deleted, nil
}
