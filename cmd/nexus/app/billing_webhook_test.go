package app_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBillingWebhookSignatures(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startBillingServer(t, e)
		now := s.clock.Now()
		change := subscriptionChange{eventID: "evt_sig", eventType: "customer.subscription.updated", created: now,
			customerID: "cus_unknown", status: "active", periodEnd: now.Add(time.Hour)}
		payload := change.payload(t)
		valid := signature(payload, webhookSecret, now)
		tampered := []byte(strings.Replace(string(payload), `"active"`, `"trialing"`, 1))

		rejected := []struct {
			name    string
			payload []byte
			header  string
		}{
			{"no signature", payload, ""},
			{"wrong secret", payload, signature(payload, "whsec_wrong", now)},
			{"stale timestamp", payload, signature(payload, webhookSecret, now.Add(-10*time.Minute))},
			{"body changed after signing", tampered, valid},
			{"malformed header", payload, "v1=abc"},
		}
		for _, tt := range rejected {
			t.Run(tt.name, func(t *testing.T) {
				res := s.deliver(t, tt.payload, tt.header)
				if res.status != http.StatusBadRequest {
					t.Fatalf("status = %d %s, want 400", res.status, res.body)
				}
				if code := res.envelopeError(t).Code; code != "WEBHOOK_INVALID" {
					t.Errorf("code = %s, want WEBHOOK_INVALID", code)
				}
			})
		}

		accepted := []struct{ name, header string }{
			{"previous secret", signature(payload, webhookSecretPrevious, now)},
			{"several v1 signatures", signature(payload, "whsec_other", now) + ",v1=" +
				strings.TrimPrefix(strings.Split(valid, ",")[1], "v1=")},
		}
		for _, tt := range accepted {
			t.Run(tt.name, func(t *testing.T) {
				if res := s.deliver(t, payload, tt.header); res.status != http.StatusOK {
					t.Errorf("status = %d %s, want 200", res.status, res.body)
				}
			})
		}
	})
}

func TestBillingWebhookOtherAPIVersion(t *testing.T) {
	s := startBillingServer(t, engineSQLite)
	m := s.member(t)
	s.linkCustomer(t, m, "cus_version")
	now := s.clock.Now()

	outcome := s.send(t, subscriptionChange{eventID: "evt_old_version", eventType: "customer.subscription.updated",
		created: now, customerID: "cus_version", status: "active", periodEnd: now.Add(time.Hour), apiVersion: "2020-08-27"})

	if outcome != "applied" {
		t.Errorf("outcome = %s, want applied", outcome)
	}
	if n := s.metric(t, "nexus_billing_webhook_api_version_mismatch_total"); n != 1 {
		t.Errorf("mismatch metric = %v, want 1", n)
	}
}

func TestBillingWebhookAppliesEachEventOnce(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startBillingServer(t, e)
		m := s.member(t)
		s.linkCustomer(t, m, "cus_once")
		now := s.clock.Now()
		change := subscriptionChange{eventID: "evt_twice", eventType: "customer.subscription.created", created: now,
			customerID: "cus_once", status: "active", periodEnd: now.Add(time.Hour)}

		if outcome := s.send(t, change); outcome != "applied" {
			t.Errorf("first delivery = %s, want applied", outcome)
		}
		if outcome := s.send(t, change); outcome != "duplicate" {
			t.Errorf("second delivery = %s, want duplicate", outcome)
		}

		for round := range 50 {
			change := subscriptionChange{eventID: "evt_race_" + string(rune('a'+round%26)) + randomID(t), eventType: "customer.subscription.updated",
				created: now.Add(time.Duration(round+1) * time.Second), customerID: "cus_once", status: "active", periodEnd: now.Add(time.Hour)}
			outcomes := make([]string, 2)
			var wg sync.WaitGroup
			for i := range outcomes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					outcomes[i] = s.send(t, change)
				}()
			}
			wg.Wait()

			applied := 0
			for _, outcome := range outcomes {
				if outcome == "applied" {
					applied++
				}
			}
			if applied != 1 {
				t.Fatalf("round %d: outcomes = %v, want one applied", round, outcomes)
			}
			if n := s.count(t, `SELECT COUNT(*) FROM billing_events WHERE event_id = $1`, change.eventID); n != 1 {
				t.Fatalf("round %d: event rows = %d, want 1", round, n)
			}
		}
	})
}

func TestBillingWebhookOrder(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startBillingServer(t, e)
		now := s.clock.Now()
		period := now.Add(30 * 24 * time.Hour)

		early := s.member(t)
		s.linkCustomer(t, early, "cus_early")
		s.send(t, subscriptionChange{eventID: "evt_updated", eventType: "customer.subscription.updated",
			created: now.Add(10 * time.Second), customerID: "cus_early", status: "active", periodEnd: period})
		s.send(t, subscriptionChange{eventID: "evt_created", eventType: "customer.subscription.created",
			created: now, customerID: "cus_early", status: "incomplete", periodEnd: period})
		if view, _ := s.entitlements(t, early); view.Tier != "pro" {
			t.Errorf("updated(active) before created(incomplete): tier = %s, want pro", view.Tier)
		}

		late := s.member(t)
		s.linkCustomer(t, late, "cus_late")
		s.send(t, subscriptionChange{eventID: "evt_canceled", eventType: "customer.subscription.deleted",
			created: now.Add(20 * time.Second), customerID: "cus_late", status: "canceled", periodEnd: period})
		s.send(t, subscriptionChange{eventID: "evt_old_active", eventType: "customer.subscription.updated",
			created: now.Add(10 * time.Second), customerID: "cus_late", status: "active", periodEnd: period})
		if view, _ := s.entitlements(t, late); view.Tier != "core" {
			t.Errorf("newer canceled before older active: tier = %s, want core", view.Tier)
		}
	})
}

func TestBillingCancelAtPeriodEndKeepsTier(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startBillingServer(t, e)
		m := s.member(t)
		s.linkCustomer(t, m, "cus_cancel")
		now := s.clock.Now()
		s.send(t, subscriptionChange{eventID: "evt_cancel", eventType: "customer.subscription.updated", created: now,
			customerID: "cus_cancel", status: "active", periodEnd: now.Add(time.Hour), cancelAtPeriodEnd: true})

		if view, _ := s.entitlements(t, m); view.Tier != "pro" {
			t.Errorf("before the period end: tier = %s, want pro", view.Tier)
		}
		s.clock.Advance(2 * time.Hour)
		if view, _ := s.entitlements(t, m); view.Tier != "core" {
			t.Errorf("after the period end: tier = %s, want core", view.Tier)
		}
	})
}

func TestBillingPausedTrialFallsBackToCore(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startBillingServer(t, e)
		m := s.member(t)
		s.linkCustomer(t, m, "cus_paused")
		now := s.clock.Now()
		s.send(t, subscriptionChange{eventID: "evt_trialing", eventType: "customer.subscription.created", created: now,
			customerID: "cus_paused", status: "trialing", periodEnd: now.Add(time.Hour)})
		if res := s.as(t, m, "GET", "/v1/test/sync", ""); res.status != http.StatusOK {
			t.Fatalf("pro route while trialing = %d %s, want 200", res.status, res.body)
		}

		s.send(t, subscriptionChange{eventID: "evt_paused", eventType: "customer.subscription.paused", created: now.Add(time.Minute),
			customerID: "cus_paused", status: "paused", periodEnd: now.Add(time.Hour)})

		if view, _ := s.entitlements(t, m); view.Tier != "core" {
			t.Errorf("tier after pause = %s, want core", view.Tier)
		}
		res := s.as(t, m, "GET", "/v1/test/sync", "")
		if res.status != http.StatusForbidden {
			t.Fatalf("pro route after pause = %d %s, want 403", res.status, res.body)
		}
		if code := res.envelopeError(t).Code; code != "TIER_REQUIRED" {
			t.Errorf("code = %s, want TIER_REQUIRED", code)
		}
	})
}

func TestBillingPastDueKeepsGraceStart(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startBillingServer(t, e)
		m := s.member(t)
		s.linkCustomer(t, m, "cus_past_due")
		start := s.clock.Now()
		for i, id := range []string{"evt_past_due_1", "evt_past_due_2"} {
			s.send(t, subscriptionChange{eventID: id, eventType: "customer.subscription.updated",
				created: start.Add(time.Duration(i) * time.Hour), customerID: "cus_past_due", status: "past_due",
				periodEnd: start.Add(30 * 24 * time.Hour)})
		}

		res := s.as(t, m, "GET", "/v1/billing/subscription", "")
		if res.status != http.StatusOK {
			t.Fatalf("subscription = %d %s", res.status, res.body)
		}
		var sub struct {
			Status     string     `json:"status"`
			GraceUntil *time.Time `json:"grace_until"`
		}
		res.data(t, &sub)
		want := start.Truncate(time.Second).Add(pastDueGrace)
		if sub.GraceUntil == nil || !sub.GraceUntil.Equal(want) {
			t.Errorf("grace_until = %v, want %v", sub.GraceUntil, want)
		}
		if view, _ := s.entitlements(t, m); view.Tier != "pro" {
			t.Errorf("tier within grace = %s, want pro", view.Tier)
		}
		s.clock.Advance(pastDueGrace + time.Hour)
		if view, _ := s.entitlements(t, m); view.Tier != "core" {
			t.Errorf("tier after grace = %s, want core", view.Tier)
		}
	})
}

func TestBillingUpgradeRaisesRateLimitAtOnce(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startBillingServer(t, e)
		m := s.member(t)
		s.linkCustomer(t, m, "cus_upgrade")
		if limit := s.as(t, m, "GET", "/v1/entitlements", "").header.Get("X-RateLimit-Limit"); limit != "60" {
			t.Fatalf("limit before the upgrade = %s, want 60", limit)
		}

		now := s.clock.Now()
		s.send(t, subscriptionChange{eventID: "evt_upgrade", eventType: "customer.subscription.created", created: now,
			customerID: "cus_upgrade", status: "active", periodEnd: now.Add(30 * 24 * time.Hour)})

		if limit := s.as(t, m, "GET", "/v1/entitlements", "").header.Get("X-RateLimit-Limit"); limit != "300" {
			t.Errorf("limit of the next request = %s, want 300", limit)
		}
	})
}
