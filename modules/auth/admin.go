package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/storage"
)

// ErrUserNotFound is returned by Admin for an unknown email or id.
var ErrUserNotFound = errors.New("user not found")

// lockedForever is the lock end of an account locked without an end.
var lockedForever = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// UserInfo is an account as operators see it.
type UserInfo struct {
	ID            string     `json:"id"`
	Email         string     `json:"email"`
	DisplayName   string     `json:"display_name"`
	Role          string     `json:"role"`
	EmailVerified bool       `json:"email_verified"`
	LockedUntil   *time.Time `json:"locked_until"`
	CreatedAt     time.Time  `json:"created_at"`
}

func infoOf(u user) UserInfo {
	return UserInfo{
		ID: u.ID, Email: u.Email, DisplayName: u.DisplayName, Role: u.Role,
		EmailVerified: u.EmailVerifiedAt != nil, LockedUntil: u.LockedUntil, CreatedAt: u.CreatedAt,
	}
}

// Admin performs operator actions on accounts, for the /v1/admin routes
// and the `nexus admin` command. Without a notifier (a command on a server
// without Redis), ended sessions reach the user actors at their next
// recheck of the store instead of at once.
type Admin struct {
	store *store
	clock clock.Clock
	users runtime.UserNotifier
}

// NewAdmin returns operator actions on db. users may be nil.
func NewAdmin(db *storage.DB, clk clock.Clock, users runtime.UserNotifier) *Admin {
	return &Admin{store: &store{db: db}, clock: clk, users: users}
}

func notFoundAs(err error) error {
	if errors.Is(err, errNotFound) {
		return ErrUserNotFound
	}
	return err
}

// FindByEmail returns the account of the address, normalised as at registration.
func (a *Admin) FindByEmail(ctx context.Context, email string) (UserInfo, error) {
	normalized, err := normalizeEmail(email)
	if err != nil {
		return UserInfo{}, fmt.Errorf("find %q: %w", email, err)
	}
	u, err := a.store.userByEmail(ctx, normalized)
	if err != nil {
		return UserInfo{}, notFoundAs(err)
	}
	return infoOf(u), nil
}

// Grant gives the account of email the role ("admin" or "user").
func (a *Admin) Grant(ctx context.Context, email, role string) error {
	if role != roleAdmin && role != roleUser {
		return fmt.Errorf("unknown role %q: use admin or user", role)
	}
	info, err := a.FindByEmail(ctx, email)
	if err != nil {
		return err
	}
	return notFoundAs(a.store.setRole(ctx, info.ID, role, a.clock.Now()))
}

// Lock locks the account until the given time, or without an end when
// until is zero, and ends its sessions.
func (a *Admin) Lock(ctx context.Context, userID string, until time.Time) error {
	if until.IsZero() {
		until = lockedForever
	}
	now := a.clock.Now()
	if err := a.store.setLockedUntil(ctx, userID, &until, now); err != nil {
		return notFoundAs(err)
	}
	return a.endAllSessions(ctx, userID, now)
}

// Unlock lifts an operator's lock.
func (a *Admin) Unlock(ctx context.Context, userID string) error {
	return notFoundAs(a.store.setLockedUntil(ctx, userID, nil, a.clock.Now()))
}

// MarkVerified marks the account's email verified.
func (a *Admin) MarkVerified(ctx context.Context, userID string) error {
	return notFoundAs(a.store.markVerified(ctx, userID, a.clock.Now()))
}

// Delete ends the account's sessions, runs every module's deletion hook and
// deletes the account. A failing hook stops before the account is deleted,
// so no module's data outlives its account.
func (a *Admin) Delete(ctx context.Context, userID string) error {
	if _, err := a.store.userByID(ctx, userID); err != nil {
		return notFoundAs(err)
	}
	if err := a.endAllSessions(ctx, userID, a.clock.Now()); err != nil {
		return err
	}
	if err := runtime.RunAccountHooks(ctx, a.store.db, userID); err != nil {
		return fmt.Errorf("delete data of user %s: %w", userID, err)
	}
	return notFoundAs(a.store.deleteUser(ctx, userID))
}

func (a *Admin) endAllSessions(ctx context.Context, userID string, now time.Time) error {
	ids, err := a.store.revokeAllSessions(ctx, userID, now)
	if err != nil {
		return err
	}
	if a.users != nil {
		for _, id := range ids {
			a.users.EndSession(userID, id)
		}
	}
	return nil
}

// requireAdmin rejects callers without the admin role with 403.
func (m *Module) requireAdmin(r *edge.Request) error {
	u, err := m.currentUser(r)
	if err != nil {
		return err
	}
	if u.Role != roleAdmin {
		return edge.Forbidden("this route is for operators with the admin role")
	}
	return nil
}

func (m *Module) admin() *Admin {
	return NewAdmin(m.host.DB, m.host.Clock, runtime.Notifier(m.host.Users))
}

// adminResult maps Admin's errors to responses and logs the action.
func (m *Module) adminResult(r *edge.Request, action, userID string, err error) error {
	if errors.Is(err, ErrUserNotFound) {
		return edge.NotFound("no user with this id")
	}
	if err != nil {
		return err
	}
	r.Logger().Info("operator action", slog.String("action", action),
		slog.String("operator_id", r.Principal.UserID), slog.String("target_user_id", userID))
	info, err := m.store.userByID(r.Context(), userID)
	if errors.Is(err, errNotFound) {
		return r.JSON(http.StatusOK, map[string]any{"id": userID, "deleted": true})
	}
	if err != nil {
		return err
	}
	return r.JSON(http.StatusOK, infoOf(info))
}

func (m *Module) adminFindUser(r *edge.Request) error {
	if err := m.requireAdmin(r); err != nil {
		return err
	}
	email := string(r.Ctx.QueryArgs().Peek("email"))
	if _, err := normalizeEmail(email); err != nil {
		return invalidEmail()
	}
	info, err := m.admin().FindByEmail(r.Context(), email)
	if errors.Is(err, ErrUserNotFound) {
		return edge.NotFound("no user with this email")
	}
	if err != nil {
		return err
	}
	return r.JSON(http.StatusOK, info)
}

type lockInput struct {
	// Until is when the lock ends; absent means no end.
	Until *time.Time `json:"until"`
}

func (m *Module) adminLock(r *edge.Request) error {
	if err := m.requireAdmin(r); err != nil {
		return err
	}
	var input lockInput
	if len(r.Ctx.PostBody()) > 0 {
		if err := r.Decode(&input); err != nil {
			return err
		}
	}
	var until time.Time
	if input.Until != nil {
		if !input.Until.After(m.now()) {
			return edge.Validation("until", "until must be in the future")
		}
		until = *input.Until
	}
	id := r.Param("id")
	return m.adminResult(r, "lock", id, m.admin().Lock(r.Context(), id, until))
}

// adminUnlock lifts an operator's lock and also the sign-in lock that
// failed attempts put on the account's address.
func (m *Module) adminUnlock(r *edge.Request) error {
	if err := m.requireAdmin(r); err != nil {
		return err
	}
	id := r.Param("id")
	err := m.admin().Unlock(r.Context(), id)
	if err == nil {
		err = m.clearLoginLock(r.Context(), id)
	}
	return m.adminResult(r, "unlock", id, err)
}

func (m *Module) clearLoginLock(ctx context.Context, userID string) error {
	u, err := m.store.userByID(ctx, userID)
	if err != nil {
		return notFoundAs(err)
	}
	guard := m.loginGuard(u.Email)
	if err := m.host.KV.Delete(ctx, guard.lockKey, guard.attemptsKey); err != nil {
		return fmt.Errorf("clear sign-in lock of user %s: %w", userID, err)
	}
	return nil
}

func (m *Module) adminVerify(r *edge.Request) error {
	if err := m.requireAdmin(r); err != nil {
		return err
	}
	id := r.Param("id")
	return m.adminResult(r, "verify", id, m.admin().MarkVerified(r.Context(), id))
}

func (m *Module) adminDelete(r *edge.Request) error {
	if err := m.requireAdmin(r); err != nil {
		return err
	}
	id := r.Param("id")
	if id == r.Principal.UserID {
		return edge.Validation("id", "operators delete their own account through DELETE /v1/auth/me")
	}
	return m.adminResult(r, "delete", id, m.admin().Delete(r.Context(), id))
}
