package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/modules/billing/stripetest"
)

// Webhook endpoint secrets of the billing test servers: the current one
// and the one being rolled.
const (
	webhookSecret         = "whsec_test_current"
	webhookSecretPrevious = "whsec_test_previous"
	proMonthPrice         = "price_pro_month"
	pastDueGrace          = 48 * time.Hour
)

// startBillingServer starts a server whose billing module calls a fresh
// stripe-mock on loopback and accepts webhooks signed with the test secrets.
func startBillingServer(t *testing.T, e engine) *testServer {
	t.Helper()
	mock := stripetest.Start(t)
	return startEntitlementsServer(t, e, func(cfg *configs.Config) {
		pro := cfg.Tiers.Catalog["pro"]
		pro.Prices = configs.TierPrices{Month: proMonthPrice, Year: "price_pro_year"}
		cfg.Tiers.Catalog["pro"] = pro
		cfg.Modules["billing"] = map[string]any{
			"enabled":                 true,
			"api_url":                 mock.URL,
			"secret_key":              stripetest.SecretKey,
			"webhook_secret":          webhookSecret,
			"webhook_secret_previous": webhookSecretPrevious,
			"past_due_grace":          pastDueGrace.String(),
			"reconcile_interval":      "0s",
		}
	})
}

// linkCustomer stores customerID as the member's Stripe customer, as a
// finished checkout would.
func (s *testServer) linkCustomer(t *testing.T, m member, customerID string) {
	t.Helper()
	now := s.clock.Now().UnixMilli()
	s.exec(t, `INSERT INTO billing_customers (user_id, customer_id, claimed_at, updated_at) VALUES ($1, $2, $3, $3)`,
		m.id, customerID, now)
}

// subscriptionChange is the state a customer.subscription.* event carries.
type subscriptionChange struct {
	eventID, eventType string
	created            time.Time
	customerID, status string
	periodEnd          time.Time
	cancelAtPeriodEnd  bool
	apiVersion         string
}

// payload returns the event as Stripe sends it.
func (c subscriptionChange) payload(t *testing.T) []byte {
	t.Helper()
	version := c.apiVersion
	if version == "" {
		version = stripe.APIVersion
	}
	body, err := json.Marshal(map[string]any{
		"id": c.eventID, "object": "event", "type": c.eventType, "created": c.created.Unix(), "api_version": version,
		"data": map[string]any{"object": map[string]any{
			"id": "sub_" + c.customerID, "object": "subscription", "customer": c.customerID, "status": c.status,
			"current_period_end": c.periodEnd.Unix(), "cancel_at_period_end": c.cancelAtPeriodEnd,
			"items": map[string]any{"data": []any{map[string]any{"price": map[string]any{"id": proMonthPrice}}}},
		}},
	})
	if err != nil {
		t.Fatalf("encode event: %v", err)
	}
	return body
}

// signature returns a Stripe-Signature header for payload signed with
// secret at the time at.
func signature(payload []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at}).Header
}

// deliver posts payload to the webhook route with the header, or with no
// Stripe-Signature when header is empty.
func (s *testServer) deliver(t *testing.T, payload []byte, header string) response {
	t.Helper()
	headers := []string{"Content-Type", "application/json"}
	if header != "" {
		headers = append(headers, "Stripe-Signature", header)
	}
	return s.do(t, "POST", "/v1/billing/webhooks", string(payload), headers...)
}

// send delivers the change signed with the current secret and requires a 200.
func (s *testServer) send(t *testing.T, c subscriptionChange) string {
	t.Helper()
	payload := c.payload(t)
	res := s.deliver(t, payload, signature(payload, webhookSecret, s.clock.Now()))
	if res.status != http.StatusOK {
		t.Fatalf("deliver %s = %d %s", c.eventID, res.status, res.body)
	}
	var answer struct {
		Outcome string `json:"outcome"`
	}
	res.data(t, &answer)
	return answer.Outcome
}

// metric returns the value of one sample line of /metrics, such as
// `nexus_billing_webhook_api_version_mismatch_total`, or 0 when absent.
func (s *testServer) metric(t *testing.T, sample string) float64 {
	t.Helper()
	res, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read /metrics: %v", err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, sample+" "); ok {
			var value float64
			if _, err := fmt.Sscan(rest, &value); err != nil {
				t.Fatalf("parse metric line %q: %v", line, err)
			}
			return value
		}
	}
	return 0
}
