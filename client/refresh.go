package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// refreshResult is the data of POST /v1/auth/refresh.
type refreshResult struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
}

// refresh renews the tokens after a 401 on a request sent with
// usedAccessToken. When another caller already renewed them, it returns at
// once; when a renewal is in flight, it waits for that one. So callers
// that hit 401 together send one refresh request.
func (c *Client) refresh(ctx context.Context, usedAccessToken string) error {
	c.mu.Lock()
	if c.tokens.AccessToken != usedAccessToken {
		c.mu.Unlock()
		return nil
	}
	call := c.refreshing
	if call == nil {
		call = &refreshCall{done: make(chan struct{})}
		c.refreshing = call
		refreshToken := c.tokens.RefreshToken
		c.mu.Unlock()
		go c.runRefresh(call, refreshToken)
	} else {
		c.mu.Unlock()
	}

	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runRefresh sends the refresh request, detached from any one caller's
// context, so a caller that gives up does not fail the others.
func (c *Client) runRefresh(call *refreshCall, refreshToken string) {
	defer close(call.done)
	defer func() {
		c.mu.Lock()
		c.refreshing = nil
		c.mu.Unlock()
	}()

	if refreshToken == "" {
		call.err = fmt.Errorf("%w: no refresh token is stored", ErrSignInRequired)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A refresh is safe to repeat: within its reuse window the server
	// returns the same successor, so 5xx and network errors are retried.
	req := Request{
		Method: http.MethodPost, Path: "/v1/auth/refresh", Body: map[string]string{"refresh_token": refreshToken},
		Anonymous: true, safeToRepeat: true,
	}
	var result refreshResult
	res, err := c.Do(ctx, req)
	if err == nil {
		err = res.Decode(&result)
	}
	var apiErr *Error
	if errors.As(err, &apiErr) && (apiErr.Status == http.StatusUnauthorized || apiErr.Status == http.StatusBadRequest) {
		call.err = fmt.Errorf("%w: %v", ErrSignInRequired, apiErr)
		return
	}
	if err != nil {
		call.err = fmt.Errorf("refresh the session: %w", err)
		return
	}

	tokens := Tokens{AccessToken: result.AccessToken, RefreshToken: result.RefreshToken,
		ExpiresAt: c.opts.Clock.Now().Add(time.Duration(result.ExpiresIn) * time.Second)}
	c.mu.Lock()
	c.tokens = tokens
	c.mu.Unlock()
	if c.opts.OnRefresh != nil {
		if err := c.opts.OnRefresh(tokens); err != nil {
			call.err = fmt.Errorf("save refreshed tokens: %w", err)
		}
	}
}
