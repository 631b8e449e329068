package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/nexus-suite/nexus/runtime/keyring"
	"github.com/nexus-suite/nexus/storage"
)

// Kinds of SSO connection.
const (
	ssoKindOIDC = "oidc"
	ssoKindSAML = "saml"
)

// ssoConnection is one enterprise SSO connection.
type ssoConnection struct {
	ID         string
	Domain     string
	Kind       string
	Name       string
	RequireSSO bool
	// OIDC fields; the secret is sealed in the store.
	OIDCIssuer   string
	OIDCClientID string
	OIDCSecret   string
	// SAMLMetadata is the identity provider's metadata XML.
	SAMLMetadata string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// identityProvider returns the provider key of the connection's identities.
func (c ssoConnection) identityProvider() string { return "sso:" + c.ID }

var errDomainTaken = errors.New("domain already has an SSO connection")

const ssoColumns = `id, domain, kind, name, require_sso, oidc_issuer, oidc_client_id, oidc_secret_sealed, saml_metadata, created_at, updated_at`

func (s *store) insertSSOConnection(ctx context.Context, masterKey []byte, c ssoConnection) error {
	var sealed []byte
	if c.OIDCSecret != "" {
		var err error
		sealed, err = keyring.Seal(masterKey, []byte(c.OIDCSecret), []byte(c.ID))
		if err != nil {
			return fmt.Errorf("seal client secret of SSO connection %s: %w", c.ID, err)
		}
	}
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO sso_connections (`+ssoColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)`,
		c.ID, c.Domain, c.Kind, c.Name, boolInt(c.RequireSSO), c.OIDCIssuer, c.OIDCClientID, sealed, c.SAMLMetadata, c.CreatedAt.UnixMilli())
	if storage.IsUniqueViolation(err) {
		return errDomainTaken
	}
	if err != nil {
		return fmt.Errorf("insert SSO connection for %s: %w", c.Domain, err)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *store) scanSSOConnections(masterKey []byte, rows *sql.Rows) ([]ssoConnection, error) {
	defer rows.Close()
	var connections []ssoConnection
	for rows.Next() {
		var c ssoConnection
		var require int
		var sealed []byte
		var created, updated int64
		if err := rows.Scan(&c.ID, &c.Domain, &c.Kind, &c.Name, &require, &c.OIDCIssuer, &c.OIDCClientID, &sealed, &c.SAMLMetadata, &created, &updated); err != nil {
			return nil, fmt.Errorf("read SSO connection: %w", err)
		}
		if len(sealed) > 0 {
			secret, err := keyring.Open(masterKey, sealed, []byte(c.ID))
			if err != nil {
				return nil, fmt.Errorf("open client secret of SSO connection %s: %w", c.ID, err)
			}
			c.OIDCSecret = string(secret)
		}
		c.RequireSSO = require != 0
		c.CreatedAt, c.UpdatedAt = fromMillis(created), fromMillis(updated)
		connections = append(connections, c)
	}
	return connections, rows.Err()
}

func (s *store) ssoConnections(ctx context.Context, masterKey []byte, where string, args ...any) ([]ssoConnection, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+ssoColumns+` FROM sso_connections `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list SSO connections: %w", err)
	}
	return s.scanSSOConnections(masterKey, rows)
}

func (s *store) ssoConnection(ctx context.Context, masterKey []byte, where string, args ...any) (ssoConnection, error) {
	connections, err := s.ssoConnections(ctx, masterKey, where, args...)
	if err != nil {
		return ssoConnection{}, err
	}
	if len(connections) == 0 {
		return ssoConnection{}, errNotFound
	}
	return connections[0], nil
}

func (s *store) setRequireSSO(ctx context.Context, id string, require bool, now time.Time) error {
	result, err := s.db.ExecContext(ctx, `UPDATE sso_connections SET require_sso = $1, updated_at = $2 WHERE id = $3`,
		boolInt(require), now.UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("update SSO connection %s: %w", id, err)
	}
	if n, _ := result.RowsAffected(); n == 0 {
		return errNotFound
	}
	return nil
}

// deleteSSOConnection deletes the connection and unlinks its identities;
// the accounts stay.
func (s *store) deleteSSOConnection(ctx context.Context, id string) error {
	result, err := s.db.ExecContext(ctx, `DELETE FROM sso_connections WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete SSO connection %s: %w", id, err)
	}
	if n, _ := result.RowsAffected(); n == 0 {
		return errNotFound
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM user_identities WHERE provider = $1`, "sso:"+id); err != nil {
		return fmt.Errorf("unlink identities of SSO connection %s: %w", id, err)
	}
	return nil
}
