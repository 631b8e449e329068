package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// User is an account as its owner sees it.
type User struct {
	ID            string     `json:"id"`
	Email         string     `json:"email"`
	DisplayName   string     `json:"display_name"`
	EmailVerified bool       `json:"email_verified"`
	Role          string     `json:"role"`
	CreatedAt     time.Time  `json:"created_at"`
	HasPassword   bool       `json:"has_password"`
	Identities    []Identity `json:"identities"`
}

// Identity is an external sign-in identity linked to the account.
type Identity struct {
	Provider string    `json:"provider"`
	Email    string    `json:"email"`
	LinkedAt time.Time `json:"linked_at"`
}

// Session is one of the user's signed-in sessions.
type Session struct {
	ID         string    `json:"id"`
	DeviceName string    `json:"device_name"`
	IP         string    `json:"ip"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	Current    bool      `json:"current"`
}

// SignIn is the result of a password sign-in or a code exchange.
type SignIn struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
	SessionID    string `json:"session_id"`
	User         User   `json:"user"`
}

func (c *Client) adopt(result SignIn) {
	c.SetTokens(Tokens{AccessToken: result.AccessToken, RefreshToken: result.RefreshToken,
		ExpiresAt: c.opts.Clock.Now().Add(time.Duration(result.ExpiresIn) * time.Second)})
}

// Register creates an account; the server mails a verification link.
func (c *Client) Register(ctx context.Context, email, password, displayName string) (User, error) {
	var user User
	err := c.Call(ctx, Request{Method: http.MethodPost, Path: "/v1/auth/register", Anonymous: true,
		Body: map[string]string{"email": email, "password": password, "display_name": displayName}}, &user)
	return user, err
}

// VerifyEmail uses the token of a verification mail.
func (c *Client) VerifyEmail(ctx context.Context, token string) error {
	return c.Call(ctx, Request{Method: http.MethodPost, Path: "/v1/auth/verify-email", Anonymous: true,
		Body: map[string]string{"token": token}}, nil)
}

// ResendVerification requests another verification mail.
func (c *Client) ResendVerification(ctx context.Context, email string) error {
	return c.Call(ctx, Request{Method: http.MethodPost, Path: "/v1/auth/verify-email/resend", Anonymous: true,
		Body: map[string]string{"email": email}}, nil)
}

// Login signs in with email and password and keeps the new tokens.
func (c *Client) Login(ctx context.Context, email, password, deviceName string) (SignIn, error) {
	var result SignIn
	err := c.Call(ctx, Request{Method: http.MethodPost, Path: "/v1/auth/login", Anonymous: true,
		Body: map[string]string{"email": email, "password": password, "device_name": deviceName}}, &result)
	if err == nil {
		c.adopt(result)
	}
	return result, err
}

// ExchangeCode trades a browser sign-in's one-time code and the app's PKCE
// verifier for a session, and keeps the new tokens.
func (c *Client) ExchangeCode(ctx context.Context, clientID, code, verifier, redirectURI string) (SignIn, error) {
	var result SignIn
	err := c.Call(ctx, Request{Method: http.MethodPost, Path: "/v1/auth/oauth/exchange", Anonymous: true,
		Body: map[string]string{"client_id": clientID, "code": code, "code_verifier": verifier, "redirect_uri": redirectURI}}, &result)
	if err == nil {
		c.adopt(result)
	}
	return result, err
}

// Logout ends the current session.
func (c *Client) Logout(ctx context.Context) error {
	return c.Call(ctx, Request{Method: http.MethodPost, Path: "/v1/auth/logout"}, nil)
}

// Me returns the caller's account.
func (c *Client) Me(ctx context.Context) (User, error) {
	var user User
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: "/v1/auth/me"}, &user)
	return user, err
}

// UpdateDisplayName changes the caller's display name.
func (c *Client) UpdateDisplayName(ctx context.Context, name string) (User, error) {
	var user User
	err := c.Call(ctx, Request{Method: http.MethodPatch, Path: "/v1/auth/me", Body: map[string]string{"display_name": name}}, &user)
	return user, err
}

// DeleteAccount deletes the caller's account and its data in every
// module; the server needs the account's password.
func (c *Client) DeleteAccount(ctx context.Context, password string) error {
	return c.Call(ctx, Request{Method: http.MethodDelete, Path: "/v1/auth/me", Body: map[string]string{"password": password}}, nil)
}

// UnlinkIdentity removes a linked external identity.
func (c *Client) UnlinkIdentity(ctx context.Context, provider string) error {
	return c.Call(ctx, Request{Method: http.MethodDelete, Path: "/v1/auth/me/identities/" + url.PathEscape(provider)}, nil)
}

// Sessions lists the caller's live sessions.
func (c *Client) Sessions(ctx context.Context) ([]Session, error) {
	var sessions []Session
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: "/v1/auth/sessions"}, &sessions)
	return sessions, err
}

// EndSession ends one of the caller's sessions.
func (c *Client) EndSession(ctx context.Context, id string) error {
	return c.Call(ctx, Request{Method: http.MethodDelete, Path: "/v1/auth/sessions/" + url.PathEscape(id)}, nil)
}

// EndOtherSessions ends every session but the current one.
func (c *Client) EndOtherSessions(ctx context.Context) error {
	return c.Call(ctx, Request{Method: http.MethodDelete, Path: "/v1/auth/sessions"}, nil)
}

// ChangePassword sets a new password; it ends every other session.
func (c *Client) ChangePassword(ctx context.Context, current, next string) error {
	return c.Call(ctx, Request{Method: http.MethodPost, Path: "/v1/auth/password/change",
		Body: map[string]string{"current_password": current, "new_password": next}}, nil)
}

// ForgotPassword requests a password reset mail.
func (c *Client) ForgotPassword(ctx context.Context, email string) error {
	return c.Call(ctx, Request{Method: http.MethodPost, Path: "/v1/auth/password/forgot", Anonymous: true,
		Body: map[string]string{"email": email}}, nil)
}

// ResetPassword sets a new password with the token of a reset mail.
func (c *Client) ResetPassword(ctx context.Context, token, password string) error {
	return c.Call(ctx, Request{Method: http.MethodPost, Path: "/v1/auth/password/reset", Anonymous: true,
		Body: map[string]string{"token": token, "password": password}}, nil)
}

// SSOConnection is the SSO connection of an email domain.
type SSOConnection struct {
	ConnectionID string `json:"connection_id"`
	Name         string `json:"name"`
	Kind         string `json:"kind"`
	RequireSSO   bool   `json:"require_sso"`
	StartURL     string `json:"start_url"`
}

// DiscoverSSO finds the SSO connection of an email's domain.
func (c *Client) DiscoverSSO(ctx context.Context, email string) (SSOConnection, error) {
	var connection SSOConnection
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: "/v1/auth/sso/discover?email=" + url.QueryEscape(email), Anonymous: true}, &connection)
	return connection, err
}
