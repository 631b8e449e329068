package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is returned when the requested row does not exist.
var ErrNotFound = errors.New("storage: not found")

// SessionRecord is one row of the sessions table. Times are stored as Unix
// milliseconds, so they come back in UTC with millisecond precision.
type SessionRecord struct {
	ID         string
	UserID     string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
	// RevokedAt is nil while the session is live.
	RevokedAt *time.Time
	UserAgent string
	IP        string
}

// Sessions reads and writes the core sessions table; the per-user actors
// use it to check that a token's session is still live. It is safe for
// concurrent use.
type Sessions struct {
	db *DB
}

// NewSessions returns the session store of db.
func NewSessions(db *DB) *Sessions {
	return &Sessions{db: db}
}

// InsertUser adds a user. It exists for tests and for the auth module, which
// owns the rest of the user's data.
func (s *Sessions) InsertUser(ctx context.Context, id, email string, createdAt time.Time) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO users (id, email, created_at) VALUES ($1, $2, $3)`,
		id, email, createdAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("insert user %s: %w", id, err)
	}
	return nil
}

// Insert adds a session. The user must exist.
func (s *Sessions) Insert(ctx context.Context, record SessionRecord) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO sessions (id, user_id, created_at, last_seen_at, expires_at, revoked_at, user_agent, ip)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		record.ID, record.UserID,
		record.CreatedAt.UnixMilli(), record.LastSeenAt.UnixMilli(), record.ExpiresAt.UnixMilli(),
		nullableMillis(record.RevokedAt), record.UserAgent, record.IP)
	if err != nil {
		return fmt.Errorf("insert session %s: %w", record.ID, err)
	}
	return nil
}

// Lookup returns the session sessionID, or ErrNotFound when it does not
// exist. A revoked or expired session is returned as it is; the caller
// decides whether it is still live.
func (s *Sessions) Lookup(ctx context.Context, sessionID string) (SessionRecord, error) {
	var (
		record                           = SessionRecord{ID: sessionID}
		createdAt, lastSeenAt, expiresAt int64
		revokedAt                        sql.NullInt64
	)
	row := s.db.QueryRowContext(ctx,
		`SELECT user_id, created_at, last_seen_at, expires_at, revoked_at, user_agent, ip
		 FROM sessions WHERE id = $1`, sessionID)
	err := row.Scan(&record.UserID, &createdAt, &lastSeenAt, &expiresAt, &revokedAt, &record.UserAgent, &record.IP)
	if errors.Is(err, sql.ErrNoRows) {
		return SessionRecord{}, fmt.Errorf("load session %s: %w", sessionID, ErrNotFound)
	}
	if err != nil {
		return SessionRecord{}, fmt.Errorf("load session %s: %w", sessionID, err)
	}

	record.CreatedAt = fromMillis(createdAt)
	record.LastSeenAt = fromMillis(lastSeenAt)
	record.ExpiresAt = fromMillis(expiresAt)
	if revokedAt.Valid {
		at := fromMillis(revokedAt.Int64)
		record.RevokedAt = &at
	}
	return record, nil
}

// Revoke marks the session revoked at at. Revoking a revoked session keeps
// the first time and is not an error; a missing session is ErrNotFound.
func (s *Sessions) Revoke(ctx context.Context, sessionID string, at time.Time) error {
	result, err := s.db.ExecContext(ctx,
		`UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`,
		sessionID, at.UnixMilli())
	if err != nil {
		return fmt.Errorf("revoke session %s: %w", sessionID, err)
	}

	return s.requireRow(ctx, result, "revoke", sessionID)
}

// Touch records that the session was used at at. last_seen_at never moves
// backwards; a missing session is ErrNotFound.
func (s *Sessions) Touch(ctx context.Context, sessionID string, at time.Time) error {
	result, err := s.db.ExecContext(ctx,
		`UPDATE sessions
		 SET last_seen_at = CASE WHEN last_seen_at < $2 THEN $2 ELSE last_seen_at END
		 WHERE id = $1`,
		sessionID, at.UnixMilli())
	if err != nil {
		return fmt.Errorf("touch session %s: %w", sessionID, err)
	}

	return s.requireRow(ctx, result, "touch", sessionID)
}

// requireRow returns ErrNotFound when an update changed no row and the
// session does not exist.
func (s *Sessions) requireRow(ctx context.Context, result sql.Result, step, sessionID string) error {
	changed, err := result.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s session %s: %w", step, sessionID, err)
	}
	if changed > 0 {
		return nil
	}

	var exists int
	err = s.db.QueryRowContext(ctx, `SELECT 1 FROM sessions WHERE id = $1`, sessionID).Scan(&exists)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s session %s: %w", step, sessionID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("%s session %s: %w", step, sessionID, err)
	}
	return nil
}

func nullableMillis(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

func fromMillis(ms int64) time.Time {
	return time.UnixMilli(ms).UTC()
}
