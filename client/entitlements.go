package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Entitlements are the caller's tier, where it comes from, its features,
// limits and trial.
type Entitlements struct {
	Tier     string `json:"tier"`
	TierName string `json:"tier_name"`
	// Source is default, trial, subscription or override.
	Source   string           `json:"source"`
	Features []string         `json:"features"`
	Limits   map[string]int64 `json:"limits"`
	Trial    *Trial           `json:"trial"`
}

// Trial is the account's one trial.
type Trial struct {
	Tier      string    `json:"tier"`
	StartedAt time.Time `json:"started_at"`
	EndsAt    time.Time `json:"ends_at"`
	Active    bool      `json:"active"`
}

// Tier is one tier of the public catalog.
type Tier struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Rank     int               `json:"rank"`
	Features []string          `json:"features"`
	Limits   map[string]int64  `json:"limits"`
	Prices   map[string]string `json:"prices"`
}

// FeatureCheck is whether the caller has a feature, and the tier that grants it.
type FeatureCheck struct {
	Feature      string  `json:"feature"`
	Granted      bool    `json:"granted"`
	CurrentTier  string  `json:"current_tier"`
	RequiredTier *string `json:"required_tier"`
}

// Entitlements returns the caller's entitlements.
func (c *Client) Entitlements(ctx context.Context) (Entitlements, error) {
	var result Entitlements
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: "/v1/entitlements"}, &result)
	return result, err
}

// Tiers returns the public tier catalog.
func (c *Client) Tiers(ctx context.Context) ([]Tier, error) {
	var tiers []Tier
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: "/v1/entitlements/tiers", Anonymous: true}, &tiers)
	return tiers, err
}

// CheckFeature reports whether the caller has a feature and which tier grants it.
func (c *Client) CheckFeature(ctx context.Context, feature string) (FeatureCheck, error) {
	var check FeatureCheck
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: "/v1/entitlements/check?feature=" + url.QueryEscape(feature)}, &check)
	return check, err
}

// StartTrial starts the account's one trial; a second one is a CONFLICT.
func (c *Client) StartTrial(ctx context.Context) (Trial, error) {
	var trial Trial
	err := c.Call(ctx, Request{Method: http.MethodPost, Path: "/v1/entitlements/trial"}, &trial)
	return trial, err
}
