package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Readiness is the data of GET /ready: Status is ready or unavailable,
// with each store's check.
type Readiness struct {
	Status string                    `json:"status"`
	Checks map[string]ReadinessCheck `json:"checks"`
}

// ReadinessCheck is the result of one store's ping.
type ReadinessCheck struct {
	// Status is ok or fail.
	Status string `json:"status"`
	// Engine is sqlite, postgres, redis or in-process.
	Engine     string `json:"engine"`
	DurationMS int64  `json:"duration_ms"`
	Error      string `json:"error,omitempty"`
}

// StatusPage is GET /status: a subset of the Atlassian Statuspage summary.
type StatusPage struct {
	Page struct {
		Name      string    `json:"name"`
		UpdatedAt time.Time `json:"updated_at"`
	} `json:"page"`
	Status struct {
		// Indicator is one of none, minor, major and critical.
		Indicator   string `json:"indicator"`
		Description string `json:"description"`
	} `json:"status"`
	Components []StatusComponent `json:"components"`
}

// StatusComponent is one module's health on the status page.
type StatusComponent struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Status is operational, degraded_performance, partial_outage,
	// major_outage or disabled.
	Status    string    `json:"status"`
	Restarts  int       `json:"restarts"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Health returns nil while the server's process serves.
func (c *Client) Health(ctx context.Context) error {
	return c.Call(ctx, Request{Method: http.MethodGet, Path: "/health", Anonymous: true}, nil)
}

// Ready returns the readiness of the server's database and Redis. It sends
// one request without retries, because a 503 is a valid result here,
// with Status "unavailable" and the failed checks.
func (c *Client) Ready(ctx context.Context) (Readiness, error) {
	res, err := c.send(ctx, Request{Method: http.MethodGet, Path: "/ready"}, nil, "")
	if err != nil {
		return Readiness{}, err
	}
	if res.Status != http.StatusOK && res.Status != http.StatusServiceUnavailable {
		return Readiness{}, decodeError(res)
	}
	var readiness Readiness
	err = res.Decode(&readiness)
	return readiness, err
}

// Status returns the module status of the public status page.
func (c *Client) Status(ctx context.Context) (StatusPage, error) {
	res, err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/status", Anonymous: true})
	if err != nil {
		return StatusPage{}, err
	}
	var page StatusPage
	if err := json.Unmarshal(res.Body, &page); err != nil {
		return StatusPage{}, fmt.Errorf("decode /status: %w", err)
	}
	return page, nil
}

// OpenAPI returns the OpenAPI 3.1 document of the whole API as JSON.
func (c *Client) OpenAPI(ctx context.Context) (json.RawMessage, error) {
	res, err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/v1/openapi.json", Anonymous: true})
	if err != nil {
		return nil, err
	}
	return json.RawMessage(res.Body), nil
}

// JWKS returns the server's public signing keys as a JSON Web Key Set
// (RFC 7517), for verifying access tokens.
func (c *Client) JWKS(ctx context.Context) (json.RawMessage, error) {
	res, err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/.well-known/jwks.json", Anonymous: true})
	if err != nil {
		return nil, err
	}
	return json.RawMessage(res.Body), nil
}
