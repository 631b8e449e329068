package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/nexus-suite/nexus/storage"
)

// Errors of the store.
var (
	errNotFound   = errors.New("not found")
	errEmailTaken = errors.New("email already registered")
)

// Roles a user can have.
const (
	roleUser  = "user"
	roleAdmin = "admin"
)

// Purposes of one-time email tokens.
const (
	purposeVerifyEmail   = "verify_email"
	purposeResetPassword = "reset_password"
)

// user is an account as the store holds it.
type user struct {
	ID              string
	Email           string
	PasswordHash    string
	DisplayName     string
	Role            string
	EmailVerifiedAt *time.Time
	LockedUntil     *time.Time
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// session is one sign-in of a user, as the auth module stores it.
type session struct {
	ID         string
	UserID     string
	DeviceName string
	IP         string
	UserAgent  string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
	RevokedAt  *time.Time
}

// refreshRecord is a refresh token row joined with its session.
type refreshRecord struct {
	SessionID        string
	UserID           string
	ExpiresAt        time.Time
	UsedAt           *time.Time
	SuccessorSealed  []byte
	SessionRevoked   bool
	SessionExpiresAt time.Time
}

// store is the auth module's SQL, the same on both engines.
type store struct {
	db *storage.DB
}

const userColumns = `id, email, password_hash, display_name, role, email_verified_at, locked_until, created_at, updated_at`

func scanUser(row interface{ Scan(...any) error }) (user, error) {
	var u user
	var verified, locked sql.NullInt64
	var created, updated int64
	err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &u.DisplayName, &u.Role, &verified, &locked, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return user{}, errNotFound
	}
	if err != nil {
		return user{}, err
	}
	u.EmailVerifiedAt = timePointer(verified)
	u.LockedUntil = timePointer(locked)
	u.CreatedAt, u.UpdatedAt = fromMillis(created), fromMillis(updated)
	return u, nil
}

func (s *store) createUser(ctx context.Context, u user) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO users (id, email, password_hash, display_name, role, created_at, updated_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $6)`,
		u.ID, u.Email, u.PasswordHash, u.DisplayName, u.Role, u.CreatedAt.UnixMilli())
	if storage.IsUniqueViolation(err) {
		return errEmailTaken
	}
	if err != nil {
		return fmt.Errorf("insert user %s: %w", u.ID, err)
	}
	return nil
}

func (s *store) userByEmail(ctx context.Context, email string) (user, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`, email))
	if err != nil && !errors.Is(err, errNotFound) {
		return user{}, fmt.Errorf("load user by email: %w", err)
	}
	return u, err
}

func (s *store) userByID(ctx context.Context, id string) (user, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if err != nil && !errors.Is(err, errNotFound) {
		return user{}, fmt.Errorf("load user %s: %w", id, err)
	}
	return u, err
}

// updateUser runs one UPDATE on the user's row and reports errNotFound when no row matched.
func (s *store) updateUser(ctx context.Context, step, id, assignments string, args ...any) error {
	args = append([]any{id}, args...)
	result, err := s.db.ExecContext(ctx, `UPDATE users SET `+assignments+` WHERE id = $1`, args...)
	if err != nil {
		return fmt.Errorf("%s of user %s: %w", step, id, err)
	}
	if n, _ := result.RowsAffected(); n == 0 {
		return errNotFound
	}
	return nil
}

func (s *store) markVerified(ctx context.Context, id string, at time.Time) error {
	return s.updateUser(ctx, "mark verified", id,
		`email_verified_at = COALESCE(email_verified_at, $2), updated_at = $2`, at.UnixMilli())
}

func (s *store) setPasswordHash(ctx context.Context, id, hash string, at time.Time) error {
	return s.updateUser(ctx, "set password", id, `password_hash = $2, updated_at = $3`, hash, at.UnixMilli())
}

func (s *store) setDisplayName(ctx context.Context, id, name string, at time.Time) error {
	return s.updateUser(ctx, "set display name", id, `display_name = $2, updated_at = $3`, name, at.UnixMilli())
}

func (s *store) setRole(ctx context.Context, id, role string, at time.Time) error {
	return s.updateUser(ctx, "set role", id, `role = $2, updated_at = $3`, role, at.UnixMilli())
}

// setLockedUntil locks the account until the given time, or unlocks it when until is nil.
func (s *store) setLockedUntil(ctx context.Context, id string, until *time.Time, at time.Time) error {
	return s.updateUser(ctx, "set lock", id, `locked_until = $2, updated_at = $3`, nullableMillis(until), at.UnixMilli())
}

// deleteUser removes the user; sessions, refresh and email tokens go with it by cascade.
func (s *store) deleteUser(ctx context.Context, id string) error {
	result, err := s.db.ExecContext(ctx, `DELETE FROM users WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete user %s: %w", id, err)
	}
	if n, _ := result.RowsAffected(); n == 0 {
		return errNotFound
	}
	return nil
}

func (s *store) insertEmailToken(ctx context.Context, hash, userID, purpose string, createdAt, expiresAt time.Time) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO email_tokens (token_hash, user_id, purpose, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		hash, userID, purpose, createdAt.UnixMilli(), expiresAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("insert %s token of user %s: %w", purpose, userID, err)
	}
	return nil
}

// Reasons a one-time email token is rejected.
const (
	tokenUnknown = "invalid"
	tokenUsed    = "used"
	tokenExpired = "expired"
)

// consumeEmailToken marks the token used and returns its user. A token
// that is unknown, of another purpose, used or expired returns its reason
// and no user. Only one of several concurrent calls wins.
func (s *store) consumeEmailToken(ctx context.Context, hash, purpose string, now time.Time) (userID, reason string, err error) {
	var usedAt sql.NullInt64
	var expiresAt int64
	err = s.db.QueryRowContext(ctx,
		`SELECT user_id, used_at, expires_at FROM email_tokens WHERE token_hash = $1 AND purpose = $2`,
		hash, purpose).Scan(&userID, &usedAt, &expiresAt)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", tokenUnknown, nil
	case err != nil:
		return "", "", fmt.Errorf("load %s token: %w", purpose, err)
	case usedAt.Valid:
		return "", tokenUsed, nil
	case !now.Before(fromMillis(expiresAt)):
		return "", tokenExpired, nil
	}

	result, err := s.db.ExecContext(ctx,
		`UPDATE email_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL`, hash, now.UnixMilli())
	if err != nil {
		return "", "", fmt.Errorf("use %s token: %w", purpose, err)
	}
	if n, _ := result.RowsAffected(); n == 0 {
		return "", tokenUsed, nil
	}
	return userID, "", nil
}

func (s *store) insertSession(ctx context.Context, sess session) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO sessions (id, user_id, created_at, last_seen_at, expires_at, user_agent, ip, device_name)
		 VALUES ($1, $2, $3, $3, $4, $5, $6, $7)`,
		sess.ID, sess.UserID, sess.CreatedAt.UnixMilli(), sess.ExpiresAt.UnixMilli(), sess.UserAgent, sess.IP, sess.DeviceName)
	if err != nil {
		return fmt.Errorf("insert session of user %s: %w", sess.UserID, err)
	}
	return nil
}

// liveSessions lists the user's sessions that are neither revoked nor expired, newest first.
func (s *store) liveSessions(ctx context.Context, userID string, now time.Time) ([]session, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT id, user_id, device_name, ip, user_agent, created_at, last_seen_at, expires_at
		 FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
		 ORDER BY created_at DESC, id`, userID, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("list sessions of user %s: %w", userID, err)
	}
	defer rows.Close()

	var sessions []session
	for rows.Next() {
		var sess session
		var created, lastSeen, expires int64
		if err := rows.Scan(&sess.ID, &sess.UserID, &sess.DeviceName, &sess.IP, &sess.UserAgent, &created, &lastSeen, &expires); err != nil {
			return nil, fmt.Errorf("scan session of user %s: %w", userID, err)
		}
		sess.CreatedAt, sess.LastSeenAt, sess.ExpiresAt = fromMillis(created), fromMillis(lastSeen), fromMillis(expires)
		sessions = append(sessions, sess)
	}
	return sessions, rows.Err()
}

// revokeSessions ends the user's live sessions that match the extra
// condition and returns their ids.
func (s *store) revokeSessions(ctx context.Context, userID string, now time.Time, condition string, args ...any) ([]string, error) {
	args = append([]any{userID, now.UnixMilli()}, args...)
	rows, err := s.db.QueryContext(ctx,
		`UPDATE sessions SET revoked_at = $2
		 WHERE user_id = $1 AND revoked_at IS NULL`+condition+` RETURNING id`, args...)
	if err != nil {
		return nil, fmt.Errorf("revoke sessions of user %s: %w", userID, err)
	}
	defer rows.Close()

	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("scan revoked session of user %s: %w", userID, err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func (s *store) revokeSession(ctx context.Context, userID, sessionID string, now time.Time) (bool, error) {
	ids, err := s.revokeSessions(ctx, userID, now, ` AND id = $3`, sessionID)
	return len(ids) == 1, err
}

func (s *store) revokeOtherSessions(ctx context.Context, userID, keepID string, now time.Time) ([]string, error) {
	return s.revokeSessions(ctx, userID, now, ` AND id <> $3`, keepID)
}

func (s *store) revokeAllSessions(ctx context.Context, userID string, now time.Time) ([]string, error) {
	return s.revokeSessions(ctx, userID, now, ``)
}

func (s *store) insertRefreshToken(ctx context.Context, exec execer, hash, sessionID string, createdAt, expiresAt time.Time) error {
	_, err := exec.ExecContext(ctx,
		`INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
		hash, sessionID, createdAt.UnixMilli(), expiresAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("insert refresh token of session %s: %w", sessionID, err)
	}
	return nil
}

func (s *store) refreshToken(ctx context.Context, hash string) (refreshRecord, error) {
	var r refreshRecord
	var expires, sessionExpires int64
	var used, revoked sql.NullInt64
	err := s.db.QueryRowContext(ctx,
		`SELECT r.session_id, s.user_id, r.expires_at, r.used_at, r.successor_sealed, s.revoked_at, s.expires_at
		 FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.token_hash = $1`, hash).
		Scan(&r.SessionID, &r.UserID, &expires, &used, &r.SuccessorSealed, &revoked, &sessionExpires)
	if errors.Is(err, sql.ErrNoRows) {
		return refreshRecord{}, errNotFound
	}
	if err != nil {
		return refreshRecord{}, fmt.Errorf("load refresh token: %w", err)
	}
	r.ExpiresAt, r.SessionExpiresAt = fromMillis(expires), fromMillis(sessionExpires)
	r.UsedAt = timePointer(used)
	r.SessionRevoked = revoked.Valid
	return r, nil
}

// rotateRefreshToken marks the old token used with its sealed successor and
// inserts the successor, in one transaction. Successors of tokens used
// before clearBefore, whose reuse window has closed, are erased. It reports
// false when another caller used the old token first; nothing is written then.
func (s *store) rotateRefreshToken(ctx context.Context, oldHash, newHash, sessionID string, sealed []byte, now, expiresAt, clearBefore time.Time) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("begin refresh of session %s: %w", sessionID, err)
	}
	defer tx.Rollback()

	result, err := tx.ExecContext(ctx,
		`UPDATE refresh_tokens SET used_at = $2, successor_sealed = $3 WHERE token_hash = $1 AND used_at IS NULL`,
		oldHash, now.UnixMilli(), sealed)
	if err != nil {
		return false, fmt.Errorf("use refresh token of session %s: %w", sessionID, err)
	}
	if n, _ := result.RowsAffected(); n == 0 {
		return false, nil
	}
	if err := s.insertRefreshToken(ctx, tx, newHash, sessionID, now, expiresAt); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx,
		`UPDATE refresh_tokens SET successor_sealed = NULL
		 WHERE session_id = $1 AND successor_sealed IS NOT NULL AND used_at < $2`,
		sessionID, clearBefore.UnixMilli()); err != nil {
		return false, fmt.Errorf("clear old successors of session %s: %w", sessionID, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE sessions SET last_seen_at = $2 WHERE id = $1`, sessionID, now.UnixMilli()); err != nil {
		return false, fmt.Errorf("touch session %s: %w", sessionID, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("commit refresh of session %s: %w", sessionID, err)
	}
	return true, nil
}

// execer is *sql.DB or *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func timePointer(ms sql.NullInt64) *time.Time {
	if !ms.Valid {
		return nil
	}
	t := fromMillis(ms.Int64)
	return &t
}

func nullableMillis(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}
