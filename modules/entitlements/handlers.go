package entitlements

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/runtime"
)

// roleAdmin is the users.role value of operators, as the auth module sets it.
const roleAdmin = "admin"

// startTrial starts the caller's trial of the configured tier. An account
// that already had a trial gets 409, whatever its tier is now. An account
// with an active subscription or an operator's tier override gets 403 and
// keeps its trial for later.
func (m *Module) startTrial(r *edge.Request) error {
	userID := r.Principal.UserID
	ctx := r.Context()

	_, err := m.store.trial(ctx, m.store.db, userID)
	switch {
	case err == nil:
		return trialTaken()
	case !errors.Is(err, errNotFound):
		return err
	}
	source := r.Principal.Entitlements.Source
	if source == runtime.SourceSubscription || source == runtime.SourceOverride {
		return edge.Forbidden("a trial is for accounts without a subscription or an operator's tier override")
	}

	now := m.host.Clock.Now().UTC().Truncate(time.Millisecond)
	t := trial{UserID: userID, Tier: m.opts.TrialTier, StartedAt: now, EndsAt: now.Add(m.opts.TrialLength)}
	err = m.store.insertTrial(ctx, t, userID)
	if errors.Is(err, errTrialTaken) {
		return trialTaken()
	}
	if err != nil {
		return err
	}

	m.refresh(userID)
	m.expiry.rearm(ctx)
	r.Logger().Info("trial started", slog.String("user_id", userID), slog.String("tier", t.Tier),
		slog.Time("ends_at", t.EndsAt))
	return r.JSON(http.StatusCreated, trialState(t, now))
}

func trialTaken() *edge.Error {
	return edge.Conflict("this account already had its trial")
}

func (m *Module) refresh(userID string) {
	if m.host.Users != nil {
		m.host.Users.RefreshEntitlements(userID)
	}
}

// admin returns the operator actions, re-arming the expiry timer after each change.
func (m *Module) admin() *Admin {
	a := NewAdmin(m.host.DB, m.tiers, m.host.Clock, runtime.Notifier(m.host.Users))
	a.resolver.logger = m.resolver.logger
	a.changed = func() { m.expiry.rearm(context.Background()) }
	return a
}

// requireAdmin rejects callers without the admin role with 403.
func (m *Module) requireAdmin(r *edge.Request) error {
	role, err := m.store.userRole(r.Context(), r.Principal.UserID)
	if errors.Is(err, errNotFound) {
		return edge.Forbidden("this route is for operators with the admin role")
	}
	if err != nil {
		return err
	}
	if role != roleAdmin {
		return edge.Forbidden("this route is for operators with the admin role")
	}
	return nil
}

// adminError maps Admin's errors to responses.
func adminError(err error) error {
	var invalid *InvalidInputError
	switch {
	case errors.As(err, &invalid):
		return edge.Validation(invalid.Field, invalid.Message)
	case errors.Is(err, ErrUserNotFound):
		return edge.NotFound("no user with this id")
	case errors.Is(err, ErrNoOverride):
		return edge.NotFound("the user has no active override")
	}
	return err
}

// adminRespond logs the operator's action and returns the user's view.
func (m *Module) adminRespond(r *edge.Request, action, userID string) error {
	r.Logger().Info("operator action", slog.String("action", action),
		slog.String("operator_id", r.Principal.UserID), slog.String("target_user_id", userID))
	view, err := m.admin().Show(r.Context(), userID)
	if err != nil {
		return adminError(err)
	}
	return r.JSON(http.StatusOK, view)
}

func (m *Module) adminShow(r *edge.Request) error {
	if err := m.requireAdmin(r); err != nil {
		return err
	}
	view, err := m.admin().Show(r.Context(), r.Param("id"))
	if err != nil {
		return adminError(err)
	}
	return r.JSON(http.StatusOK, view)
}

func (m *Module) adminSetOverride(r *edge.Request) error {
	if err := m.requireAdmin(r); err != nil {
		return err
	}
	var input OverrideInput
	if err := r.Decode(&input); err != nil {
		return err
	}

	userID := r.Param("id")
	if err := m.admin().SetOverride(r.Context(), userID, r.Principal.UserID, input); err != nil {
		return adminError(err)
	}
	return m.adminRespond(r, actionOverrideSet, userID)
}

// clearInput is the body of DELETE /v1/admin/users/{id}/entitlements/override.
type clearInput struct {
	Reason string `json:"reason"`
}

func (m *Module) adminClearOverride(r *edge.Request) error {
	if err := m.requireAdmin(r); err != nil {
		return err
	}
	var input clearInput
	if err := r.Decode(&input); err != nil {
		return err
	}

	userID := r.Param("id")
	if err := m.admin().ClearOverride(r.Context(), userID, r.Principal.UserID, input.Reason); err != nil {
		return adminError(err)
	}
	return m.adminRespond(r, actionOverrideCleared, userID)
}
