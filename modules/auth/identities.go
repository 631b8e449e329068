package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/storage"
)

// externalIdentity is a user as an external provider describes them.
type externalIdentity struct {
	// Provider is the provider id, or sso:<connection id>.
	Provider string
	// Subject is the provider's stable id of the user.
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
}

// identityView is one linked identity as GET /v1/auth/me shows it.
type identityView struct {
	Provider string    `json:"provider"`
	Email    string    `json:"email"`
	LinkedAt time.Time `json:"linked_at"`
}

func (s *store) identities(ctx context.Context, userID string) ([]identityView, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT provider, email, created_at FROM user_identities WHERE user_id = $1 ORDER BY provider`, userID)
	if err != nil {
		return nil, fmt.Errorf("list identities of user %s: %w", userID, err)
	}
	defer rows.Close()
	views := []identityView{}
	for rows.Next() {
		var view identityView
		var created int64
		if err := rows.Scan(&view.Provider, &view.Email, &created); err != nil {
			return nil, fmt.Errorf("list identities of user %s: %w", userID, err)
		}
		view.LinkedAt = fromMillis(created)
		views = append(views, view)
	}
	return views, rows.Err()
}

func (s *store) userByIdentity(ctx context.Context, provider, subject string) (user, error) {
	var userID string
	err := s.db.QueryRowContext(ctx,
		`SELECT user_id FROM user_identities WHERE provider = $1 AND subject = $2`, provider, subject).Scan(&userID)
	if errors.Is(err, sql.ErrNoRows) {
		return user{}, errNotFound
	}
	if err != nil {
		return user{}, fmt.Errorf("load identity %s of provider %s: %w", subject, provider, err)
	}
	return s.userByID(ctx, userID)
}

func (s *store) insertIdentity(ctx context.Context, identity externalIdentity, userID string, now time.Time) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO user_identities (provider, subject, user_id, email, created_at) VALUES ($1, $2, $3, $4, $5)`,
		identity.Provider, identity.Subject, userID, identity.Email, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("link identity of provider %s to user %s: %w", identity.Provider, userID, err)
	}
	return nil
}

// deleteIdentity unlinks the user's identity at provider when the account
// keeps another way to sign in: a password or another identity. On
// PostgreSQL the user's row is locked first, so two parallel unlinks of
// different providers cannot remove the last two methods together. SQLite
// runs one writer at a time, which gives the same.
func (s *store) deleteIdentity(ctx context.Context, userID, provider string) (deleted bool, lastMethod bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, false, fmt.Errorf("unlink identity of provider %s from user %s: %w", provider, userID, err)
	}
	defer func() { _ = tx.Rollback() }()

	if s.db.Dialect == storage.Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, userID); err != nil {
			return false, false, fmt.Errorf("lock user %s: %w", userID, err)
		}
	}
	result, err := tx.ExecContext(ctx,
		`DELETE FROM user_identities WHERE user_id = $1 AND provider = $2 AND (
		     EXISTS (SELECT 1 FROM users WHERE id = $1 AND password_hash <> '')
		  OR EXISTS (SELECT 1 FROM user_identities WHERE user_id = $1 AND provider <> $2))`,
		userID, provider)
	if err != nil {
		return false, false, fmt.Errorf("unlink identity of provider %s from user %s: %w", provider, userID, err)
	}
	if n, _ := result.RowsAffected(); n == 1 {
		if err := tx.Commit(); err != nil {
			return false, false, fmt.Errorf("unlink identity of provider %s from user %s: %w", provider, userID, err)
		}
		return true, false, nil
	}

	var linked int
	if err := tx.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM user_identities WHERE user_id = $1 AND provider = $2`, userID, provider).Scan(&linked); err != nil {
		return false, false, fmt.Errorf("unlink identity of provider %s from user %s: %w", provider, userID, err)
	}
	return false, linked > 0, nil
}

// resolveIdentity returns the account of an identity that a provider
// vouched for, linking or creating one when needed:
//   - an identity linked before signs in to its account;
//   - otherwise an account with the same email is linked, but only when the
//     provider marks the email verified;
//   - otherwise a new account is created, verified, without a password.
//
// Linking to an account whose own address was never verified removes its
// password and ends its sessions first. Someone who registered the address
// without owning it would otherwise keep a way into the owner's account.
func (m *Module) resolveIdentity(r *edge.Request, identity externalIdentity) (user, error) {
	ctx := r.Context()
	u, err := m.store.userByIdentity(ctx, identity.Provider, identity.Subject)
	if err == nil || !errors.Is(err, errNotFound) {
		return u, err
	}

	if !identity.EmailVerified {
		return user{}, edge.Forbidden("the provider has not verified this account's email address, so it cannot be used to sign in")
	}
	email, err := normalizeEmail(identity.Email)
	if err != nil {
		return user{}, edge.Forbidden("the provider returned no usable email address")
	}

	now := m.now().UTC().Truncate(time.Millisecond)
	u, err = m.store.userByEmail(ctx, email)
	switch {
	case errors.Is(err, errNotFound):
		u, err = m.createExternalUser(ctx, email, identity.Name, now)
		if err != nil {
			return user{}, err
		}
		r.Logger().Info("account created from an external identity", slog.String("user_id", u.ID), slog.String("provider", identity.Provider))
	case err != nil:
		return user{}, err
	case u.EmailVerifiedAt == nil:
		if err := m.claimUnverifiedAccount(ctx, u, now); err != nil {
			return user{}, err
		}
		r.Logger().Warn("unverified account claimed by a verified external identity; its password was removed",
			slog.String("user_id", u.ID), slog.String("provider", identity.Provider))
	}

	identity.Email = email
	if err := m.store.insertIdentity(ctx, identity, u.ID, now); err != nil {
		if storage.IsUniqueViolation(err) {
			// A parallel sign-in linked it first, or the account already has
			// another identity at this provider.
			if linked, lookupErr := m.store.userByIdentity(ctx, identity.Provider, identity.Subject); lookupErr == nil {
				return linked, nil
			}
			return user{}, edge.Conflict("this account is already linked to another identity at " + identity.Provider)
		}
		return user{}, err
	}
	r.Logger().Info("external identity linked", slog.String("user_id", u.ID), slog.String("provider", identity.Provider))
	return m.store.userByID(ctx, u.ID)
}

func (m *Module) createExternalUser(ctx context.Context, email, name string, now time.Time) (user, error) {
	id, err := newID("usr_")
	if err != nil {
		return user{}, err
	}
	u := user{ID: id, Email: email, DisplayName: truncateRunes(name, maxDisplayNameRunes), Role: roleUser, CreatedAt: now, UpdatedAt: now}
	if err := m.store.createUser(ctx, u); err != nil {
		if errors.Is(err, errEmailTaken) {
			// A parallel sign-in created it; link to that one.
			return m.store.userByEmail(ctx, email)
		}
		return user{}, err
	}
	if err := m.store.markVerified(ctx, id, now); err != nil {
		return user{}, err
	}
	return m.store.userByID(ctx, id)
}

func (m *Module) claimUnverifiedAccount(ctx context.Context, u user, now time.Time) error {
	if err := m.store.updateUser(ctx, "remove password", u.ID, `password_hash = '', updated_at = $2`, now.UnixMilli()); err != nil {
		return err
	}
	if err := m.endSessions(ctx, u.ID, func(at time.Time) ([]string, error) {
		return m.store.revokeAllSessions(ctx, u.ID, at)
	}); err != nil {
		return err
	}
	return m.store.markVerified(ctx, u.ID, now)
}

// unlinkIdentity serves DELETE /v1/auth/me/identities/{provider}.
func (m *Module) unlinkIdentity(r *edge.Request) error {
	provider := r.Param("provider")

	deleted, lastMethod, err := m.store.deleteIdentity(r.Context(), r.Principal.UserID, provider)
	if err != nil {
		return err
	}
	if lastMethod {
		conflict := edge.Conflict("this identity is the account's only way to sign in; set a password or link another identity first")
		conflict.Details = map[string]any{"provider": provider, "reason": "last_sign_in_method"}
		return conflict
	}
	if !deleted {
		return edge.NotFound("no identity of this provider is linked to the account")
	}

	r.Logger().Info("external identity unlinked", slog.String("user_id", r.Principal.UserID), slog.String("provider", provider))
	return r.JSON(http.StatusOK, map[string]any{"provider": provider, "unlinked": true})
}
