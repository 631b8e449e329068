package app_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/modules/billing"
	"github.com/nexus-suite/nexus/modules/billing/stripetest"
	"github.com/nexus-suite/nexus/modules/entitlements"
)

// mockSubscriptionCustomer returns the customer id of the fixture
// subscription that stripe-mock returns for any id.
func mockSubscriptionCustomer(t *testing.T, s *testServer) string {
	t.Helper()
	req, err := http.NewRequest("GET", s.cfg.Modules["billing"]["api_url"].(string)+"/v1/subscriptions/sub_any", nil)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.SetBasicAuth(stripetest.SecretKey, "")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("read the fixture subscription: %v", err)
	}
	defer res.Body.Close()
	var sub struct {
		Customer string `json:"customer"`
	}
	if err := json.NewDecoder(res.Body).Decode(&sub); err != nil {
		t.Fatalf("decode the fixture subscription: %v", err)
	}
	return sub.Customer
}

func TestBillingReconcileCorrectsDrift(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startBillingServer(t, e)
		m := s.member(t)
		customerID := mockSubscriptionCustomer(t, s)
		s.linkCustomer(t, m, customerID)
		now := s.clock.Now()
		s.send(t, subscriptionChange{eventID: "evt_drift", eventType: "customer.subscription.created", created: now,
			customerID: customerID, status: "active", periodEnd: now.Add(30 * 24 * time.Hour)})
		s.exec(t, `UPDATE billing_customers SET subscription_id = 'sub_drift' WHERE user_id = $1`, m.id)
		s.clock.Advance(time.Minute)

		// stripe-mock's fixture is an active subscription that cancels at a
		// period end long past and has a price outside the catalog, so it
		// grants no paid tier.
		recorder := entitlements.NewRecorder(s.app.DB(), s.clock, slog.New(slog.DiscardHandler), nil)
		result, err := billing.Reconcile(context.Background(), s.cfg, s.app.DB(), recorder, s.clock, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("reconcile: %v", err)
		}

		if result.Checked != 1 || result.Corrected != 1 || result.Failed != 0 {
			t.Errorf("result = %+v, want 1 checked and corrected", result)
		}
		var cancels bool
		if err := s.app.DB().QueryRowContext(context.Background(),
			`SELECT cancel_at_period_end FROM entitlement_subscriptions WHERE user_id = $1`, m.id).Scan(&cancels); err != nil {
			t.Fatalf("read subscription row: %v", err)
		}
		if !cancels {
			t.Error("cancel_at_period_end was not corrected to true")
		}
		s.app.Users().RefreshEntitlements(m.id)
		if view, _ := s.entitlements(t, m); view.Tier != "core" {
			t.Errorf("tier after reconcile = %s, want core", view.Tier)
		}
	})
}
