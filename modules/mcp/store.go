package mcp

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nexus-suite/nexus/storage"
)

// Errors of the store.
var (
	// errNotFound means the row does not exist or belongs to another user.
	errNotFound = errors.New("not found")
	// errNameTaken means the user already has a server of that name.
	errNameTaken = errors.New("server name taken")
)

// quotaError is returned by createServer when the user has as many servers
// as the tier allows.
type quotaError struct {
	used, limit int
}

func (e *quotaError) Error() string {
	return fmt.Sprintf("%d of %d MCP servers in use", e.used, e.limit)
}

// serverRow is a row of mcp_servers.
type serverRow struct {
	ID     string
	UserID string
	Plugin string
	Name   string
	// Config is the user's config, a JSON object.
	Config json.RawMessage
	// SecretsSealed is nil when the server has no secrets.
	SecretsSealed []byte
	// SecretNames are the names of the secrets that are set, sorted.
	SecretNames []string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// tokenRow is a row of mcp_tokens.
type tokenRow struct {
	ID         string
	ServerID   string
	UserID     string
	Name       string
	TokenHash  string
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

// store is the module's SQL, the same on both engines apart from the row
// lock of createServer.
type store struct {
	db *storage.DB
}

const serverColumns = `id, user_id, plugin, name, config, secrets_sealed, secret_names, created_at, updated_at`

type rowScanner interface{ Scan(...any) error }

func scanServer(row rowScanner) (serverRow, error) {
	var s serverRow
	var config, names string
	var created, updated int64
	err := row.Scan(&s.ID, &s.UserID, &s.Plugin, &s.Name, &config, &s.SecretsSealed, &names, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return serverRow{}, errNotFound
	}
	if err != nil {
		return serverRow{}, err
	}
	s.Config = json.RawMessage(config)
	if err := json.Unmarshal([]byte(names), &s.SecretNames); err != nil {
		return serverRow{}, fmt.Errorf("decode secret names of server %s: %w", s.ID, err)
	}
	s.CreatedAt, s.UpdatedAt = fromMillis(created), fromMillis(updated)
	return s, nil
}

// createServer inserts s unless the user already has limit servers or a
// server named s.Name. The count and the insert share one transaction, and
// on PostgreSQL the user's row is locked first, so concurrent creates of
// one user cannot pass the limit together. SQLite runs one write
// transaction at a time.
func (s *store) createServer(ctx context.Context, row serverRow, limit int) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create mcp server: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	if s.db.Dialect == storage.Postgres {
		var id string
		err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE id = $1 FOR UPDATE`, row.UserID).Scan(&id)
		if err != nil {
			return fmt.Errorf("lock user %s: %w", row.UserID, err)
		}
	}

	var used int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM mcp_servers WHERE user_id = $1`, row.UserID).Scan(&used); err != nil {
		return fmt.Errorf("count mcp servers of user %s: %w", row.UserID, err)
	}
	if used >= limit {
		return &quotaError{used: used, limit: limit}
	}

	names, err := json.Marshal(row.SecretNames)
	if err != nil {
		return fmt.Errorf("encode secret names: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO mcp_servers (`+serverColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		row.ID, row.UserID, row.Plugin, row.Name, string(row.Config), row.SecretsSealed, string(names),
		row.CreatedAt.UnixMilli(), row.UpdatedAt.UnixMilli())
	if storage.IsUniqueViolation(err) {
		return errNameTaken
	}
	if err != nil {
		return fmt.Errorf("insert mcp server %s: %w", row.ID, err)
	}

	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create mcp server: commit: %w", err)
	}
	return nil
}

// server returns the server id of userID; errNotFound when it does not
// exist or belongs to someone else.
func (s *store) server(ctx context.Context, userID, id string) (serverRow, error) {
	row, err := scanServer(s.db.QueryRowContext(ctx,
		`SELECT `+serverColumns+` FROM mcp_servers WHERE id = $1 AND user_id = $2`, id, userID))
	if err != nil && !errors.Is(err, errNotFound) {
		return serverRow{}, fmt.Errorf("load mcp server %s: %w", id, err)
	}
	return row, err
}

// serverByID returns the server with this id, whatever its owner.
func (s *store) serverByID(ctx context.Context, id string) (serverRow, error) {
	row, err := scanServer(s.db.QueryRowContext(ctx, `SELECT `+serverColumns+` FROM mcp_servers WHERE id = $1`, id))
	if err != nil && !errors.Is(err, errNotFound) {
		return serverRow{}, fmt.Errorf("load mcp server %s: %w", id, err)
	}
	return row, err
}

// servers returns the user's servers, oldest first.
func (s *store) servers(ctx context.Context, userID string) ([]serverRow, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT `+serverColumns+` FROM mcp_servers WHERE user_id = $1 ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list mcp servers of user %s: %w", userID, err)
	}
	defer rows.Close()

	var list []serverRow
	for rows.Next() {
		row, err := scanServer(rows)
		if err != nil {
			return nil, fmt.Errorf("scan mcp server: %w", err)
		}
		list = append(list, row)
	}
	return list, rows.Err()
}

// serverIDsOfUser returns the ids of the user's servers.
func (s *store) serverIDsOfUser(ctx context.Context, q querier, userID string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT id FROM mcp_servers WHERE user_id = $1`, userID)
	if err != nil {
		return nil, fmt.Errorf("list mcp server ids of user %s: %w", userID, err)
	}
	defer rows.Close()

	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("scan mcp server id: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// updateServer writes the name, config and secrets of row, which must
// belong to row.UserID.
func (s *store) updateServer(ctx context.Context, row serverRow) error {
	names, err := json.Marshal(row.SecretNames)
	if err != nil {
		return fmt.Errorf("encode secret names: %w", err)
	}
	result, err := s.db.ExecContext(ctx,
		`UPDATE mcp_servers SET name = $3, config = $4, secrets_sealed = $5, secret_names = $6, updated_at = $7
		 WHERE id = $1 AND user_id = $2`,
		row.ID, row.UserID, row.Name, string(row.Config), row.SecretsSealed, string(names), row.UpdatedAt.UnixMilli())
	if storage.IsUniqueViolation(err) {
		return errNameTaken
	}
	if err != nil {
		return fmt.Errorf("update mcp server %s: %w", row.ID, err)
	}
	if n, _ := result.RowsAffected(); n == 0 {
		return errNotFound
	}
	return nil
}

// deleteServer removes the server and its tokens.
func (s *store) deleteServer(ctx context.Context, userID, id string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete mcp server: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	if _, err := tx.ExecContext(ctx, `DELETE FROM mcp_tokens WHERE server_id = $1 AND user_id = $2`, id, userID); err != nil {
		return fmt.Errorf("delete tokens of mcp server %s: %w", id, err)
	}
	result, err := tx.ExecContext(ctx, `DELETE FROM mcp_servers WHERE id = $1 AND user_id = $2`, id, userID)
	if err != nil {
		return fmt.Errorf("delete mcp server %s: %w", id, err)
	}
	if n, _ := result.RowsAffected(); n == 0 {
		return errNotFound
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete mcp server: commit: %w", err)
	}
	return nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// deleteUserRows removes the user's servers and tokens.
func deleteUserRows(ctx context.Context, db querier, userID string) error {
	if _, err := db.ExecContext(ctx, `DELETE FROM mcp_tokens WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("delete mcp tokens of user %s: %w", userID, err)
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM mcp_servers WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("delete mcp servers of user %s: %w", userID, err)
	}
	return nil
}

const tokenColumns = `id, server_id, user_id, name, token_hash, created_at, last_used_at`

func scanToken(row rowScanner) (tokenRow, error) {
	var t tokenRow
	var created int64
	var lastUsed sql.NullInt64
	err := row.Scan(&t.ID, &t.ServerID, &t.UserID, &t.Name, &t.TokenHash, &created, &lastUsed)
	if errors.Is(err, sql.ErrNoRows) {
		return tokenRow{}, errNotFound
	}
	if err != nil {
		return tokenRow{}, err
	}
	t.CreatedAt = fromMillis(created)
	if lastUsed.Valid {
		used := fromMillis(lastUsed.Int64)
		t.LastUsedAt = &used
	}
	return t, nil
}

// insertToken stores a token of a server that the caller checked belongs to t.UserID.
func (s *store) insertToken(ctx context.Context, t tokenRow) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO mcp_tokens (`+tokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, NULL)`,
		t.ID, t.ServerID, t.UserID, t.Name, t.TokenHash, t.CreatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("insert mcp token %s: %w", t.ID, err)
	}
	return nil
}

// tokens returns the tokens of a server, oldest first.
func (s *store) tokens(ctx context.Context, userID, serverID string) ([]tokenRow, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT `+tokenColumns+` FROM mcp_tokens WHERE server_id = $1 AND user_id = $2 ORDER BY created_at, id`,
		serverID, userID)
	if err != nil {
		return nil, fmt.Errorf("list tokens of mcp server %s: %w", serverID, err)
	}
	defer rows.Close()

	var list []tokenRow
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("scan mcp token: %w", err)
		}
		list = append(list, t)
	}
	return list, rows.Err()
}

// tokenByHash returns the token whose hex SHA-256 is hash.
func (s *store) tokenByHash(ctx context.Context, hash string) (tokenRow, error) {
	t, err := scanToken(s.db.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM mcp_tokens WHERE token_hash = $1`, hash))
	if err != nil && !errors.Is(err, errNotFound) {
		return tokenRow{}, fmt.Errorf("look up mcp token: %w", err)
	}
	return t, err
}

// touchToken records a use of the token at now.
func (s *store) touchToken(ctx context.Context, id string, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE mcp_tokens SET last_used_at = $2 WHERE id = $1`, id, now.UnixMilli()); err != nil {
		return fmt.Errorf("record use of mcp token %s: %w", id, err)
	}
	return nil
}

// deleteToken revokes one token of a server of userID.
func (s *store) deleteToken(ctx context.Context, userID, serverID, tokenID string) error {
	result, err := s.db.ExecContext(ctx, `DELETE FROM mcp_tokens WHERE id = $1 AND server_id = $2 AND user_id = $3`,
		tokenID, serverID, userID)
	if err != nil {
		return fmt.Errorf("delete mcp token %s: %w", tokenID, err)
	}
	if n, _ := result.RowsAffected(); n == 0 {
		return errNotFound
	}
	return nil
}

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
