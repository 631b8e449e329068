package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// errStripeOff is returned by every Stripe call while
// modules.billing.secret_key is empty.
var errStripeOff = errors.New("modules.billing.secret_key is empty, so calls to Stripe are off")

// stripeNetworkRetries is how often stripe-go retries a call that failed on
// the network or with a retryable status. It sends an idempotency key with
// each POST, so a retry cannot create a second object.
const stripeNetworkRetries = 1

// stripeAPI calls the Stripe API at the configured base URL with the
// module's own client, never stripe-go's package-level key and backends,
// so that servers and tests in one process share nothing.
type stripeAPI struct {
	api     *client.API
	timeout time.Duration
	metrics *metrics
}

// newStripeAPI returns the client, or nil when no secret key is set.
func newStripeAPI(opts options, m *metrics) *stripeAPI {
	if opts.SecretKey == "" {
		return nil
	}
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:               stripe.String(opts.APIURL),
		HTTPClient:        &http.Client{Timeout: opts.RequestTimeout},
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
		MaxNetworkRetries: stripe.Int64(stripeNetworkRetries),
		EnableTelemetry:   stripe.Bool(false),
	})
	api := client.New(opts.SecretKey, &stripe.Backends{API: backend, Connect: backend, Uploads: backend})
	return &stripeAPI{api: api, timeout: opts.RequestTimeout, metrics: m}
}

// call runs one Stripe call with its own deadline and counts it by
// operation and outcome.
func (s *stripeAPI) call(ctx context.Context, operation string, fn func(ctx context.Context) error) error {
	if s == nil {
		return errStripeOff
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	err := fn(ctx)
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	s.metrics.stripeRequests.WithLabelValues(operation, outcome).Inc()
	if err != nil {
		return fmt.Errorf("stripe %s: %w", operation, err)
	}
	return nil
}

// createCustomer creates the user's Stripe customer. The idempotency key is
// derived from the user id, so a retry, or a second node taking over a
// stale claim within Stripe's 24-hour key window, gets the same customer.
func (s *stripeAPI) createCustomer(ctx context.Context, userID, email string) (string, error) {
	var id string
	err := s.call(ctx, "create_customer", func(ctx context.Context) error {
		params := &stripe.CustomerParams{Email: stripe.String(email)}
		params.Context = ctx
		params.SetIdempotencyKey("nexus-customer-" + userID)
		params.AddMetadata("user_id", userID)
		created, err := s.api.Customers.New(params)
		if err != nil {
			return err
		}
		id = created.ID
		return nil
	})
	return id, err
}

// checkoutRequest is one Checkout session to create.
type checkoutRequest struct {
	UserID, CustomerID, PriceID, Tier string
	SuccessURL, CancelURL             string
}

// createCheckout creates a Checkout session in subscription mode and
// returns its id and URL.
func (s *stripeAPI) createCheckout(ctx context.Context, req checkoutRequest) (id, url string, err error) {
	err = s.call(ctx, "create_checkout_session", func(ctx context.Context) error {
		params := &stripe.CheckoutSessionParams{
			Mode:              stripe.String(string(stripe.CheckoutSessionModeSubscription)),
			Customer:          stripe.String(req.CustomerID),
			ClientReferenceID: stripe.String(req.UserID),
			SuccessURL:        stripe.String(req.SuccessURL),
			CancelURL:         stripe.String(req.CancelURL),
			LineItems:         []*stripe.CheckoutSessionLineItemParams{{Price: stripe.String(req.PriceID), Quantity: stripe.Int64(1)}},
			SubscriptionData: &stripe.CheckoutSessionSubscriptionDataParams{
				Metadata: map[string]string{"user_id": req.UserID, "tier": req.Tier},
			},
		}
		params.Context = ctx
		params.AddMetadata("user_id", req.UserID)
		params.AddMetadata("tier", req.Tier)
		session, err := s.api.CheckoutSessions.New(params)
		if err != nil {
			return err
		}
		id, url = session.ID, session.URL
		return nil
	})
	return id, url, err
}

// createPortal creates a customer portal session and returns its URL.
func (s *stripeAPI) createPortal(ctx context.Context, customerID, returnURL string) (string, error) {
	var url string
	err := s.call(ctx, "create_portal_session", func(ctx context.Context) error {
		params := &stripe.BillingPortalSessionParams{Customer: stripe.String(customerID), ReturnURL: stripe.String(returnURL)}
		params.Context = ctx
		session, err := s.api.BillingPortalSessions.New(params)
		if err != nil {
			return err
		}
		url = session.URL
		return nil
	})
	return url, err
}

// subscription reads one subscription. The raw JSON is decoded by
// decodeSubscription, the same way as in webhook events.
func (s *stripeAPI) subscription(ctx context.Context, id string) (subscriptionObject, error) {
	var sub subscriptionObject
	err := s.call(ctx, "get_subscription", func(ctx context.Context) error {
		params := &stripe.SubscriptionParams{}
		params.Context = ctx
		fetched, err := s.api.Subscriptions.Get(id, params)
		if err != nil {
			return err
		}
		raw := fetched.LastResponse.RawJSON
		if len(raw) == 0 {
			if raw, err = json.Marshal(fetched); err != nil {
				return fmt.Errorf("encode subscription %s: %w", id, err)
			}
		}
		sub, err = decodeSubscription(raw)
		return err
	})
	return sub, err
}
