package auth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/nexus-suite/nexus/edge"
)

// sessionView is a session as GET /v1/auth/sessions shows it.
type sessionView struct {
	ID         string    `json:"id"`
	DeviceName string    `json:"device_name"`
	IP         string    `json:"ip"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	Current    bool      `json:"current"`
}

// endSessions revokes sessions in the store through revoke, then notifies
// the user's actor of each one, so the next request with any of their
// access tokens is rejected without waiting for the actor's recheck.
func (m *Module) endSessions(ctx context.Context, userID string, revoke func(now time.Time) ([]string, error)) error {
	ids, err := revoke(m.now())
	if err != nil {
		return err
	}
	for _, id := range ids {
		m.host.Users.EndSession(userID, id)
	}
	return nil
}

type refreshInput struct {
	RefreshToken string `json:"refresh_token"`
}

func (m *Module) refreshHandler(r *edge.Request) error {
	var input refreshInput
	if err := r.Decode(&input); err != nil {
		return err
	}
	if input.RefreshToken == "" {
		return edge.Validation("refresh_token", "refresh_token is required")
	}

	pair, err := m.refresh(r.Context(), input.RefreshToken)
	switch {
	case errors.Is(err, errRefreshInvalid), errors.Is(err, errRefreshReused):
		r.Ctx.Response.Header.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		return edge.Unauthorized(err.Error())
	case err != nil:
		return err
	}
	return r.JSON(http.StatusOK, pair)
}

func (m *Module) logout(r *edge.Request) error {
	principal := r.Principal
	if err := m.endSessions(r.Context(), principal.UserID, func(now time.Time) ([]string, error) {
		ended, err := m.store.revokeSession(r.Context(), principal.UserID, principal.SessionID, now)
		if !ended {
			return nil, err
		}
		return []string{principal.SessionID}, err
	}); err != nil {
		return err
	}
	r.Logger().Info("signed out", slog.String("session_id", principal.SessionID))
	return r.JSON(http.StatusOK, map[string]any{"session_id": principal.SessionID, "ended": true})
}

func (m *Module) listSessions(r *edge.Request) error {
	sessions, err := m.store.liveSessions(r.Context(), r.Principal.UserID, m.now())
	if err != nil {
		return err
	}
	views := make([]sessionView, 0, len(sessions))
	for _, s := range sessions {
		views = append(views, sessionView{
			ID: s.ID, DeviceName: s.DeviceName, IP: s.IP, CreatedAt: s.CreatedAt, LastSeenAt: s.LastSeenAt,
			ExpiresAt: s.ExpiresAt, Current: s.ID == r.Principal.SessionID,
		})
	}
	return r.JSON(http.StatusOK, views)
}

// endSession ends one of the caller's sessions; another user's session id
// gets 404 like an unknown one.
func (m *Module) endSession(r *edge.Request) error {
	id := r.Param("id")
	userID := r.Principal.UserID
	var found bool
	err := m.endSessions(r.Context(), userID, func(now time.Time) ([]string, error) {
		ended, err := m.store.revokeSession(r.Context(), userID, id, now)
		found = ended
		if !ended {
			return nil, err
		}
		return []string{id}, err
	})
	if err != nil {
		return err
	}
	if !found {
		return edge.NotFound("no live session with this id")
	}
	return r.JSON(http.StatusOK, map[string]any{"session_id": id, "ended": true})
}

func (m *Module) endOtherSessions(r *edge.Request) error {
	userID := r.Principal.UserID
	var count int
	err := m.endSessions(r.Context(), userID, func(now time.Time) ([]string, error) {
		ids, err := m.store.revokeOtherSessions(r.Context(), userID, r.Principal.SessionID, now)
		count = len(ids)
		return ids, err
	})
	if err != nil {
		return err
	}
	return r.JSON(http.StatusOK, map[string]any{"ended": count})
}
