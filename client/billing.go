package client

import (
	"context"
	"net/http"
	"time"
)

// BillingSession is a Stripe Checkout or customer portal session.
type BillingSession struct {
	ID  string `json:"id,omitempty"`
	URL string `json:"url"`
}

// Subscription is the caller's Stripe subscription.
type Subscription struct {
	Status            string     `json:"status"`
	Tier              string     `json:"tier"`
	CurrentPeriodEnd  time.Time  `json:"current_period_end"`
	CancelAtPeriodEnd bool       `json:"cancel_at_period_end"`
	TrialEnd          *time.Time `json:"trial_end"`
	GraceUntil        *time.Time `json:"grace_until"`
}

// Checkout creates a Stripe Checkout session for a tier and an interval
// (month or year) and returns its URL.
func (c *Client) Checkout(ctx context.Context, tier, interval string) (BillingSession, error) {
	var session BillingSession
	err := c.Call(ctx, Request{Method: http.MethodPost, Path: "/v1/billing/checkout",
		Body: map[string]string{"tier": tier, "interval": interval}}, &session)
	return session, err
}

// Portal creates a Stripe customer portal session.
func (c *Client) Portal(ctx context.Context) (BillingSession, error) {
	var session BillingSession
	err := c.Call(ctx, Request{Method: http.MethodPost, Path: "/v1/billing/portal"}, &session)
	return session, err
}

// Subscription returns the caller's subscription.
func (c *Client) Subscription(ctx context.Context) (Subscription, error) {
	var subscription Subscription
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: "/v1/billing/subscription"}, &subscription)
	return subscription, err
}
