package entitlements

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/storage"
)

// Errors returned by Admin.
var (
	// ErrUserNotFound means no account has the user id.
	ErrUserNotFound = errors.New("user not found")
	// ErrNoOverride means the user has no active override to clear.
	ErrNoOverride = errors.New("no active override")
)

// Limits of operator input.
const (
	maxReasonLength = 500
	// historyLimit is how many of the latest history entries Show returns.
	historyLimit = 200
)

// InvalidInputError is an operator input that Admin rejects; Field names it.
type InvalidInputError struct {
	Field   string
	Message string
}

// Error returns the field and the message.
func (e *InvalidInputError) Error() string { return e.Field + ": " + e.Message }

// OverrideInput is an operator's override of one user. At least one of
// Tier and Features must be set.
type OverrideInput struct {
	// Tier is a catalog tier id that replaces the user's tier; empty keeps
	// the tier that the user's subscription, trial or the default gives.
	Tier string `json:"tier,omitempty"`
	// Features are granted on top of the tier.
	Features []string `json:"features,omitempty"`
	// ExpiresAt ends the override; nil means it lasts until it is cleared.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Reason is why the operator set it, kept in the history. Required.
	Reason string `json:"reason"`
}

// Override is an active override as operators see it.
type Override struct {
	Tier      string     `json:"tier"`
	Features  []string   `json:"features"`
	ExpiresAt *time.Time `json:"expires_at"`
	Reason    string     `json:"reason"`
	Actor     string     `json:"actor"`
	CreatedAt time.Time  `json:"created_at"`
}

// HistoryEntry is one recorded change of a user's entitlements. Actor is
// the acting user's id, "system" for the expiry timer or "cli" for the
// nexus command.
type HistoryEntry struct {
	ID        int64           `json:"id"`
	Actor     string          `json:"actor"`
	Action    string          `json:"action"`
	Detail    json.RawMessage `json:"detail"`
	Reason    string          `json:"reason"`
	CreatedAt time.Time       `json:"created_at"`
}

// UserEntitlements is the operators' view of one user: the entitlements
// resolved now, the active override and the latest history, newest first.
type UserEntitlements struct {
	UserID       string               `json:"user_id"`
	Entitlements runtime.Entitlements `json:"entitlements"`
	Override     *Override            `json:"override"`
	History      []HistoryEntry       `json:"history"`
}

// Admin performs operator actions on entitlements, for the /v1/admin
// routes and the `nexus admin entitlements` command. With a Users, every
// change reaches the user's actor at once. The command runs outside the
// server without one, so a running server's actor keeps its snapshot
// until it passivates or is refreshed for another reason.
type Admin struct {
	store    *store
	resolver *resolver
	tiers    configs.Tiers
	clock    clock.Clock
	users    runtime.UserNotifier
	// changed is called after a change, so the module re-arms its timer.
	changed func()
}

// NewAdmin returns operator actions on db with the tier catalog tiers. users may be nil.
func NewAdmin(db *storage.DB, tiers configs.Tiers, clk clock.Clock, users runtime.UserNotifier) *Admin {
	s := &store{db: db}
	return &Admin{
		store:    s,
		resolver: &resolver{store: s, tiers: tiers, clock: clk, logger: discardLogger()},
		tiers:    tiers,
		clock:    clk,
		users:    users,
	}
}

// Show returns the user's entitlements, active override and history.
func (a *Admin) Show(ctx context.Context, userID string) (UserEntitlements, error) {
	if err := a.requireUser(ctx, userID); err != nil {
		return UserEntitlements{}, err
	}
	now := a.clock.Now()

	st, err := a.store.loadState(ctx, userID)
	if err != nil {
		return UserEntitlements{}, err
	}
	entitlements, err := resolve(a.tiers, st, now, a.resolver.logger)
	if err != nil {
		return UserEntitlements{}, err
	}
	view := UserEntitlements{UserID: userID, Entitlements: entitlements, History: []HistoryEntry{}}
	if st.Override != nil && st.Override.activeAt(now) {
		o := st.Override
		view.Override = &Override{Tier: o.Tier, Features: o.Features, ExpiresAt: o.ExpiresAt, Reason: o.Reason, Actor: o.Actor, CreatedAt: o.CreatedAt}
	}

	entries, err := a.store.history(ctx, userID, historyLimit)
	if err != nil {
		return UserEntitlements{}, err
	}
	for _, entry := range entries {
		view.History = append(view.History, HistoryEntry{
			ID: entry.ID, Actor: entry.Actor, Action: entry.Action, Detail: entry.Detail,
			Reason: entry.Reason, CreatedAt: entry.CreatedAt,
		})
	}
	return view, nil
}

// SetOverride replaces the user's override with input, recorded under
// actor. It returns an *InvalidInputError for input that fails a check.
func (a *Admin) SetOverride(ctx context.Context, userID, actor string, input OverrideInput) error {
	now := a.clock.Now()
	o, err := a.checkOverride(input, now)
	if err != nil {
		return err
	}
	if err := a.requireUser(ctx, userID); err != nil {
		return err
	}

	o.UserID, o.Actor, o.CreatedAt = userID, actor, now
	if err := a.store.setOverride(ctx, o); err != nil {
		return err
	}
	a.afterChange(userID)
	return nil
}

// ClearOverride ends the user's active override, recorded under actor
// with reason. It returns ErrNoOverride when none is active.
func (a *Admin) ClearOverride(ctx context.Context, userID, actor, reason string) error {
	reason, err := checkReason(reason)
	if err != nil {
		return err
	}
	if err := a.requireUser(ctx, userID); err != nil {
		return err
	}

	err = a.store.endOverride(ctx, userID, actor, actionOverrideCleared, reason, a.clock.Now())
	if errors.Is(err, errNotFound) {
		return ErrNoOverride
	}
	if err != nil {
		return err
	}
	a.afterChange(userID)
	return nil
}

func (a *Admin) afterChange(userID string) {
	if a.users != nil {
		a.users.RefreshEntitlements(userID)
	}
	if a.changed != nil {
		a.changed()
	}
}

func (a *Admin) requireUser(ctx context.Context, userID string) error {
	_, err := a.store.userRole(ctx, userID)
	if errors.Is(err, errNotFound) {
		return ErrUserNotFound
	}
	return err
}

// checkOverride validates input and returns it as a row without user,
// actor and time.
func (a *Admin) checkOverride(input OverrideInput, now time.Time) (override, error) {
	reason, err := checkReason(input.Reason)
	if err != nil {
		return override{}, err
	}
	if input.Tier != "" {
		if _, ok := a.tiers.Catalog[input.Tier]; !ok {
			return override{}, &InvalidInputError{Field: "tier", Message: fmt.Sprintf("tier %q is not in the catalog", input.Tier)}
		}
	}
	features := []string{}
	for _, feature := range input.Features {
		if !slices.Contains(configs.Features, feature) {
			return override{}, &InvalidInputError{Field: "features",
				Message: fmt.Sprintf("unknown feature %q, use one of %s", feature, strings.Join(configs.Features, ", "))}
		}
		if !slices.Contains(features, feature) {
			features = append(features, feature)
		}
	}
	if input.Tier == "" && len(features) == 0 {
		return override{}, &InvalidInputError{Field: "tier", Message: "an override needs a tier, features or both"}
	}
	if input.ExpiresAt != nil && !input.ExpiresAt.After(now) {
		return override{}, &InvalidInputError{Field: "expires_at", Message: "expires_at must be in the future"}
	}

	o := override{Tier: input.Tier, Features: features, Reason: reason}
	if input.ExpiresAt != nil {
		expires := input.ExpiresAt.UTC().Truncate(time.Millisecond)
		o.ExpiresAt = &expires
	}
	return o, nil
}

func checkReason(reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		return "", &InvalidInputError{Field: "reason", Message: "a reason is required"}
	case !utf8.ValidString(reason) || utf8.RuneCountInString(reason) > maxReasonLength:
		return "", &InvalidInputError{Field: "reason", Message: fmt.Sprintf("reason must be valid text of at most %d characters", maxReasonLength)}
	}
	return reason, nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
