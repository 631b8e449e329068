package app_test

import (
	"net/http"
	"testing"
	"time"
)

// setSubscription writes the member's subscription row as billing would,
// and refreshes the member's actor.
func (s *testServer) setSubscription(t *testing.T, m member, tier, status string, periodEnd time.Time) {
	t.Helper()
	now := s.clock.Now().UnixMilli()
	s.exec(t, `DELETE FROM entitlement_subscriptions WHERE user_id = $1`, m.id)
	s.exec(t, `INSERT INTO entitlement_subscriptions
		(user_id, tier, status, current_period_end, cancel_at_period_end, grace_until, stripe_created, updated_at)
		VALUES ($1, $2, $3, $4, $5, NULL, $6, $6)`, m.id, tier, status, periodEnd.UnixMilli(), false, now)
	s.app.Users().RefreshEntitlements(m.id)
}

func TestOneTrialAcrossPlanChanges(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startEntitlementsServer(t, e)
		m := s.member(t)
		periodEnd := s.clock.Now().Add(30 * 24 * time.Hour)

		if res := s.as(t, m, "POST", "/v1/entitlements/trial", ""); res.status != http.StatusCreated {
			t.Fatalf("first trial = %d %s", res.status, res.body)
		}

		steps := []struct {
			name, tier, status string
			wantTier           string
		}{
			{"subscribed to pro", "pro", "active", "pro"},
			{"changed plan to studio", "studio", "active", "studio"},
			{"canceled", "studio", "canceled", "pro"},
			{"subscribed again", "pro", "active", "pro"},
		}
		for _, step := range steps {
			s.setSubscription(t, m, step.tier, step.status, periodEnd)
			view, _ := s.entitlements(t, m)
			if view.Tier != step.wantTier {
				t.Errorf("%s: tier = %q, want %q", step.name, view.Tier, step.wantTier)
			}
			res := s.as(t, m, "POST", "/v1/entitlements/trial", "")
			if res.status != http.StatusConflict {
				t.Errorf("%s: another trial = %d, want 409 (one trial per account)", step.name, res.status)
			}
		}

		// After the trial's end and a cancellation, the account is back on Core and still has no second trial.
		s.setSubscription(t, m, "pro", "canceled", periodEnd)
		s.clock.Advance(15 * 24 * time.Hour)
		if view, _ := s.entitlements(t, m); view.Tier != "core" {
			t.Errorf("tier after the trial and the cancellation = %q, want core", view.Tier)
		}
		if res := s.as(t, m, "POST", "/v1/entitlements/trial", ""); res.status != http.StatusConflict {
			t.Errorf("trial after everything ended = %d, want 409", res.status)
		}
	})
}

func TestOverrideBeatsSubscriptionThenExpires(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startEntitlementsServer(t, e)
		operator := s.operator(t)
		m := s.member(t)
		s.setSubscription(t, m, "pro", "active", s.clock.Now().Add(90*24*time.Hour))
		if view, _ := s.entitlements(t, m); view.Tier != "pro" || view.Source != "subscription" {
			t.Fatalf("before the override: %s from %s, want pro from subscription", view.Tier, view.Source)
		}

		expires := s.clock.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
		res := s.as(t, operator, "PUT", "/v1/admin/users/"+m.id+"/entitlements/override",
			`{"tier": "studio", "expires_at": "`+expires+`", "reason": "support case"}`)
		if res.status != http.StatusOK {
			t.Fatalf("set override = %d %s", res.status, res.body)
		}
		view, limits := s.entitlements(t, m)
		if view.Tier != "studio" || view.Source != "override" {
			t.Errorf("with the override: %s from %s, want studio from override", view.Tier, view.Source)
		}
		if got := limits.header.Get("X-RateLimit-Limit"); got != "1000" {
			t.Errorf("X-RateLimit-Limit with the override = %q, want 1000", got)
		}

		s.clock.Advance(2*time.Hour + time.Second)
		view, limits = s.entitlements(t, m)
		if view.Tier != "pro" || view.Source != "subscription" {
			t.Errorf("after the override expired: %s from %s, want pro from subscription", view.Tier, view.Source)
		}
		if got := limits.header.Get("X-RateLimit-Limit"); got != "300" {
			t.Errorf("X-RateLimit-Limit after the override = %q, want 300", got)
		}
	})
}
