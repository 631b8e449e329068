// Package auth is the Authentication API section: accounts, email
// verification, sign-in with access and refresh tokens, sessions, password
// reset and change, the profile, account deletion and operator actions. It
// also publishes the signing keys.
package auth

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/modules/auth/mail"
	"github.com/nexus-suite/nexus/modules/auth/password"
	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/storage"
)

// Name is the module's key under "modules" in the config.
const Name = "auth"

func init() {
	runtime.RegisterModule(Name, func() runtime.Module { return &Module{} })
}

//go:embed migrations
var migrationFiles embed.FS

// Module serves the /v1/auth and /v1/admin routes.
type Module struct {
	opts      options
	host      *runtime.Host
	store     *store
	mailer    mail.Sender
	masterKey []byte
	params    password.Params
	slots     hashSlots
	// providers are the social sign-in providers by id, built at provision.
	providers map[string]identityProvider
	// ssoProviders caches the OIDC providers of SSO connections by id.
	ssoProviders   sync.Map
	providerClient *http.Client
}

// Info names the module.
func (m *Module) Info() runtime.ModuleInfo {
	return runtime.ModuleInfo{Name: Name, Title: "Authentication"}
}

// Migrations returns the module's tables: account columns, refresh tokens
// and one-time email tokens.
func (m *Module) Migrations() storage.MigrationSet {
	return storage.EmbeddedMigrationSet(Name, migrationFiles)
}

// Decode reads modules.auth strictly over the defaults.
func (m *Module) Decode(section map[string]any) error {
	opts, err := configs.DecodeModule(Name, section, defaultOptions(), options.validate)
	if err != nil {
		return err
	}
	m.opts = opts
	return nil
}

// Provision opens the store and the mail sender.
func (m *Module) Provision(_ context.Context, host *runtime.Host) error {
	m.host = host
	m.store = &store{db: host.DB}
	m.masterKey = host.MasterKey
	m.params = m.opts.passwordParams()
	if m.opts.PublicURL == "" {
		m.opts.PublicURL = "http://" + host.Config.Server.Listen
	}
	m.slots = newHashSlots(m.opts.Argon2.MaxConcurrent)

	providerClient := &http.Client{Timeout: providerTimeout}
	m.providerClient = providerClient
	m.providers = map[string]identityProvider{}
	for id, options := range m.opts.Providers {
		switch options.Type {
		case "google":
			m.providers[id] = newOIDCProvider(id, googleIssuer, options.ClientID, options.ClientSecret, options.Scopes, providerClient, host.Clock)
		case "oidc":
			m.providers[id] = newOIDCProvider(id, options.Issuer, options.ClientID, options.ClientSecret, options.Scopes, providerClient, host.Clock)
		case "github":
			m.providers[id] = newGitHubProvider(id, options, providerClient)
		}
	}

	switch m.opts.Mail.Sender {
	case "smtp":
		sender, err := mail.NewSMTPSender(m.opts.smtpConfig())
		if err != nil {
			return fmt.Errorf("configure smtp sender: %w", err)
		}
		m.mailer = sender
	default:
		m.mailer = mail.NewLogSender(host.Logger)
	}
	return nil
}

// Validate checks what Provision received.
func (m *Module) Validate() error {
	switch {
	case m.host.Keys == nil:
		return errors.New("no keyring: the host has no signing keys")
	case len(m.masterKey) == 0:
		return errors.New("no master key to seal refresh token successors")
	}
	return nil
}

// Start does nothing: the module has no background work.
func (m *Module) Start(context.Context) error { return nil }

// Stop does nothing: the store and the sender hold no connections of their own.
func (m *Module) Stop(context.Context) error { return nil }

// Probe fails when no key can sign tokens.
func (m *Module) Probe(context.Context) error {
	if m.host.Keys.SigningKeyID() == "" {
		return errors.New("no signing key")
	}
	return nil
}

// SetMailer replaces the mail sender; tests use it to capture messages.
func (m *Module) SetMailer(sender mail.Sender) { m.mailer = sender }

// Routes lists the module's routes. Unauthenticated routes count against
// the per-IP limit.
func (m *Module) Routes() []edge.Route {
	public := func(method, path, summary string, handler edge.HandlerFunc) edge.Route {
		return edge.Route{Method: method, Path: path, Module: Name, Handler: handler, IPLimited: true, Summary: summary}
	}
	private := func(method, path, summary string, handler edge.HandlerFunc) edge.Route {
		return edge.Route{Method: method, Path: path, Module: Name, Handler: handler, Authenticated: true, Summary: summary}
	}
	return []edge.Route{
		{Method: "GET", Path: "/v1/auth/jwks", Module: Name, Handler: m.jwks, Summary: "The public signing keys as a JSON Web Key Set"},

		public("POST", "/v1/auth/register", "Create an account and send the verification mail", m.register),
		public("POST", "/v1/auth/verify-email", "Verify an email address with its one-time token", m.verifyEmail),
		public("GET", "/v1/auth/verify-email", "Verify an email address from the mailed link", m.verifyEmailLink),
		public("POST", "/v1/auth/verify-email/resend", "Send the verification mail again", m.resendVerification),
		public("POST", "/v1/auth/login", "Sign in with email and password", m.login),
		public("POST", "/v1/auth/refresh", "Rotate a refresh token into a new token pair", m.refreshHandler),
		public("POST", "/v1/auth/password/forgot", "Send a password reset mail", m.forgotPassword),
		public("GET", "/v1/auth/password/reset", "The password reset form from the mailed link", m.resetPasswordForm),
		public("POST", "/v1/auth/password/reset", "Set a new password with a reset token", m.resetPassword),

		public("POST", "/v1/auth/device/code", "Start a device authorization request (RFC 8628)", m.deviceCode),
		{Method: "POST", Path: "/v1/auth/device/token", Module: Name, Handler: m.deviceToken, Summary: "Poll for the tokens of a device authorization request (RFC 8628)"},
		{Method: "GET", Path: "/v1/auth/device", Module: Name, Handler: m.devicePageView, Summary: "The device verification page (HTML)"},
		public("POST", "/v1/auth/device/signin", "Sign in on the device verification page (HTML form)", m.deviceSignIn),
		public("POST", "/v1/auth/device/approve", "Approve or deny a device on the verification page (HTML form)", m.deviceApprove),

		private("POST", "/v1/auth/logout", "End the current session", m.logout),
		private("GET", "/v1/auth/sessions", "List the caller's live sessions", m.listSessions),
		private("DELETE", "/v1/auth/sessions", "End every session but the current one", m.endOtherSessions),
		private("DELETE", "/v1/auth/sessions/{id}", "End one of the caller's sessions", m.endSession),
		private("POST", "/v1/auth/password/change", "Change the password; ends every other session", m.changePassword),
		private("GET", "/v1/auth/me", "The caller's profile", m.me),
		private("PATCH", "/v1/auth/me", "Update the caller's display name", m.updateMe),
		private("DELETE", "/v1/auth/me", "Delete the caller's account and its data in every module", m.deleteMe),
		private("DELETE", "/v1/auth/me/identities/{provider}", "Unlink an external sign-in identity while another sign-in method remains", m.unlinkIdentity),

		public("GET", "/v1/auth/oauth/{provider}/start", "Start a browser sign-in at a social provider", m.oauthStart),
		public("GET", "/v1/auth/oauth/{provider}/callback", "The social provider's redirect back after sign-in", m.oauthCallback),
		public("POST", "/v1/auth/oauth/exchange", "Exchange an app's one-time sign-in code and PKCE verifier for tokens", m.oauthExchange),

		public("GET", "/v1/auth/sso/discover", "Find the SSO connection of an email's domain", m.ssoDiscover),
		public("GET", "/v1/auth/sso/{connection}/start", "Start a sign-in through an enterprise SSO connection", m.ssoStart),
		public("GET", "/v1/auth/sso/{connection}/callback", "The OIDC identity provider's redirect back after sign-in", m.ssoCallback),
		public("POST", "/v1/auth/sso/{connection}/callback", "The SAML assertion consumer service", m.ssoCallback),
		public("GET", "/v1/auth/sso/{connection}/metadata", "The SAML service provider metadata of a connection", m.ssoMetadata),

		private("GET", "/v1/admin/users", "Find a user by email (operators)", m.adminFindUser),
		private("POST", "/v1/admin/users/{id}/lock", "Lock an account and end its sessions (operators)", m.adminLock),
		private("POST", "/v1/admin/users/{id}/unlock", "Unlock an account (operators)", m.adminUnlock),
		private("POST", "/v1/admin/users/{id}/verify", "Mark an account's email verified (operators)", m.adminVerify),
		private("DELETE", "/v1/admin/users/{id}", "Delete an account (operators)", m.adminDelete),
		private("GET", "/v1/admin/sso/connections", "List the SSO connections (operators)", m.adminListConnections),
		private("POST", "/v1/admin/sso/connections", "Create an SSO connection for an email domain (operators)", m.adminCreateConnection),
		private("PATCH", "/v1/admin/sso/connections/{id}", "Require or stop requiring SSO for a connection's domain (operators)", m.adminUpdateConnection),
		private("DELETE", "/v1/admin/sso/connections/{id}", "Delete an SSO connection (operators)", m.adminDeleteConnection),
	}
}

// jwks writes the key set in RFC 7517 form, outside the envelope, so that
// standard JWT libraries can fetch it.
func (m *Module) jwks(r *edge.Request) error {
	r.Ctx.Response.Header.Set("Cache-Control", "public, max-age=300")
	r.Raw(http.StatusOK, "application/json", m.host.Keys.JWKS())
	return nil
}

// now returns the module clock's time.
func (m *Module) now() time.Time { return m.host.Clock.Now() }
