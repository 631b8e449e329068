package keyring

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/nexus-suite/nexus/storage"
)

// keyringLockID is the PostgreSQL advisory lock taken by the transactions
// that add a signing key, so two nodes cannot both see an empty table and
// both insert. It spells "nexuskey" in ASCII. SQLite needs no lock because
// it runs one write statement at a time, and storage.Open begins its
// transactions with the write lock (_txlock=immediate).
const keyringLockID int64 = 0x6e657875736b6579

// keyRow is one row of signing_keys. Times are stored as unix milliseconds,
// and a zero time stands for NULL.
type keyRow struct {
	kid       string
	algorithm string
	publicDER []byte
	sealed    []byte
	createdAt time.Time
	// activatesAt is when the key starts signing. Zero means createdAt.
	activatesAt time.Time
	retiresAt   time.Time
	expiresAt   time.Time
}

// activeFrom returns when the key starts signing.
func (r keyRow) activeFrom() time.Time {
	if r.activatesAt.IsZero() {
		return r.createdAt
	}
	return r.activatesAt
}

// canSign reports whether the key may sign at now: it has activated and
// has neither retired nor expired.
func (r keyRow) canSign(now time.Time) bool {
	return r.mayStillSign(now) && !now.Before(r.activeFrom())
}

// mayStillSign reports whether the key signs at now or at some time after
// it, which holds for keys that have not activated yet.
func (r keyRow) mayStillSign(now time.Time) bool {
	return r.verifies(now) && (r.retiresAt.IsZero() || now.Before(r.retiresAt))
}

// verifies reports whether tokens signed by the key are still accepted at now.
func (r keyRow) verifies(now time.Time) bool {
	return r.expiresAt.IsZero() || now.Before(r.expiresAt)
}

// selectKeys returns the keys that still verify at now, newest first.
func selectKeys(ctx context.Context, db *storage.DB, now time.Time) ([]keyRow, error) {
	rows, err := db.QueryContext(ctx, `
		SELECT kid, algorithm, public_key, private_key_sealed, created_at, activates_at, retires_at, expires_at
		FROM signing_keys
		WHERE expires_at IS NULL OR expires_at > $1
		ORDER BY created_at DESC, kid DESC`,
		now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("select signing keys: %w", err)
	}
	defer rows.Close()

	var keys []keyRow
	for rows.Next() {
		var row keyRow
		var createdAt int64
		var activatesAt, retiresAt, expiresAt sql.NullInt64
		err := rows.Scan(&row.kid, &row.algorithm, &row.publicDER, &row.sealed, &createdAt, &activatesAt, &retiresAt, &expiresAt)
		if err != nil {
			return nil, fmt.Errorf("scan signing key: %w", err)
		}
		row.createdAt = time.UnixMilli(createdAt).UTC()
		row.activatesAt = fromNullMillis(activatesAt)
		row.retiresAt = fromNullMillis(retiresAt)
		row.expiresAt = fromNullMillis(expiresAt)
		keys = append(keys, row)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	return keys, nil
}

// insertFirstSigningKey inserts row unless a key that signs at now or later
// already exists, counting a key that has not activated yet. It reports
// whether the row was inserted.
func insertFirstSigningKey(ctx context.Context, db *storage.DB, row keyRow, now time.Time) (bool, error) {
	if db.Dialect == storage.SQLite {
		// One statement, so SQLite's write lock covers both the check and the insert.
		result, err := db.ExecContext(ctx, `
			INSERT INTO signing_keys (kid, algorithm, public_key, private_key_sealed, created_at, activates_at, retires_at, expires_at)
			SELECT $1, $2, $3, $4, $5, NULL, NULL, NULL
			WHERE NOT EXISTS (
				SELECT 1 FROM signing_keys
				WHERE (retires_at IS NULL OR retires_at > $6) AND (expires_at IS NULL OR expires_at > $6))`,
			row.kid, row.algorithm, row.publicDER, row.sealed, row.createdAt.UnixMilli(), now.UnixMilli())
		if err != nil {
			return false, fmt.Errorf("insert signing key %s: %w", row.kid, err)
		}
		inserted, err := result.RowsAffected()
		if err != nil {
			return false, fmt.Errorf("insert signing key %s: %w", row.kid, err)
		}
		return inserted == 1, nil
	}

	inserted := false
	err := inTx(ctx, db, func(tx *sql.Tx) error {
		var exists bool
		err := tx.QueryRowContext(ctx, `
			SELECT EXISTS (
				SELECT 1 FROM signing_keys
				WHERE (retires_at IS NULL OR retires_at > $1) AND (expires_at IS NULL OR expires_at > $1))`,
			now.UnixMilli()).Scan(&exists)
		if err != nil {
			return fmt.Errorf("check for a signing key: %w", err)
		}
		if exists {
			return nil
		}

		if err := insertKey(ctx, tx, row); err != nil {
			return err
		}
		inserted = true
		return nil
	})
	return inserted, err
}

// rotateKeys inserts row, which signs from now + leadTime, or from now when
// no key signs at now, because a lead time would then leave nothing to sign
// tokens until the activation.
// Every key that may still sign at now (the current signing key and any key
// that has not activated yet) retires when row activates and stops
// verifying overlap later. Neither time moves later for a key that already
// retires or expires earlier, so a second rotation never extends a key's
// life. It returns when row activates and how many keys it retired.
func rotateKeys(ctx context.Context, db *storage.DB, row keyRow, now time.Time, leadTime, overlap time.Duration) (activatesAt time.Time, retired int64, err error) {
	err = inTx(ctx, db, func(tx *sql.Tx) error {
		var signing bool
		err := tx.QueryRowContext(ctx, `
			SELECT EXISTS (
				SELECT 1 FROM signing_keys
				WHERE COALESCE(activates_at, created_at) <= $1
				  AND (retires_at IS NULL OR retires_at > $1) AND (expires_at IS NULL OR expires_at > $1))`,
			now.UnixMilli()).Scan(&signing)
		if err != nil {
			return fmt.Errorf("check for a signing key: %w", err)
		}
		activatesAt = now
		if signing {
			activatesAt = now.Add(leadTime)
		}
		expiresAt := activatesAt.Add(overlap)

		result, err := tx.ExecContext(ctx, `
			UPDATE signing_keys
			SET retires_at = CASE WHEN retires_at IS NOT NULL AND retires_at < $1 THEN retires_at ELSE $1 END,
			    expires_at = CASE WHEN expires_at IS NOT NULL AND expires_at < $2 THEN expires_at ELSE $2 END
			WHERE (retires_at IS NULL OR retires_at > $3) AND (expires_at IS NULL OR expires_at > $3)`,
			activatesAt.UnixMilli(), expiresAt.UnixMilli(), now.UnixMilli())
		if err != nil {
			return fmt.Errorf("retire signing keys: %w", err)
		}
		retired, err = result.RowsAffected()
		if err != nil {
			return fmt.Errorf("retire signing keys: %w", err)
		}

		row.activatesAt = activatesAt
		return insertKey(ctx, tx, row)
	})
	return activatesAt, retired, err
}

func insertKey(ctx context.Context, tx *sql.Tx, row keyRow) error {
	_, err := tx.ExecContext(ctx, `
		INSERT INTO signing_keys (kid, algorithm, public_key, private_key_sealed, created_at, activates_at, retires_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		row.kid, row.algorithm, row.publicDER, row.sealed, row.createdAt.UnixMilli(),
		toNullMillis(row.activatesAt), toNullMillis(row.retiresAt), toNullMillis(row.expiresAt))
	if err != nil {
		return fmt.Errorf("insert signing key %s: %w", row.kid, err)
	}
	return nil
}

// inTx runs fn in a transaction that holds keyringLockID on PostgreSQL, and
// commits when fn returns nil.
func inTx(ctx context.Context, db *storage.DB, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer tx.Rollback()

	if db.Dialect == storage.Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, keyringLockID); err != nil {
			return fmt.Errorf("lock signing keys: %w", err)
		}
	}

	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

func fromNullMillis(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

func toNullMillis(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}
