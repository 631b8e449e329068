package sync

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// This file contains the SQL of key envelopes, devices, idempotency records
// and the purge, beside the item SQL of store.go.

// keyEnvelope is a row of sync_keys. Envelope is nil when read for a list.
type keyEnvelope struct {
	ID        string
	Version   int64
	Envelope  []byte
	Size      int64
	UpdatedAt time.Time
}

// device is a row of sync_devices.
type device struct {
	ID        string
	Name      string
	PublicKey []byte
	CreatedAt time.Time
}

// idempotencyRecord is a row of sync_idempotency.
type idempotencyRecord struct {
	Key         string
	RequestHash []byte
	Status      int
	ETag        string
	Body        []byte
	CreatedAt   time.Time
}

// key returns the user's key envelope keyID, or nil when there is none.
func (w *writeTx) key(ctx context.Context, keyID string) (*keyEnvelope, error) {
	return readKey(ctx, w.tx, w.userID, keyID)
}

// countKeys returns the number of the user's key envelopes.
func (w *writeTx) countKeys(ctx context.Context) (int, error) {
	var n int
	if err := w.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sync_keys WHERE user_id = $1`, w.userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count sync keys of user %s: %w", w.userID, err)
	}
	return n, nil
}

// saveKey inserts or replaces a key envelope with the sequence number seq.
func (w *writeTx) saveKey(ctx context.Context, key keyEnvelope, seq int64) error {
	_, err := w.tx.ExecContext(ctx,
		`INSERT INTO sync_keys (user_id, key_id, version, envelope, seq, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
		 ON CONFLICT (user_id, key_id) DO UPDATE SET
		   version = excluded.version, envelope = excluded.envelope, seq = excluded.seq, updated_at = excluded.updated_at`,
		w.userID, key.ID, key.Version, key.Envelope, seq, key.UpdatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("save sync key of user %s: %w", w.userID, err)
	}
	return nil
}

// key returns the user's key envelope keyID, or nil when there is none.
func (s *store) key(ctx context.Context, userID, keyID string) (*keyEnvelope, error) {
	return readKey(ctx, s.db, userID, keyID)
}

// rowQuerier is the part of *sql.DB and *sql.Tx that reads one row.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func readKey(ctx context.Context, q rowQuerier, userID, keyID string) (*keyEnvelope, error) {
	key := keyEnvelope{ID: keyID}
	var updated int64
	err := q.QueryRowContext(ctx,
		`SELECT version, envelope, updated_at FROM sync_keys WHERE user_id = $1 AND key_id = $2`, userID, keyID).
		Scan(&key.Version, &key.Envelope, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read sync key of user %s: %w", userID, err)
	}
	key.Size = int64(len(key.Envelope))
	key.UpdatedAt = fromMillis(updated)
	return &key, nil
}

// keys returns the user's key envelopes without the envelopes, by id.
func (s *store) keys(ctx context.Context, userID string) ([]keyEnvelope, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT key_id, version, LENGTH(envelope), updated_at FROM sync_keys WHERE user_id = $1 ORDER BY key_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list sync keys of user %s: %w", userID, err)
	}
	defer rows.Close()

	keys := []keyEnvelope{}
	for rows.Next() {
		var key keyEnvelope
		var updated int64
		if err := rows.Scan(&key.ID, &key.Version, &key.Size, &updated); err != nil {
			return nil, fmt.Errorf("list sync keys of user %s: %w", userID, err)
		}
		key.UpdatedAt = fromMillis(updated)
		keys = append(keys, key)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sync keys of user %s: %w", userID, err)
	}
	return keys, nil
}

// countDevices returns the number of the user's devices.
func (w *writeTx) countDevices(ctx context.Context) (int, error) {
	var n int
	if err := w.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sync_devices WHERE user_id = $1`, w.userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count sync devices of user %s: %w", w.userID, err)
	}
	return n, nil
}

// insertDevice adds a device.
func (w *writeTx) insertDevice(ctx context.Context, d device) error {
	_, err := w.tx.ExecContext(ctx,
		`INSERT INTO sync_devices (user_id, device_id, name, public_key, created_at) VALUES ($1, $2, $3, $4, $5)`,
		w.userID, d.ID, d.Name, d.PublicKey, d.CreatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("insert sync device of user %s: %w", w.userID, err)
	}
	return nil
}

// deleteDevice removes a device and reports whether it existed.
func (w *writeTx) deleteDevice(ctx context.Context, deviceID string) (bool, error) {
	result, err := w.tx.ExecContext(ctx, `DELETE FROM sync_devices WHERE user_id = $1 AND device_id = $2`, w.userID, deviceID)
	if err != nil {
		return false, fmt.Errorf("delete sync device of user %s: %w", w.userID, err)
	}
	n, err := result.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("delete sync device of user %s: %w", w.userID, err)
	}
	return n > 0, nil
}

// device returns one of the user's devices, or nil when there is none.
func (s *store) device(ctx context.Context, userID, deviceID string) (*device, error) {
	d := device{ID: deviceID}
	var created int64
	err := s.db.QueryRowContext(ctx,
		`SELECT name, public_key, created_at FROM sync_devices WHERE user_id = $1 AND device_id = $2`, userID, deviceID).
		Scan(&d.Name, &d.PublicKey, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read sync device of user %s: %w", userID, err)
	}
	d.CreatedAt = fromMillis(created)
	return &d, nil
}

// devices returns the user's devices, oldest first.
func (s *store) devices(ctx context.Context, userID string) ([]device, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT device_id, name, public_key, created_at FROM sync_devices WHERE user_id = $1
		 ORDER BY created_at, device_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list sync devices of user %s: %w", userID, err)
	}
	defer rows.Close()

	devices := []device{}
	for rows.Next() {
		var d device
		var created int64
		if err := rows.Scan(&d.ID, &d.Name, &d.PublicKey, &created); err != nil {
			return nil, fmt.Errorf("list sync devices of user %s: %w", userID, err)
		}
		d.CreatedAt = fromMillis(created)
		devices = append(devices, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sync devices of user %s: %w", userID, err)
	}
	return devices, nil
}

// idempotencyRecord returns the record of key created at or after
// notBefore, or nil when there is none. An older record counts as none.
func (w *writeTx) idempotencyRecord(ctx context.Context, key string, notBefore time.Time) (*idempotencyRecord, error) {
	record := idempotencyRecord{Key: key}
	var created int64
	err := w.tx.QueryRowContext(ctx,
		`SELECT request_hash, status, etag, body, created_at FROM sync_idempotency
		 WHERE user_id = $1 AND idempotency_key = $2 AND created_at >= $3`, w.userID, key, notBefore.UnixMilli()).
		Scan(&record.RequestHash, &record.Status, &record.ETag, &record.Body, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read idempotency record of user %s: %w", w.userID, err)
	}
	record.CreatedAt = fromMillis(created)
	return &record, nil
}

// saveIdempotency stores a record, replacing an expired one of the same key.
func (w *writeTx) saveIdempotency(ctx context.Context, record idempotencyRecord) error {
	_, err := w.tx.ExecContext(ctx,
		`INSERT INTO sync_idempotency (user_id, idempotency_key, request_hash, status, etag, body, created_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7)
		 ON CONFLICT (user_id, idempotency_key) DO UPDATE SET
		   request_hash = excluded.request_hash, status = excluded.status, etag = excluded.etag,
		   body = excluded.body, created_at = excluded.created_at`,
		w.userID, record.Key, record.RequestHash, record.Status, record.ETag, record.Body, record.CreatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("save idempotency record of user %s: %w", w.userID, err)
	}
	return nil
}

// usersWithExpiredTombstones returns up to limit users that have a
// tombstone last changed before cutoff.
func (s *store) usersWithExpiredTombstones(ctx context.Context, cutoff time.Time, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT DISTINCT user_id FROM sync_items WHERE deleted AND updated_at < $1 LIMIT $2`, cutoff.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("find expired sync tombstones: %w", err)
	}
	defer rows.Close()

	var users []string
	for rows.Next() {
		var userID string
		if err := rows.Scan(&userID); err != nil {
			return nil, fmt.Errorf("find expired sync tombstones: %w", err)
		}
		users = append(users, userID)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find expired sync tombstones: %w", err)
	}
	return users, nil
}

// purgeTombstones deletes the user's tombstones last changed before cutoff
// and raises the user's purge point and version floor to the highest
// sequence number and version among them. It returns how many it deleted.
func (w *writeTx) purgeTombstones(ctx context.Context, cutoff time.Time) (int, error) {
	rows, err := w.tx.QueryContext(ctx,
		`DELETE FROM sync_items WHERE user_id = $1 AND deleted AND updated_at < $2 RETURNING seq, version`,
		w.userID, cutoff.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("purge sync tombstones of user %s: %w", w.userID, err)
	}
	purged := 0
	maxSeq, maxVersion := w.user.PurgedSeq, w.user.VersionFloor
	for rows.Next() {
		var seq, version int64
		if err := rows.Scan(&seq, &version); err != nil {
			rows.Close()
			return 0, fmt.Errorf("purge sync tombstones of user %s: %w", w.userID, err)
		}
		purged++
		maxSeq, maxVersion = max(maxSeq, seq), max(maxVersion, version)
	}
	if err := rows.Close(); err != nil {
		return 0, fmt.Errorf("purge sync tombstones of user %s: %w", w.userID, err)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("purge sync tombstones of user %s: %w", w.userID, err)
	}
	if purged == 0 {
		return 0, nil
	}

	_, err = w.tx.ExecContext(ctx,
		`UPDATE sync_users SET purged_seq = $2, version_floor = $3 WHERE user_id = $1`, w.userID, maxSeq, maxVersion)
	if err != nil {
		return 0, fmt.Errorf("record sync purge point of user %s: %w", w.userID, err)
	}
	w.user.PurgedSeq, w.user.VersionFloor = maxSeq, maxVersion
	return purged, nil
}

// purgeIdempotency deletes the idempotency records created before cutoff
// and returns how many it deleted.
func (s *store) purgeIdempotency(ctx context.Context, cutoff time.Time) (int64, error) {
	result, err := s.db.ExecContext(ctx, `DELETE FROM sync_idempotency WHERE created_at < $1`, cutoff.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("purge idempotency records: %w", err)
	}
	n, err := result.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("purge idempotency records: %w", err)
	}
	return n, nil
}
