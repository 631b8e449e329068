package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// The admin routes need a signed-in operator: a user with the admin role.
// Others get FORBIDDEN.

// AdminUser is an account as operators see it.
type AdminUser struct {
	ID            string `json:"id"`
	Email         string `json:"email"`
	DisplayName   string `json:"display_name"`
	Role          string `json:"role"`
	EmailVerified bool   `json:"email_verified"`
	// LockedUntil is the end of an operator's lock, 9999-12-31 for a lock
	// without an end, or nil.
	LockedUntil *time.Time `json:"locked_until"`
	CreatedAt   time.Time  `json:"created_at"`
}

// UserEntitlements are a user's entitlements, active override and latest
// history, newest first.
type UserEntitlements struct {
	UserID       string                    `json:"user_id"`
	Entitlements Entitlements              `json:"entitlements"`
	Override     *EntitlementOverride      `json:"override"`
	History      []EntitlementHistoryEntry `json:"history"`
}

// EntitlementOverride is an operator's override of one user: a tier that
// replaces the user's tier ("" for none) and features on top.
type EntitlementOverride struct {
	Tier      string     `json:"tier"`
	Features  []string   `json:"features"`
	ExpiresAt *time.Time `json:"expires_at"`
	Reason    string     `json:"reason"`
	Actor     string     `json:"actor"`
	CreatedAt time.Time  `json:"created_at"`
}

// EntitlementHistoryEntry is one recorded change of a trial or override.
type EntitlementHistoryEntry struct {
	ID        int64           `json:"id"`
	Actor     string          `json:"actor"`
	Action    string          `json:"action"`
	Detail    json.RawMessage `json:"detail"`
	Reason    string          `json:"reason"`
	CreatedAt time.Time       `json:"created_at"`
}

// OverrideRequest sets an override: Tier, Features or both, and a Reason
// of 1 to 500 characters. A nil ExpiresAt lasts until cleared.
type OverrideRequest struct {
	Tier      string     `json:"tier,omitempty"`
	Features  []string   `json:"features,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Reason    string     `json:"reason"`
}

// AdminSSOConnection is an SSO connection as operators see it; the client
// secret is never returned.
type AdminSSOConnection struct {
	ID           string    `json:"id"`
	Domain       string    `json:"domain"`
	Kind         string    `json:"kind"`
	Name         string    `json:"name"`
	RequireSSO   bool      `json:"require_sso"`
	OIDCIssuer   string    `json:"oidc_issuer,omitempty"`
	OIDCClientID string    `json:"oidc_client_id,omitempty"`
	StartURL     string    `json:"start_url"`
	CallbackURL  string    `json:"callback_url"`
	MetadataURL  string    `json:"metadata_url,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// SSOConnectionRequest creates a connection for an email domain: Kind
// "oidc" with OIDC, or "saml" with SAML.
type SSOConnectionRequest struct {
	Domain     string             `json:"domain"`
	Kind       string             `json:"kind"`
	Name       string             `json:"name"`
	RequireSSO bool               `json:"require_sso,omitempty"`
	OIDC       *SSOConnectionOIDC `json:"oidc,omitempty"`
	SAML       *SSOConnectionSAML `json:"saml,omitempty"`
}

// SSOConnectionOIDC is the identity provider of an OIDC connection.
type SSOConnectionOIDC struct {
	Issuer       string `json:"issuer"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// SSOConnectionSAML is the identity provider of a SAML connection.
type SSOConnectionSAML struct {
	IdPMetadataXML string `json:"idp_metadata_xml"`
}

func adminUserPath(id string) string { return "/v1/admin/users/" + url.PathEscape(id) }

// AdminFindUser finds an account by email.
func (c *Client) AdminFindUser(ctx context.Context, email string) (AdminUser, error) {
	var user AdminUser
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: "/v1/admin/users?email=" + url.QueryEscape(email)}, &user)
	return user, err
}

// AdminDeleteUser deletes an account and its data in every module.
func (c *Client) AdminDeleteUser(ctx context.Context, id string) error {
	return c.Call(ctx, Request{Method: http.MethodDelete, Path: adminUserPath(id)}, nil)
}

// AdminLockUser locks an account and ends its sessions, until the time
// given or, with nil, until an unlock. Locking again is harmless, so the
// request is retried like an idempotent one.
func (c *Client) AdminLockUser(ctx context.Context, id string, until *time.Time) (AdminUser, error) {
	req := Request{Method: http.MethodPost, Path: adminUserPath(id) + "/lock", safeToRepeat: true}
	if until != nil {
		req.Body = map[string]time.Time{"until": *until}
	}
	var user AdminUser
	err := c.Call(ctx, req, &user)
	return user, err
}

// AdminUnlockUser lifts an operator's lock.
func (c *Client) AdminUnlockUser(ctx context.Context, id string) (AdminUser, error) {
	var user AdminUser
	err := c.Call(ctx, Request{Method: http.MethodPost, Path: adminUserPath(id) + "/unlock", safeToRepeat: true}, &user)
	return user, err
}

// AdminVerifyUser marks an account's email verified.
func (c *Client) AdminVerifyUser(ctx context.Context, id string) (AdminUser, error) {
	var user AdminUser
	err := c.Call(ctx, Request{Method: http.MethodPost, Path: adminUserPath(id) + "/verify", safeToRepeat: true}, &user)
	return user, err
}

// AdminUserEntitlements returns a user's entitlements, override and history.
func (c *Client) AdminUserEntitlements(ctx context.Context, id string) (UserEntitlements, error) {
	var result UserEntitlements
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: adminUserPath(id) + "/entitlements"}, &result)
	return result, err
}

// AdminSetOverride replaces a user's entitlement override.
func (c *Client) AdminSetOverride(ctx context.Context, id string, override OverrideRequest) (UserEntitlements, error) {
	var result UserEntitlements
	err := c.Call(ctx, Request{Method: http.MethodPut, Path: adminUserPath(id) + "/entitlements/override", Body: override}, &result)
	return result, err
}

// AdminClearOverride ends a user's active override; without one it is a
// NOT_FOUND error.
func (c *Client) AdminClearOverride(ctx context.Context, id, reason string) (UserEntitlements, error) {
	var result UserEntitlements
	err := c.Call(ctx, Request{Method: http.MethodDelete, Path: adminUserPath(id) + "/entitlements/override",
		Body: map[string]string{"reason": reason}}, &result)
	return result, err
}

// AdminSSOConnections lists every SSO connection.
func (c *Client) AdminSSOConnections(ctx context.Context) ([]AdminSSOConnection, error) {
	var connections []AdminSSOConnection
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: "/v1/admin/sso/connections"}, &connections)
	return connections, err
}

// AdminCreateSSOConnection creates the SSO connection of an email domain;
// a domain that has one already is a CONFLICT.
func (c *Client) AdminCreateSSOConnection(ctx context.Context, request SSOConnectionRequest) (AdminSSOConnection, error) {
	var connection AdminSSOConnection
	err := c.Call(ctx, Request{Method: http.MethodPost, Path: "/v1/admin/sso/connections", Body: request}, &connection)
	return connection, err
}

// AdminRequireSSO sets whether password sign-in is refused for the
// connection's domain.
func (c *Client) AdminRequireSSO(ctx context.Context, id string, require bool) (AdminSSOConnection, error) {
	var connection AdminSSOConnection
	err := c.Call(ctx, Request{Method: http.MethodPatch, Path: "/v1/admin/sso/connections/" + url.PathEscape(id),
		Body: map[string]bool{"require_sso": require}, safeToRepeat: true}, &connection)
	return connection, err
}

// AdminDeleteSSOConnection deletes a connection; the accounts stay.
func (c *Client) AdminDeleteSSOConnection(ctx context.Context, id string) error {
	return c.Call(ctx, Request{Method: http.MethodDelete, Path: "/v1/admin/sso/connections/" + url.PathEscape(id)}, nil)
}
