package app_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/modules/entitlements"
)

// adminEntitlementsView is the data of the operator routes.
type adminEntitlementsView struct {
	UserID       string           `json:"user_id"`
	Entitlements entitlementsView `json:"entitlements"`
	Override     *struct {
		Tier      string     `json:"tier"`
		Features  []string   `json:"features"`
		ExpiresAt *time.Time `json:"expires_at"`
		Reason    string     `json:"reason"`
		Actor     string     `json:"actor"`
	} `json:"override"`
	History []struct {
		ID     int64  `json:"id"`
		Actor  string `json:"actor"`
		Action string `json:"action"`
		Reason string `json:"reason"`
	} `json:"history"`
}

func (v adminEntitlementsView) actions() []string {
	var actions []string
	for _, entry := range v.History {
		actions = append(actions, entry.Action)
	}
	return actions
}

func TestOverrideBeatsTrialAndExpires(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startEntitlementsServer(t, e)
		op, m := s.operator(t), s.member(t)
		if res := s.as(t, m, "POST", "/v1/entitlements/trial", ""); res.status != http.StatusCreated {
			t.Fatalf("start trial = %d %s", res.status, res.body)
		}

		expires := s.clock.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		body := `{"tier": "studio", "expires_at": "` + expires + `", "reason": "support ticket 12"}`
		res := s.as(t, op, "PUT", "/v1/admin/users/"+m.id+"/entitlements/override", body)
		if res.status != http.StatusOK {
			t.Fatalf("set override = %d %s", res.status, res.body)
		}

		view, limits := s.entitlements(t, m)
		if view.Tier != "studio" {
			t.Errorf("tier with the override = %q, want studio", view.Tier)
		}
		if view.Source != "override" {
			t.Errorf("source with the override = %q, want override", view.Source)
		}
		if got := limits.header.Get("X-RateLimit-Limit"); got != "1000" {
			t.Errorf("X-RateLimit-Limit with the override = %q, want 1000", got)
		}

		s.clock.Advance(time.Hour)
		var endedAt int64
		err := s.app.DB().QueryRowContext(context.Background(),
			`SELECT ended_at FROM entitlement_overrides WHERE user_id = $1`, m.id).Scan(&endedAt)
		if err != nil {
			t.Fatalf("load override row: %v", err)
		}
		if want := s.clock.Now().UnixMilli(); endedAt != want {
			t.Errorf("override ended_at = %d, want its expiry %d", endedAt, want)
		}

		view, _ = s.entitlements(t, m)
		if view.Tier != "pro" {
			t.Errorf("tier after the override expired = %q, want pro from the trial", view.Tier)
		}
		if view.Source != "trial" {
			t.Errorf("source after the override expired = %q, want trial", view.Source)
		}

		res = s.as(t, op, "GET", "/v1/admin/users/"+m.id+"/entitlements", "")
		if res.status != http.StatusOK {
			t.Fatalf("admin view = %d %s", res.status, res.body)
		}
		var admin adminEntitlementsView
		res.data(t, &admin)
		if admin.Override != nil {
			t.Errorf("override after expiry = %+v, want null", admin.Override)
		}
		want := []string{"override_expired", "override_set", "trial_started"}
		got := admin.actions()
		if len(got) != len(want) {
			t.Fatalf("history = %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("history[%d] = %q, want %q", i, got[i], want[i])
			}
		}
		if admin.History[1].Actor != op.id {
			t.Errorf("override_set actor = %q, want the operator %s", admin.History[1].Actor, op.id)
		}
		if admin.History[1].Reason != "support ticket 12" {
			t.Errorf("override_set reason = %q", admin.History[1].Reason)
		}
		if admin.History[0].Actor != "system" {
			t.Errorf("override_expired actor = %q, want system", admin.History[0].Actor)
		}
	})
}

func TestOverrideAdminRoutes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startEntitlementsServer(t, e)
		op, m := s.operator(t), s.member(t)
		base := "/v1/admin/users/" + m.id + "/entitlements"

		for _, route := range []struct{ method, path, body string }{
			{"GET", base, ""},
			{"PUT", base + "/override", `{"tier": "pro", "reason": "self-service"}`},
			{"DELETE", base + "/override", `{"reason": "self-service"}`},
		} {
			res := s.as(t, m, route.method, route.path, route.body)
			if res.status != http.StatusForbidden {
				t.Errorf("%s %s as a user = %d, want 403", route.method, route.path, res.status)
			}
		}
		if res := s.as(t, op, "GET", "/v1/admin/users/usr_nobody/entitlements", ""); res.status != http.StatusNotFound {
			t.Errorf("unknown user = %d %s, want 404", res.status, res.body)
		}

		past := s.clock.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
		cases := []struct {
			name, body, field string
		}{
			{"missing reason", `{"tier": "pro"}`, "reason"},
			{"blank reason", `{"tier": "pro", "reason": "   "}`, "reason"},
			{"unknown tier", `{"tier": "platinum", "reason": "r"}`, "tier"},
			{"unknown feature", `{"features": ["teleport"], "reason": "r"}`, "features"},
			{"nothing granted", `{"reason": "r"}`, "tier"},
			{"expiry in the past", `{"tier": "pro", "expires_at": "` + past + `", "reason": "r"}`, "expires_at"},
			{"unknown field", `{"tier": "pro", "reason": "r", "rank": 9}`, "rank"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				res := s.as(t, op, "PUT", base+"/override", tc.body)
				if res.status != http.StatusBadRequest {
					t.Fatalf("status = %d %s, want 400", res.status, res.body)
				}
				if field := res.envelopeError(t).Details["field"]; field != tc.field {
					t.Errorf("details.field = %v, want %q", field, tc.field)
				}
			})
		}

		// An override of features only keeps the tier and adds the feature.
		res := s.as(t, op, "PUT", base+"/override", `{"features": ["sync"], "reason": "beta tester"}`)
		if res.status != http.StatusOK {
			t.Fatalf("set features override = %d %s", res.status, res.body)
		}
		var admin adminEntitlementsView
		res.data(t, &admin)
		if admin.Override == nil || admin.Override.Reason != "beta tester" {
			t.Errorf("override in the answer = %+v", admin.Override)
		}
		view, _ := s.entitlements(t, m)
		if view.Tier != "core" || view.Source != "default" {
			t.Errorf("tier and source = %q %q, want core default", view.Tier, view.Source)
		}
		if !view.has("sync") {
			t.Errorf("features = %v, want sync granted by the override", view.Features)
		}
		if res := s.as(t, m, "GET", "/v1/test/sync", ""); res.status != http.StatusOK {
			t.Errorf("sync route with the feature override = %d %s, want 200", res.status, res.body)
		}

		if res := s.as(t, op, "DELETE", base+"/override", `{}`); res.status != http.StatusBadRequest {
			t.Errorf("clear without a reason = %d, want 400", res.status)
		}
		res = s.as(t, op, "DELETE", base+"/override", `{"reason": "beta over"}`)
		if res.status != http.StatusOK {
			t.Fatalf("clear = %d %s", res.status, res.body)
		}
		res.data(t, &admin)
		if admin.Override != nil {
			t.Errorf("override after clear = %+v, want null", admin.Override)
		}
		if got := admin.actions(); len(got) != 2 || got[0] != "override_cleared" || got[1] != "override_set" {
			t.Errorf("history = %v, want override_cleared, override_set", got)
		}
		if res := s.as(t, m, "GET", "/v1/test/sync", ""); res.status != http.StatusForbidden {
			t.Errorf("sync route after clear = %d, want 403", res.status)
		}
		if res := s.as(t, op, "DELETE", base+"/override", `{"reason": "again"}`); res.status != http.StatusNotFound {
			t.Errorf("second clear = %d %s, want 404", res.status, res.body)
		}

		// A user with a tier override cannot start a trial, and keeps it for later.
		s.as(t, op, "PUT", base+"/override", `{"tier": "pro", "reason": "partner"}`)
		if res := s.as(t, m, "POST", "/v1/entitlements/trial", ""); res.status != http.StatusForbidden {
			t.Errorf("trial with a tier override = %d %s, want 403", res.status, res.body)
		}
		s.as(t, op, "DELETE", base+"/override", `{"reason": "partner left"}`)
		if res := s.as(t, m, "POST", "/v1/entitlements/trial", ""); res.status != http.StatusCreated {
			t.Errorf("trial after the override = %d %s, want 201", res.status, res.body)
		}
	})
}

// The nexus admin command works through entitlements.Admin without a Users.
func TestOverrideCommandActions(t *testing.T) {
	s := startEntitlementsServer(t, engineSQLite)
	m := s.member(t)
	admin := entitlements.NewAdmin(s.app.DB(), s.cfg.Tiers, s.clock, nil)
	ctx := context.Background()

	err := admin.SetOverride(ctx, m.id, "cli", entitlements.OverrideInput{Reason: "no grant"})
	var invalid *entitlements.InvalidInputError
	if !errors.As(err, &invalid) {
		t.Errorf("override without tier or features = %v, want an InvalidInputError", err)
	}
	if err := admin.SetOverride(ctx, "usr_nobody", "cli", entitlements.OverrideInput{Tier: "pro", Reason: "r"}); !errors.Is(err, entitlements.ErrUserNotFound) {
		t.Errorf("override of an unknown user = %v, want ErrUserNotFound", err)
	}

	expires := s.clock.Now().Add(24 * time.Hour)
	input := entitlements.OverrideInput{Tier: "studio", Features: []string{"sync"}, ExpiresAt: &expires, Reason: "event"}
	if err := admin.SetOverride(ctx, m.id, "cli", input); err != nil {
		t.Fatalf("set override: %v", err)
	}
	view, err := admin.Show(ctx, m.id)
	if err != nil {
		t.Fatalf("show: %v", err)
	}
	if view.Entitlements.Tier != "studio" {
		t.Errorf("tier = %q, want studio", view.Entitlements.Tier)
	}
	if view.Override == nil || view.Override.Actor != "cli" {
		t.Errorf("override = %+v, want one set by cli", view.Override)
	}
	if len(view.History) != 1 || view.History[0].Actor != "cli" {
		t.Errorf("history = %+v, want one entry by cli", view.History)
	}

	if err := admin.ClearOverride(ctx, m.id, "cli", ""); !errors.As(err, &invalid) {
		t.Errorf("clear without a reason = %v, want an InvalidInputError", err)
	}
	if err := admin.ClearOverride(ctx, m.id, "cli", "event over"); err != nil {
		t.Fatalf("clear: %v", err)
	}
	if err := admin.ClearOverride(ctx, m.id, "cli", "event over"); !errors.Is(err, entitlements.ErrNoOverride) {
		t.Errorf("second clear = %v, want ErrNoOverride", err)
	}
}

func TestSubscriptionStatuses(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startEntitlementsServer(t, e)
		now := s.clock.Now()
		hour := time.Hour.Milliseconds()
		nowMs := now.UnixMilli()

		cases := []struct {
			name, status      string
			periodEnd         int64
			cancelAtPeriodEnd bool
			graceUntil        any
			wantTier          string
			wantSource        string
		}{
			{"active", "active", nowMs + 720*hour, false, nil, "pro", "subscription"},
			{"trialing", "trialing", nowMs + 720*hour, false, nil, "pro", "subscription"},
			{"past due within grace", "past_due", nowMs - hour, false, nowMs + hour, "pro", "subscription"},
			{"past due after grace", "past_due", nowMs - 2*hour, false, nowMs - hour, "core", "default"},
			{"past due without grace", "past_due", nowMs - hour, false, nil, "core", "default"},
			{"canceled", "canceled", nowMs + 720*hour, false, nil, "core", "default"},
			{"unpaid", "unpaid", nowMs + 720*hour, false, nil, "core", "default"},
			{"incomplete expired", "incomplete_expired", nowMs + 720*hour, false, nil, "core", "default"},
			{"paused", "paused", nowMs + 720*hour, false, nil, "core", "default"},
			{"cancel at period end before it", "active", nowMs + hour, true, nil, "pro", "subscription"},
			{"cancel at period end after it", "active", nowMs - hour, true, nil, "core", "default"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				m := s.member(t)
				if view, _ := s.entitlements(t, m); view.Tier != "core" {
					t.Fatalf("tier before the subscription = %q, want core", view.Tier)
				}

				s.exec(t, `INSERT INTO entitlement_subscriptions
					(user_id, tier, status, current_period_end, cancel_at_period_end, grace_until, stripe_created, updated_at)
					VALUES ($1, 'pro', $2, $3, $4, $5, 0, $6)`,
					m.id, tc.status, tc.periodEnd, tc.cancelAtPeriodEnd, tc.graceUntil, nowMs)
				s.app.Users().RefreshEntitlements(m.id)

				view, _ := s.entitlements(t, m)
				if view.Tier != tc.wantTier {
					t.Errorf("tier = %q, want %q", view.Tier, tc.wantTier)
				}
				if view.Source != tc.wantSource {
					t.Errorf("source = %q, want %q", view.Source, tc.wantSource)
				}
			})
		}

		// The period end of a cancelling subscription reaches the actor by the clock.
		m := s.member(t)
		s.exec(t, `INSERT INTO entitlement_subscriptions
			(user_id, tier, status, current_period_end, cancel_at_period_end, grace_until, stripe_created, updated_at)
			VALUES ($1, 'studio', 'active', $2, $3, NULL, 0, $4)`, m.id, nowMs+2*hour, true, nowMs)
		if view, _ := s.entitlements(t, m); view.Tier != "studio" {
			t.Fatalf("tier before the period end = %q, want studio", view.Tier)
		}
		s.clock.Advance(2 * time.Hour)
		view, res := s.entitlements(t, m)
		if view.Tier != "core" {
			t.Errorf("tier after the period end = %q, want core", view.Tier)
		}
		if got := res.header.Get("X-RateLimit-Limit"); got != "60" {
			t.Errorf("X-RateLimit-Limit after the period end = %q, want 60", got)
		}

		// A subscriber cannot start a trial.
		subscriber := s.member(t)
		s.exec(t, `INSERT INTO entitlement_subscriptions
			(user_id, tier, status, current_period_end, cancel_at_period_end, grace_until, stripe_created, updated_at)
			VALUES ($1, 'pro', 'active', $2, $3, NULL, 0, $4)`, subscriber.id, nowMs+720*hour, false, nowMs)
		if res := s.as(t, subscriber, "POST", "/v1/entitlements/trial", ""); res.status != http.StatusForbidden {
			t.Errorf("trial of a subscriber = %d %s, want 403", res.status, res.body)
		}
	})
}

func TestEntitlementsAccountDeletion(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startEntitlementsServer(t, e)
		op, m := s.operator(t), s.member(t)
		s.as(t, m, "POST", "/v1/entitlements/trial", "")
		s.as(t, op, "PUT", "/v1/admin/users/"+m.id+"/entitlements/override", `{"tier": "studio", "reason": "r"}`)
		s.exec(t, `INSERT INTO entitlement_subscriptions
			(user_id, tier, status, current_period_end, cancel_at_period_end, grace_until, stripe_created, updated_at)
			VALUES ($1, 'pro', 'active', 0, $2, NULL, 0, 0)`, m.id, false)

		res := s.as(t, op, "DELETE", "/v1/admin/users/"+m.id, "")
		if res.status != http.StatusOK {
			t.Fatalf("delete account = %d %s", res.status, res.body)
		}
		for _, table := range []string{"entitlement_history", "entitlement_overrides", "entitlement_trials", "entitlement_subscriptions"} {
			if n := s.count(t, `SELECT COUNT(*) FROM `+table+` WHERE user_id = $1`, m.id); n != 0 {
				t.Errorf("%s rows after deletion = %d, want 0", table, n)
			}
		}
	})
}
