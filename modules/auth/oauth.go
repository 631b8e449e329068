package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nexus-suite/nexus/edge"
)

// Browser sign-in through an external provider, for apps. The app opens
// GET /v1/auth/oauth/{provider}/start in a browser with its client_id, one
// of its registered redirect URIs, its own PKCE challenge and state. The
// server runs its own flow with the provider (a separate state, PKCE
// verifier and nonce), resolves the account, and sends the browser to the
// app's redirect URI with a one-time code. The app exchanges that code at
// POST /v1/auth/oauth/exchange with its PKCE verifier. So the provider's
// tokens never reach the app, and a stolen code is useless without the
// verifier. Enterprise SSO connections use the same start and exchange.

const (
	oauthFlowPrefix     = "auth:oauth-flow:"
	oauthFlowUsedPrefix = "auth:oauth-flow-used:"
	appCodePrefix       = "auth:app-code:"
	appCodeUsedPrefix   = "auth:app-code-used:"
	appCodeFailPrefix   = "auth:app-code-failures:"

	// appCodeTTL is the lifetime of the one-time code given to the app.
	appCodeTTL = 5 * time.Minute
	// maxVerifierFailures wrong PKCE verifiers use up a code; fewer leave it
	// usable, so a client bug does not cost the user a new sign-in.
	maxVerifierFailures = 5
	maxAppStateLength   = 512
)

// signInFlow is the state of one browser sign-in, kept in the key-value
// store under its state parameter until the provider calls back.
type signInFlow struct {
	// Source is the provider id, or sso:<connection id>.
	Source       string `json:"source"`
	ClientID     string `json:"client_id"`
	RedirectURI  string `json:"redirect_uri"`
	AppChallenge string `json:"app_challenge"`
	AppState     string `json:"app_state"`
	Verifier     string `json:"verifier"`
	Nonce        string `json:"nonce"`
	// RequestID is the id of a SAML AuthnRequest, which the response must
	// name in InResponseTo.
	RequestID string `json:"request_id,omitempty"`
}

// appCode is the sign-in behind a one-time app code.
type appCode struct {
	UserID      string `json:"user_id"`
	ClientID    string `json:"client_id"`
	RedirectURI string `json:"redirect_uri"`
	Challenge   string `json:"challenge"`
	Source      string `json:"source"`
}

// appRequest is the app's part of a start request.
type appRequest struct {
	ClientID, RedirectURI, Challenge, State string
}

// readAppRequest checks the app's query parameters of a start request.
func (m *Module) readAppRequest(r *edge.Request) (appRequest, error) {
	query := r.Ctx.QueryArgs()
	request := appRequest{
		ClientID: string(query.Peek("client_id")), RedirectURI: string(query.Peek("redirect_uri")),
		Challenge: string(query.Peek("code_challenge")), State: string(query.Peek("state")),
	}
	client, ok := m.opts.Clients[request.ClientID]
	if !ok {
		return request, edge.Validation("client_id", "client_id is missing or not a registered client")
	}
	if !allowsGrant(client, grantAuthorizationCode) {
		return request, edge.Validation("client_id", "this client may not use browser sign-in (grant authorization_code)")
	}
	if !redirectAllowed(client.RedirectURIs, request.RedirectURI) {
		return request, edge.Validation("redirect_uri", "redirect_uri is not registered for this client")
	}
	if method := string(query.Peek("code_challenge_method")); method != "S256" {
		return request, edge.Validation("code_challenge_method", "code_challenge_method must be S256")
	}
	if !validChallenge(request.Challenge) {
		return request, edge.Validation("code_challenge", "code_challenge must be the base64url SHA-256 of the verifier (43 characters)")
	}
	if len(request.State) > maxAppStateLength {
		return request, edge.Validation("state", fmt.Sprintf("state must be at most %d characters", maxAppStateLength))
	}
	return request, nil
}

func allowsGrant(client clientOptions, grant string) bool {
	for _, allowed := range client.Grants {
		if allowed == grant {
			return true
		}
	}
	return false
}

// redirectAllowed matches a redirect URI against the registered ones:
// exactly, or for a loopback URI with any port (RFC 8252 section 7.3),
// because a desktop app listens on a port it gets from the system.
func redirectAllowed(registered []string, candidate string) bool {
	requested, err := url.Parse(candidate)
	if err != nil || candidate == "" || requested.Fragment != "" {
		return false
	}
	for _, raw := range registered {
		if raw == candidate {
			return true
		}
		allowed, err := url.Parse(raw)
		if err != nil || allowed.Scheme != "http" || requested.Scheme != "http" || !isLoopbackHost(allowed.Hostname()) {
			continue
		}
		if allowed.Hostname() == requested.Hostname() && allowed.Path == requested.Path && allowed.RawQuery == requested.RawQuery {
			return true
		}
	}
	return false
}

func isLoopbackHost(host string) bool {
	return host == "127.0.0.1" || host == "::1" || host == "localhost"
}

// validChallenge checks an S256 challenge: 43 characters of base64url.
func validChallenge(challenge string) bool {
	decoded, err := base64.RawURLEncoding.DecodeString(challenge)
	return len(challenge) == 43 && err == nil && len(decoded) == sha256.Size
}

// pkceChallenge returns the S256 challenge of a verifier.
func pkceChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// startFlow stores a new flow for the app's request and returns the
// state, PKCE challenge and nonce to send to the provider.
func (m *Module) startFlow(ctx context.Context, source string, app appRequest, requestID string) (state, challenge, nonce string, err error) {
	state, _, err = randomToken(32)
	if err != nil {
		return "", "", "", err
	}
	verifier, _, err := randomToken(32)
	if err != nil {
		return "", "", "", err
	}
	nonce, _, err = randomToken(16)
	if err != nil {
		return "", "", "", err
	}
	flow := signInFlow{
		Source: source, ClientID: app.ClientID, RedirectURI: app.RedirectURI,
		AppChallenge: app.Challenge, AppState: app.State, Verifier: verifier, Nonce: nonce, RequestID: requestID,
	}
	encoded, err := json.Marshal(flow)
	if err != nil {
		return "", "", "", err
	}
	if err := m.host.KV.Set(ctx, oauthFlowPrefix+state, encoded, m.opts.OAuthFlowTTL); err != nil {
		return "", "", "", fmt.Errorf("store sign-in flow: %w", err)
	}
	return state, pkceChallenge(verifier), nonce, nil
}

// takeFlow returns the flow of a state once. A replayed state, also one
// presented by two requests at the same moment, fails for all but the
// first, and an unknown or expired one fails too.
func (m *Module) takeFlow(ctx context.Context, state, source string) (signInFlow, error) {
	if state == "" {
		return signInFlow{}, edge.Validation("state", "state is missing")
	}
	first, err := m.host.KV.SetNX(ctx, oauthFlowUsedPrefix+state, []byte("1"), m.opts.OAuthFlowTTL)
	if err != nil {
		return signInFlow{}, fmt.Errorf("mark sign-in flow used: %w", err)
	}
	if !first {
		return signInFlow{}, edge.Validation("state", "this sign-in was already completed; start again")
	}
	encoded, found, err := m.host.KV.Get(ctx, oauthFlowPrefix+state)
	if err != nil {
		return signInFlow{}, fmt.Errorf("load sign-in flow: %w", err)
	}
	if !found {
		return signInFlow{}, edge.Validation("state", "the sign-in is unknown or expired; start again")
	}
	if err := m.host.KV.Delete(ctx, oauthFlowPrefix+state); err != nil {
		return signInFlow{}, fmt.Errorf("delete sign-in flow: %w", err)
	}
	var flow signInFlow
	if err := json.Unmarshal(encoded, &flow); err != nil {
		return signInFlow{}, fmt.Errorf("decode sign-in flow: %w", err)
	}
	if flow.Source != source {
		return signInFlow{}, edge.Validation("state", "the state belongs to another sign-in provider")
	}
	return flow, nil
}

// redirectToApp sends the browser to the app's redirect URI with params
// and the app's own state.
func redirectToApp(r *edge.Request, flow signInFlow, params url.Values) error {
	target, err := url.Parse(flow.RedirectURI)
	if err != nil {
		return fmt.Errorf("parse redirect URI: %w", err)
	}
	query := target.Query()
	for key, values := range params {
		query[key] = values
	}
	if flow.AppState != "" {
		query.Set("state", flow.AppState)
	}
	target.RawQuery = query.Encode()
	r.Ctx.Response.Header.Set("Location", target.String())
	r.Ctx.Response.Header.Set("Cache-Control", "no-store")
	r.Ctx.Response.Header.Set("Referrer-Policy", "no-referrer")
	r.Raw(http.StatusFound, "text/plain; charset=utf-8", nil)
	return nil
}

// finishFlow resolves the account of an identity and sends the app its
// one-time code, or an OAuth error when the identity cannot sign in.
func (m *Module) finishFlow(r *edge.Request, flow signInFlow, identity externalIdentity) error {
	u, err := m.resolveIdentity(r, identity)
	var apiErr *edge.Error
	if errors.As(err, &apiErr) {
		r.Logger().Info("external sign-in rejected", slog.String("source", flow.Source), slog.String("reason", apiErr.Message))
		return redirectToApp(r, flow, url.Values{"error": {"access_denied"}, "error_description": {apiErr.Message}})
	}
	if err != nil {
		return err
	}
	if u.LockedUntil != nil && m.now().Before(*u.LockedUntil) {
		return redirectToApp(r, flow, url.Values{"error": {"access_denied"}, "error_description": {"the account is locked"}})
	}

	code, hash, err := randomToken(32)
	if err != nil {
		return err
	}
	record, err := json.Marshal(appCode{UserID: u.ID, ClientID: flow.ClientID, RedirectURI: flow.RedirectURI, Challenge: flow.AppChallenge, Source: flow.Source})
	if err != nil {
		return err
	}
	if err := m.host.KV.Set(r.Context(), appCodePrefix+hash, record, appCodeTTL); err != nil {
		return fmt.Errorf("store app code: %w", err)
	}
	r.Logger().Info("external sign-in succeeded", slog.String("user_id", u.ID), slog.String("source", flow.Source))
	return redirectToApp(r, flow, url.Values{"code": {code}})
}

// oauthStart serves GET /v1/auth/oauth/{provider}/start.
func (m *Module) oauthStart(r *edge.Request) error {
	id := r.Param("provider")
	provider, ok := m.providers[id]
	if !ok {
		return edge.NotFound("no sign-in provider " + id + " is configured")
	}
	app, err := m.readAppRequest(r)
	if err != nil {
		return err
	}

	state, challenge, nonce, err := m.startFlow(r.Context(), id, app, "")
	if err != nil {
		return err
	}
	target, err := provider.authCodeURL(r.Context(), state, challenge, nonce, m.callbackURL("/v1/auth/oauth/"+id+"/callback"))
	if err != nil {
		r.Logger().Error("sign-in provider unavailable", slog.String("provider", id), slog.String("error", err.Error()))
		return edge.NewError("INTERNAL_ERROR", "the sign-in provider is unavailable; try again later", nil)
	}
	r.Ctx.Response.Header.Set("Location", target)
	r.Ctx.Response.Header.Set("Cache-Control", "no-store")
	r.Raw(http.StatusFound, "text/plain; charset=utf-8", nil)
	return nil
}

func (m *Module) callbackURL(path string) string {
	return strings.TrimRight(m.opts.PublicURL, "/") + path
}

// oauthCallback serves GET /v1/auth/oauth/{provider}/callback, where the
// provider sends the browser back.
func (m *Module) oauthCallback(r *edge.Request) error {
	id := r.Param("provider")
	provider, ok := m.providers[id]
	if !ok {
		return edge.NotFound("no sign-in provider " + id + " is configured")
	}
	query := r.Ctx.QueryArgs()
	flow, err := m.takeFlow(r.Context(), string(query.Peek("state")), id)
	if err != nil {
		return err
	}
	if providerError := string(query.Peek("error")); providerError != "" {
		return redirectToApp(r, flow, url.Values{"error": {"access_denied"}, "error_description": {"the provider reported " + providerError}})
	}

	identity, err := provider.identify(r.Context(), string(query.Peek("code")), flow.Verifier, flow.Nonce,
		m.callbackURL("/v1/auth/oauth/"+id+"/callback"))
	if err != nil {
		r.Logger().Warn("sign-in at provider failed", slog.String("provider", id), slog.String("error", err.Error()))
		return redirectToApp(r, flow, url.Values{"error": {"access_denied"}, "error_description": {"the sign-in at the provider failed"}})
	}
	return m.finishFlow(r, flow, identity)
}

type exchangeInput struct {
	ClientID     string `json:"client_id"`
	Code         string `json:"code"`
	CodeVerifier string `json:"code_verifier"`
	RedirectURI  string `json:"redirect_uri"`
	DeviceName   string `json:"device_name"`
}

// oauthExchange serves POST /v1/auth/oauth/exchange: the app trades its
// one-time code and PKCE verifier for a session.
func (m *Module) oauthExchange(r *edge.Request) error {
	var input exchangeInput
	if err := r.Decode(&input); err != nil {
		return err
	}
	if input.Code == "" {
		return edge.Validation("code", "code is required")
	}
	if input.CodeVerifier == "" {
		return edge.Validation("code_verifier", "code_verifier is required")
	}

	ctx := r.Context()
	hash := hashToken(input.Code)
	encoded, found, err := m.host.KV.Get(ctx, appCodePrefix+hash)
	if err != nil {
		return fmt.Errorf("load app code: %w", err)
	}
	if !found {
		return codeRejected("code", "the code is unknown, used or expired; sign in again")
	}
	var record appCode
	if err := json.Unmarshal(encoded, &record); err != nil {
		return fmt.Errorf("decode app code: %w", err)
	}
	if record.ClientID != input.ClientID || record.RedirectURI != input.RedirectURI {
		return codeRejected("client_id", "client_id and redirect_uri must be those of the sign-in that issued the code")
	}
	if subtle.ConstantTimeCompare([]byte(pkceChallenge(input.CodeVerifier)), []byte(record.Challenge)) != 1 {
		return m.wrongVerifier(ctx, hash)
	}

	first, err := m.host.KV.SetNX(ctx, appCodeUsedPrefix+hash, []byte("1"), appCodeTTL)
	if err != nil {
		return fmt.Errorf("mark app code used: %w", err)
	}
	if !first {
		return codeRejected("code", "the code is unknown, used or expired; sign in again")
	}
	if err := m.host.KV.Delete(ctx, appCodePrefix+hash, appCodeFailPrefix+hash); err != nil {
		r.Logger().Warn("delete used app code failed", slog.String("error", err.Error()))
	}

	u, err := m.store.userByID(ctx, record.UserID)
	if errors.Is(err, errNotFound) {
		return codeRejected("code", "the account of this code no longer exists")
	}
	if err != nil {
		return err
	}
	pair, err := m.startSession(ctx, r, u, input.DeviceName)
	if err != nil {
		return err
	}
	r.Logger().Info("signed in through an external provider", slog.String("user_id", u.ID),
		slog.String("session_id", pair.SessionID), slog.String("source", record.Source))
	return r.JSON(http.StatusOK, loginResult{tokenPair: pair, User: viewOf(u)})
}

// wrongVerifier counts a wrong PKCE verifier and deletes the code after
// maxVerifierFailures, so the verifier cannot be guessed.
func (m *Module) wrongVerifier(ctx context.Context, hash string) error {
	failures, err := m.host.KV.IncrBy(ctx, appCodeFailPrefix+hash, 1, appCodeTTL)
	if err != nil {
		return fmt.Errorf("count wrong verifiers: %w", err)
	}
	if failures >= maxVerifierFailures {
		if err := m.host.KV.Delete(ctx, appCodePrefix+hash); err != nil {
			return fmt.Errorf("delete app code: %w", err)
		}
	}
	return codeRejected("code_verifier", "code_verifier does not match the code_challenge of the sign-in")
}

func codeRejected(field, message string) *edge.Error {
	err := edge.Validation(field, message)
	err.Details["reason"] = "invalid_grant"
	return err
}
