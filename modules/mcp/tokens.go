package mcp

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/nexus-suite/nexus/edge"
)

// tokenUseInterval is the minimum time between two writes of a token's
// last_used_at, so a busy client does not write on every request.
const tokenUseInterval = time.Minute

// tokenView is a token as the token routes list it, without its value.
type tokenView struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// createdToken is the body of POST …/tokens: the only time the token is shown.
type createdToken struct {
	tokenView
	Token string `json:"token"`
}

// tokenRequest is the body of POST …/tokens.
type tokenRequest struct {
	Name string `json:"name"`
}

// createToken issues a token for the server's MCP endpoint. Only its
// SHA-256 is stored, so the response is the only place the token appears.
func (m *Module) createToken(r *edge.Request) error {
	var req tokenRequest
	if len(r.Ctx.Request.Body()) > 0 {
		if err := r.Decode(&req); err != nil {
			return err
		}
	}
	row, err := m.ownServer(r)
	if err != nil {
		return err
	}
	name := ""
	if strings.TrimSpace(req.Name) != "" {
		if name, err = checkName(req.Name, "name", maxTokenNameLength); err != nil {
			return err
		}
	}

	token, hash, err := newToken()
	if err != nil {
		return err
	}
	id, err := newID("mct_")
	if err != nil {
		return err
	}
	t := tokenRow{ID: id, ServerID: row.ID, UserID: row.UserID, Name: name, TokenHash: hash,
		CreatedAt: m.host.Clock.Now().UTC().Truncate(time.Millisecond)}
	if err := m.store.insertToken(r.Context(), t); err != nil {
		return err
	}

	r.Logger().Info("mcp token created", slog.String("server_id", row.ID), slog.String("token_id", id))
	return r.JSON(http.StatusCreated, createdToken{tokenView: viewToken(t), Token: token})
}

func (m *Module) listTokens(r *edge.Request) error {
	row, err := m.ownServer(r)
	if err != nil {
		return err
	}
	rows, err := m.store.tokens(r.Context(), row.UserID, row.ID)
	if err != nil {
		return err
	}
	views := make([]tokenView, 0, len(rows))
	for _, t := range rows {
		views = append(views, viewToken(t))
	}
	return r.JSON(http.StatusOK, views)
}

// revokeToken deletes a token; the next request with it gets 401.
func (m *Module) revokeToken(r *edge.Request) error {
	serverID, tokenID := r.Param("id"), r.Param("token_id")
	err := m.store.deleteToken(r.Context(), r.Principal.UserID, serverID, tokenID)
	if errors.Is(err, errNotFound) {
		return edge.NotFound("MCP token not found")
	}
	if err != nil {
		return err
	}

	r.Logger().Info("mcp token revoked", slog.String("server_id", serverID), slog.String("token_id", tokenID))
	return r.JSON(http.StatusOK, map[string]any{"id": tokenID, "revoked": true})
}

func viewToken(t tokenRow) tokenView {
	return tokenView{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt}
}

// verifyToken is the edge.CredentialVerifier of the MCP endpoint. It
// accepts a per-server token of the route's server and returns the
// server's owner, whose actor then admits the request.
func (m *Module) verifyToken(r *edge.Request, token string) (string, error) {
	if !strings.HasPrefix(token, tokenPrefix) {
		return "", edge.ErrNotCredential
	}

	t, err := m.store.tokenByHash(r.Context(), hashToken(token))
	if errors.Is(err, errNotFound) {
		return "", errors.New("unknown or revoked MCP token")
	}
	if err != nil {
		m.logger.Error("look up mcp token failed", slog.String("request_id", r.RequestID()), slog.String("error", err.Error()))
		return "", err
	}
	if t.ServerID != r.Param("id") {
		return "", fmt.Errorf("MCP token %s belongs to another server", t.ID)
	}

	now := m.host.Clock.Now()
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= tokenUseInterval {
		if err := m.store.touchToken(r.Context(), t.ID, now); err != nil {
			m.logger.Warn("record mcp token use failed", slog.String("token_id", t.ID), slog.String("error", err.Error()))
		}
	}
	return t.UserID, nil
}
