package app_test

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestBillingCheckoutAndPortal(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startBillingServer(t, e)
		m := s.member(t)

		if res := s.as(t, m, "POST", "/v1/billing/portal", ""); res.status != http.StatusNotFound {
			t.Errorf("portal before checkout = %d %s, want 404", res.status, res.body)
		}

		res := s.as(t, m, "POST", "/v1/billing/checkout", `{"tier":"pro","interval":"month"}`)
		if res.status != http.StatusOK {
			t.Fatalf("checkout = %d %s", res.status, res.body)
		}
		var session struct {
			ID  string `json:"id"`
			URL string `json:"url"`
		}
		res.data(t, &session)
		if session.URL == "" {
			t.Error("checkout session has no URL")
		}

		res = s.as(t, m, "POST", "/v1/billing/portal", "")
		if res.status != http.StatusOK {
			t.Fatalf("portal = %d %s", res.status, res.body)
		}
		res.data(t, &session)
		if session.URL == "" {
			t.Error("portal session has no URL")
		}
	})
}

func TestBillingCheckoutValidation(t *testing.T) {
	s := startBillingServer(t, engineSQLite)
	m := s.member(t)

	tests := []struct {
		name, body, field string
	}{
		{"unknown tier", `{"tier":"gold","interval":"month"}`, "tier"},
		{"tier without price", `{"tier":"studio","interval":"month"}`, "tier"},
		{"unknown interval", `{"tier":"pro","interval":"week"}`, "interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := s.as(t, m, "POST", "/v1/billing/checkout", tt.body)
			if res.status != http.StatusBadRequest {
				t.Fatalf("status = %d %s, want 400", res.status, res.body)
			}
			if field := res.envelopeError(t).Details["field"]; field != tt.field {
				t.Errorf("details.field = %v, want %s", field, tt.field)
			}
		})
	}
}

func TestBillingConcurrentCheckoutsCreateOneCustomer(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startBillingServer(t, e)
		m := s.member(t)
		const checkouts = 8

		var wg sync.WaitGroup
		statuses := make([]int, checkouts)
		for i := range checkouts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i] = s.as(t, m, "POST", "/v1/billing/checkout", `{"tier":"pro","interval":"year"}`).status
			}()
		}
		wg.Wait()

		for i, status := range statuses {
			if status != http.StatusOK {
				t.Errorf("checkout %d = %d, want 200", i, status)
			}
		}
		if n := s.count(t, `SELECT COUNT(*) FROM billing_customers WHERE user_id = $1 AND customer_id IS NOT NULL`, m.id); n != 1 {
			t.Errorf("customer rows = %d, want 1", n)
		}
		calls := s.metric(t, `nexus_billing_stripe_requests_total{operation="create_customer",outcome="ok"}`)
		if calls != 1 {
			t.Errorf("customer creations = %v, want 1", calls)
		}
	})
}

func TestBillingCheckoutConflictWhenSubscribed(t *testing.T) {
	s := startBillingServer(t, engineSQLite)
	m := s.member(t)
	s.linkCustomer(t, m, "cus_conflict")
	now := s.clock.Now()
	s.send(t, subscriptionChange{eventID: "evt_active", eventType: "customer.subscription.created", created: now,
		customerID: "cus_conflict", status: "active", periodEnd: now.Add(30 * 24 * time.Hour)})

	res := s.as(t, m, "POST", "/v1/billing/checkout", `{"tier":"pro","interval":"month"}`)
	if res.status != http.StatusConflict {
		t.Fatalf("checkout = %d %s, want 409", res.status, res.body)
	}
	if portal := res.envelopeError(t).Details["portal"]; portal != "/v1/billing/portal" {
		t.Errorf("details.portal = %v, want /v1/billing/portal", portal)
	}
}
