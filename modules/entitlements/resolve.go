package entitlements

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/runtime/clock"
)

// Stripe subscription statuses that the resolver maps to a tier.
const (
	statusActive   = "active"
	statusTrialing = "trialing"
	statusPastDue  = "past_due"
)

// resolver computes a user's entitlements from the store. It implements
// runtime.EntitlementResolver.
type resolver struct {
	store  *store
	tiers  configs.Tiers
	clock  clock.Clock
	logger *slog.Logger
}

// Resolve reads the user's rows and returns the entitlements they grant now.
func (r *resolver) Resolve(ctx context.Context, userID string) (runtime.Entitlements, error) {
	st, err := r.store.loadState(ctx, userID)
	if err != nil {
		return runtime.Entitlements{}, fmt.Errorf("resolve entitlements of user %s: %w", userID, err)
	}
	return resolve(r.tiers, st, r.clock.Now(), r.logger.With(slog.String("user_id", userID)))
}

// resolve picks the tier of the first source that applies at now: an
// active operator override with a tier, a subscription whose status grants
// its tier, an active trial, then the catalog's default tier. An active
// override's features are added to whatever tier applies. A tier id that
// the catalog no longer has is logged and skipped, so a config change
// cannot lock users out.
func resolve(tiers configs.Tiers, st state, now time.Time, logger *slog.Logger) (runtime.Entitlements, error) {
	type candidate struct{ tier, source string }
	var candidates []candidate

	var activeOverride *override
	if st.Override != nil && st.Override.activeAt(now) {
		activeOverride = st.Override
		if activeOverride.Tier != "" {
			candidates = append(candidates, candidate{activeOverride.Tier, runtime.SourceOverride})
		}
	}
	if st.Subscription != nil {
		if tier, ok := subscriptionTier(*st.Subscription, now); ok {
			candidates = append(candidates, candidate{tier, runtime.SourceSubscription})
		}
	}
	if st.Trial != nil && trialActive(*st.Trial, now) {
		candidates = append(candidates, candidate{st.Trial.Tier, runtime.SourceTrial})
	}
	candidates = append(candidates, candidate{tiers.Default, runtime.SourceDefault})

	var entitlements runtime.Entitlements
	var err error
	for _, c := range candidates {
		entitlements, err = runtime.TierEntitlements(tiers, c.tier, c.source)
		if err == nil {
			break
		}
		logger.Warn("entitlement source names a tier outside the catalog, skipped",
			slog.String("source", c.source), slog.String("tier", c.tier))
	}
	if err != nil {
		return runtime.Entitlements{}, fmt.Errorf("default tier: %w", err)
	}

	if activeOverride != nil {
		for _, feature := range activeOverride.Features {
			if !entitlements.HasFeature(feature) {
				entitlements.Features = append(entitlements.Features, feature)
			}
		}
	}
	if st.Trial != nil {
		entitlements.Trial = trialState(*st.Trial, now)
	}
	return entitlements, nil
}

// subscriptionTier maps a subscription row to the tier it grants at now.
// Active and trialing grant the row's tier, but only until
// current_period_end when the subscription cancels at the period end.
// past_due grants it until grace_until, and a NULL grace_until means no
// grace. Every other status (canceled, unpaid, incomplete,
// incomplete_expired, paused) grants none.
func subscriptionTier(sub subscription, now time.Time) (string, bool) {
	switch sub.Status {
	case statusActive, statusTrialing:
		if sub.CancelAtPeriodEnd && !now.Before(sub.CurrentPeriodEnd) {
			return "", false
		}
		return sub.Tier, true
	case statusPastDue:
		if sub.GraceUntil != nil && now.Before(*sub.GraceUntil) {
			return sub.Tier, true
		}
		return "", false
	default:
		return "", false
	}
}

// trialActive reports whether the trial grants its tier at now. A trial
// past its end grants nothing even before the timer marks it ended.
func trialActive(t trial, now time.Time) bool {
	return t.EndedAt == nil && now.Before(t.EndsAt)
}

func trialState(t trial, now time.Time) *runtime.Trial {
	return &runtime.Trial{Tier: t.Tier, StartedAt: t.StartedAt, EndsAt: t.EndsAt, Active: trialActive(t, now)}
}
