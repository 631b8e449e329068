package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/runtime"
)

// Waiting for a concurrent checkout's customer.
const (
	// customerClaimStaleAfter is the age of a claim without a customer id
	// after which another checkout takes it over, because its holder died
	// or its Stripe call hangs beyond every timeout.
	customerClaimStaleAfter = 2 * time.Minute
	// customerPollInterval is how often a checkout that lost the claim
	// reads the row again until the winner stores the customer id.
	customerPollInterval = 25 * time.Millisecond
)

// portalPath is the route of the customer portal, where a user manages a subscription.
const portalPath = "/v1/billing/portal"

// checkoutInput is the request body of POST /v1/billing/checkout.
type checkoutInput struct {
	Tier     string `json:"tier"`
	Interval string `json:"interval"`
}

// sessionView is the response body of the checkout and portal routes.
type sessionView struct {
	ID  string `json:"id,omitempty"`
	URL string `json:"url"`
}

func (m *Module) checkout(r *edge.Request) error {
	var input checkoutInput
	if err := r.Decode(&input); err != nil {
		return err
	}
	userID := r.Principal.UserID

	tier, ok := m.tiers.Catalog[input.Tier]
	if !ok {
		return edge.Validation("tier", fmt.Sprintf("tier %q is not in the catalog", input.Tier))
	}
	var price string
	switch input.Interval {
	case "month":
		price = tier.Prices.Month
	case "year":
		price = tier.Prices.Year
	default:
		return edge.Validation("interval", `interval must be "month" or "year"`)
	}
	if price == "" {
		return edge.Validation("tier", fmt.Sprintf("tier %q has no %sly price", input.Tier, input.Interval))
	}

	current, ok, err := m.recorder.Subscription(r.Context(), userID)
	if err != nil {
		return err
	}
	if ok && subscribed(current, m.clock.Now()) {
		return edge.NewError(edge.CodeConflict,
			"the account already has a subscription; change or cancel it in the customer portal",
			map[string]any{"portal": portalPath, "status": current.Status, "tier": current.Tier})
	}

	customerID, err := m.ensureCustomer(r.Context(), userID)
	if err != nil {
		return err
	}
	id, url, err := m.stripe.createCheckout(context.Background(), checkoutRequest{
		UserID: userID, CustomerID: customerID, PriceID: price, Tier: input.Tier,
		SuccessURL: m.opts.SuccessURL, CancelURL: m.opts.CancelURL,
	})
	if err != nil {
		return err
	}
	return r.JSON(http.StatusOK, sessionView{ID: id, URL: url})
}

// subscribed reports whether the subscription still grants or will again
// grant its tier, so that a second checkout would double-bill the user.
func subscribed(sub runtime.SubscriptionRecord, now time.Time) bool {
	switch stripe.SubscriptionStatus(sub.Status) {
	case stripe.SubscriptionStatusActive, stripe.SubscriptionStatusTrialing, stripe.SubscriptionStatusPastDue,
		stripe.SubscriptionStatusPaused, stripe.SubscriptionStatusUnpaid:
		return !(sub.CancelAtPeriodEnd && !now.Before(sub.CurrentPeriodEnd))
	default:
		return false
	}
}

// ensureCustomer returns the user's Stripe customer id and creates the
// customer once. Concurrent checkouts, also on other nodes, race for a
// claim row. The winner creates the customer, and the others wait for its
// id until ctx ends.
func (m *Module) ensureCustomer(ctx context.Context, userID string) (string, error) {
	for {
		existing, err := m.store.customerOf(ctx, userID)
		if err == nil && existing.CustomerID != "" {
			return existing.CustomerID, nil
		}
		if err != nil && !errors.Is(err, errNotFound) {
			return "", err
		}

		now := m.clock.Now()
		claimed, err := m.store.claimCustomer(ctx, userID, now, now.Add(-customerClaimStaleAfter))
		if err != nil {
			return "", err
		}
		if claimed {
			return m.createCustomer(ctx, userID)
		}

		select {
		case <-ctx.Done():
			return "", fmt.Errorf("wait for the billing customer of user %s: %w", userID, ctx.Err())
		case <-time.After(customerPollInterval):
		}
	}
}

// createCustomer creates the Stripe customer of the claim that the caller
// holds, and releases the claim when that fails.
func (m *Module) createCustomer(ctx context.Context, userID string) (string, error) {
	var email string
	if err := m.store.db.QueryRowContext(ctx, `SELECT email FROM users WHERE id = $1`, userID).Scan(&email); err != nil {
		_ = m.store.releaseClaim(ctx, userID)
		return "", fmt.Errorf("load email of user %s: %w", userID, err)
	}

	customerID, err := m.stripe.createCustomer(context.Background(), userID, email)
	if err != nil {
		if releaseErr := m.store.releaseClaim(context.Background(), userID); releaseErr != nil {
			m.logger.Error("release billing customer claim failed", slog.String("user_id", userID),
				slog.String("error", releaseErr.Error()))
		}
		return "", err
	}
	if err := m.store.setCustomerID(context.Background(), userID, customerID, m.clock.Now()); err != nil {
		return "", err
	}
	m.logger.Info("stripe customer created", slog.String("user_id", userID), slog.String("customer_id", customerID))
	return customerID, nil
}

func (m *Module) portal(r *edge.Request) error {
	existing, err := m.store.customerOf(r.Context(), r.Principal.UserID)
	if errors.Is(err, errNotFound) || (err == nil && existing.CustomerID == "") {
		return edge.NotFound("the account has no billing customer yet; subscribe through POST /v1/billing/checkout first")
	}
	if err != nil {
		return err
	}

	url, err := m.stripe.createPortal(context.Background(), existing.CustomerID, m.opts.PortalReturnURL)
	if err != nil {
		return err
	}
	return r.JSON(http.StatusOK, sessionView{URL: url})
}

// subscriptionView is the response body of GET /v1/billing/subscription.
type subscriptionView struct {
	Status            string     `json:"status"`
	Tier              string     `json:"tier"`
	CurrentPeriodEnd  time.Time  `json:"current_period_end"`
	CancelAtPeriodEnd bool       `json:"cancel_at_period_end"`
	TrialEnd          *time.Time `json:"trial_end"`
	GraceUntil        *time.Time `json:"grace_until"`
}

func (m *Module) subscription(r *edge.Request) error {
	userID := r.Principal.UserID

	sub, ok, err := m.recorder.Subscription(r.Context(), userID)
	if err != nil {
		return err
	}
	if !ok {
		return edge.NotFound("the account has no subscription")
	}
	view := subscriptionView{
		Status: sub.Status, Tier: sub.Tier, CurrentPeriodEnd: sub.CurrentPeriodEnd,
		CancelAtPeriodEnd: sub.CancelAtPeriodEnd, GraceUntil: sub.GraceUntil,
	}
	existing, err := m.store.customerOf(r.Context(), userID)
	switch {
	case err == nil:
		view.TrialEnd = existing.TrialEnd
	case !errors.Is(err, errNotFound):
		return err
	}
	return r.JSON(http.StatusOK, view)
}

// webhookAnswer is the response body of POST /v1/billing/webhooks.
type webhookAnswer struct {
	Received bool   `json:"received"`
	Outcome  string `json:"outcome"`
}

// webhook verifies the Stripe-Signature on the raw body before decoding
// anything, applies the event and responds. Reading a subscription from
// Stripe happens afterwards in the background.
func (m *Module) webhook(r *edge.Request) error {
	payload := r.Ctx.Request.Body()
	header := string(r.Ctx.Request.Header.Peek("Stripe-Signature"))

	err := verifySignature(payload, header, m.opts.webhookSecrets(), m.opts.WebhookTolerance, m.clock.Now())
	if err != nil {
		r.Logger().Warn("webhook delivery rejected", slog.String("module", Name), slog.String("error", err.Error()))
		return edge.WebhookInvalid("invalid Stripe webhook: " + err.Error())
	}
	var ev event
	if err := json.Unmarshal(payload, &ev); err != nil || ev.ID == "" || ev.Type == "" {
		return edge.WebhookInvalid("invalid Stripe webhook: the body is not a Stripe event")
	}
	if ev.APIVersion != stripe.APIVersion {
		m.metrics.apiVersionMismatch.Inc()
		r.Logger().Warn("webhook event of another API version, parsed tolerantly", slog.String("module", Name),
			slog.String("event_id", ev.ID), slog.String("api_version", ev.APIVersion), slog.String("expected", stripe.APIVersion))
	}

	outcome, again, err := m.applyEvent(r.Context(), ev)
	if err != nil {
		return fmt.Errorf("apply webhook event %s: %w", ev.ID, err)
	}
	m.metrics.webhookEvents.WithLabelValues(eventLabel(ev.Type), outcome).Inc()
	if again != nil {
		m.schedule(*again)
	}
	return r.JSON(http.StatusOK, webhookAnswer{Received: true, Outcome: outcome})
}

// eventLabel keeps the metric's type label to the handled types.
func eventLabel(eventType string) string {
	switch eventType {
	case eventCheckoutCompleted, eventSubscriptionCreated, eventSubscriptionUpdated, eventSubscriptionDeleted,
		eventSubscriptionPaused, eventSubscriptionResumed, eventSubscriptionTrialEnds,
		eventInvoicePaid, eventInvoicePaymentFailed:
		return eventType
	default:
		return "other"
	}
}
