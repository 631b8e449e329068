package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/storage"
)

// The device authorization grant of RFC 8628. Its two endpoints are OAuth
// protocol endpoints, so they take form-encoded bodies (JSON too) and
// respond in RFC 6749's shape rather than the API's envelope. So standard
// OAuth clients such as golang.org/x/oauth2 read them unchanged.

// deviceGrantType is the grant_type value of a device token request.
const deviceGrantType = "urn:ietf:params:oauth:grant-type:device_code"

// userCodeAlphabet has no vowels, so that no word is spelled by accident,
// and no look-alike digits. Eight letters give 20^8, about 2.6e10, codes.
const (
	userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	userCodeLength   = 8
)

// slowDownStep is what RFC 8628 section 3.5 adds to the interval at each
// slow_down. pollJitter is how early a poll may arrive without counting
// as too fast, because network delays bunch polls that were sent on time.
const (
	slowDownStep = 5 * time.Second
	pollJitter   = time.Second
)

// maxScopeLength bounds the scope parameter that a client may send.
const maxScopeLength = 512

// deviceAuthorization is the response of POST /v1/auth/device/code.
type deviceAuthorization struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

// deviceTokenResponse is a successful response of POST /v1/auth/device/token.
type deviceTokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope,omitempty"`
}

// oauthParams are the parameters of a request to an OAuth endpoint.
type oauthParams struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	Scope        string `json:"scope"`
	GrantType    string `json:"grant_type"`
	DeviceCode   string `json:"device_code"`
}

// readOAuthParams reads a form-encoded or JSON body. The client may also
// authenticate with HTTP Basic, as RFC 6749 section 2.3.1 prefers.
func readOAuthParams(r *edge.Request) (oauthParams, error) {
	var params oauthParams
	contentType := string(r.Ctx.Request.Header.ContentType())
	if strings.HasPrefix(contentType, "application/json") {
		decoder := json.NewDecoder(bytes.NewReader(r.Ctx.PostBody()))
		decoder.DisallowUnknownFields()
		if err := decoder.Decode(&params); err != nil {
			return params, fmt.Errorf("the JSON body is invalid: %v", err)
		}
	} else {
		args := r.Ctx.PostArgs()
		params = oauthParams{
			ClientID: string(args.Peek("client_id")), ClientSecret: string(args.Peek("client_secret")),
			Scope: string(args.Peek("scope")), GrantType: string(args.Peek("grant_type")),
			DeviceCode: string(args.Peek("device_code")),
		}
	}

	if user, secret, ok := basicAuth(r); ok {
		if params.ClientID != "" && params.ClientID != user {
			return params, errors.New("client_id differs from the client in the Authorization header")
		}
		params.ClientID, params.ClientSecret = user, secret
	}
	return params, nil
}

func basicAuth(r *edge.Request) (user, secret string, ok bool) {
	header := string(r.Ctx.Request.Header.Peek("Authorization"))
	if !strings.HasPrefix(header, "Basic ") {
		return "", "", false
	}
	request := http.Request{Header: http.Header{"Authorization": {header}}}
	return request.BasicAuth()
}

// writeOAuthError writes an RFC 6749 section 5.2 error response.
func writeOAuthError(r *edge.Request, status int, code, description string) error {
	body, err := json.Marshal(map[string]string{"error": code, "error_description": description})
	if err != nil {
		return err
	}
	r.Ctx.Response.Header.Set("Cache-Control", "no-store")
	if status == http.StatusUnauthorized {
		r.Ctx.Response.Header.Set("WWW-Authenticate", `Basic realm="nexus"`)
	}
	r.Raw(status, "application/json", body)
	return nil
}

func writeOAuthJSON(r *edge.Request, value any) error {
	body, err := json.Marshal(value)
	if err != nil {
		return err
	}
	r.Ctx.Response.Header.Set("Cache-Control", "no-store")
	r.Raw(http.StatusOK, "application/json", body)
	return nil
}

// authenticateClient finds the client and checks its secret when it is
// confidential. It returns an OAuth error code and description on failure.
func (m *Module) authenticateClient(params oauthParams, grant string) (clientOptions, string, string) {
	client, ok := m.opts.Clients[params.ClientID]
	if params.ClientID == "" || !ok {
		return clientOptions{}, "invalid_client", "the client_id is missing or not registered"
	}
	if client.Type == "confidential" &&
		subtle.ConstantTimeCompare([]byte(params.ClientSecret), []byte(client.Secret)) != 1 {
		return clientOptions{}, "invalid_client", "the client secret is missing or wrong"
	}
	for _, allowed := range client.Grants {
		if allowed == grant {
			return client, "", ""
		}
	}
	return clientOptions{}, "unauthorized_client", "the client may not use the device authorization grant"
}

// deviceCode starts a device authorization request (RFC 8628 section 3.1).
func (m *Module) deviceCode(r *edge.Request) error {
	params, err := readOAuthParams(r)
	if err != nil {
		return writeOAuthError(r, http.StatusBadRequest, "invalid_request", err.Error())
	}
	if _, code, description := m.authenticateClient(params, grantDeviceCode); code != "" {
		return writeOAuthError(r, statusOfOAuthError(code), code, description)
	}
	if len(params.Scope) > maxScopeLength {
		return writeOAuthError(r, http.StatusBadRequest, "invalid_scope", fmt.Sprintf("the scope is longer than %d characters", maxScopeLength))
	}

	ctx := r.Context()
	now := m.now()
	if err := m.store.purgeDeviceRequests(ctx, now); err != nil {
		r.Logger().Warn("purge of expired device requests failed", slog.String("error", err.Error()))
	}
	deviceCode, deviceCodeHash, err := randomToken(32)
	if err != nil {
		return err
	}
	req := deviceRequest{
		DeviceCodeHash: deviceCodeHash, ClientID: params.ClientID, Scope: params.Scope,
		Interval: m.opts.Device.Interval, CreatedAt: now, ExpiresAt: now.Add(m.opts.Device.CodeTTL),
	}
	// A user code that collides with a live one is drawn again; with 2.6e10
	// codes, a second collision in a row is practically impossible.
	for attempt := 0; ; attempt++ {
		req.UserCode, err = newUserCode()
		if err != nil {
			return err
		}
		err = m.store.insertDeviceRequest(ctx, req)
		if err == nil || !storage.IsUniqueViolation(err) || attempt == 2 {
			break
		}
	}
	if err != nil {
		return err
	}

	displayCode := formatUserCode(req.UserCode)
	verification := strings.TrimRight(m.opts.PublicURL, "/") + "/v1/auth/device"
	r.Logger().Info("device authorization started", slog.String("client_id", params.ClientID))
	return writeOAuthJSON(r, deviceAuthorization{
		DeviceCode: deviceCode, UserCode: displayCode,
		VerificationURI: verification, VerificationURIComplete: verification + "?user_code=" + displayCode,
		ExpiresIn: int64(m.opts.Device.CodeTTL / time.Second), Interval: int64(req.Interval / time.Second),
	})
}

// deviceToken handles a device's poll (RFC 8628 section 3.4 and 3.5).
func (m *Module) deviceToken(r *edge.Request) error {
	params, err := readOAuthParams(r)
	if err != nil {
		return writeOAuthError(r, http.StatusBadRequest, "invalid_request", err.Error())
	}
	if params.GrantType != deviceGrantType {
		return writeOAuthError(r, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be "+deviceGrantType)
	}
	if params.DeviceCode == "" {
		return writeOAuthError(r, http.StatusBadRequest, "invalid_request", "device_code is missing")
	}
	client, code, description := m.authenticateClient(params, grantDeviceCode)
	if code != "" {
		return writeOAuthError(r, statusOfOAuthError(code), code, description)
	}

	ctx := r.Context()
	now := m.now()
	hash := hashToken(params.DeviceCode)
	req, err := m.store.deviceRequestByCode(ctx, hash)
	if errors.Is(err, errNotFound) || err == nil && req.ClientID != params.ClientID {
		return writeOAuthError(r, http.StatusBadRequest, "invalid_grant", "the device code is unknown")
	}
	if err != nil {
		return err
	}
	if req.Status == deviceStatusConsumed {
		return writeOAuthError(r, http.StatusBadRequest, "invalid_grant", "the device code was already used")
	}
	if !now.Before(req.ExpiresAt) {
		return writeOAuthError(r, http.StatusBadRequest, "expired_token", "the device code expired; start again")
	}
	slowDown, err := m.store.recordDevicePoll(ctx, hash, now, pollJitter, slowDownStep)
	if err != nil {
		return err
	}
	if slowDown {
		return writeOAuthError(r, http.StatusBadRequest, "slow_down",
			fmt.Sprintf("polling too fast; wait at least %d seconds between polls", int64((req.Interval+slowDownStep)/time.Second)))
	}

	switch req.Status {
	case deviceStatusPending:
		return writeOAuthError(r, http.StatusBadRequest, "authorization_pending", "the user has not approved the request yet")
	case deviceStatusDenied:
		return writeOAuthError(r, http.StatusBadRequest, "access_denied", "the user denied the request")
	}

	consumed, err := m.store.consumeDeviceRequest(ctx, hash, now)
	if err != nil {
		return err
	}
	if !consumed {
		return writeOAuthError(r, http.StatusBadRequest, "invalid_grant", "the device code was already used")
	}
	u, err := m.store.userByID(ctx, req.UserID)
	if errors.Is(err, errNotFound) || err == nil && u.LockedUntil != nil && now.Before(*u.LockedUntil) {
		return writeOAuthError(r, http.StatusBadRequest, "access_denied", "the account that approved the request is locked or deleted")
	}
	if err != nil {
		return err
	}
	pair, err := m.startSession(ctx, r, u, client.Name)
	if err != nil {
		return err
	}
	r.Logger().Info("signed in with a device code", slog.String("user_id", u.ID),
		slog.String("session_id", pair.SessionID), slog.String("client_id", req.ClientID))
	return writeOAuthJSON(r, deviceTokenResponse{
		AccessToken: pair.AccessToken, TokenType: pair.TokenType, ExpiresIn: pair.ExpiresIn,
		RefreshToken: pair.RefreshToken, Scope: req.Scope,
	})
}

func statusOfOAuthError(code string) int {
	if code == "invalid_client" {
		return http.StatusUnauthorized
	}
	return http.StatusBadRequest
}

// newUserCode draws userCodeLength letters of userCodeAlphabet uniformly.
func newUserCode() (string, error) {
	code := make([]byte, userCodeLength)
	random := make([]byte, 1)
	for i := 0; i < len(code); {
		if _, err := rand.Read(random); err != nil {
			return "", fmt.Errorf("draw user code: %w", err)
		}
		// 240 is the largest multiple of 20 below 256, so every letter is
		// equally likely.
		if random[0] >= 240 {
			continue
		}
		code[i] = userCodeAlphabet[int(random[0])%len(userCodeAlphabet)]
		i++
	}
	return string(code), nil
}

// normalizeUserCode upper-cases input and drops dashes and spaces. It
// reports false unless the rest is userCodeLength letters of the alphabet.
func normalizeUserCode(input string) (string, bool) {
	var code strings.Builder
	for _, c := range strings.ToUpper(input) {
		switch {
		case c == '-' || c == ' ':
			continue
		case strings.ContainsRune(userCodeAlphabet, c):
			code.WriteRune(c)
		default:
			return "", false
		}
	}
	if code.Len() != userCodeLength {
		return "", false
	}
	return code.String(), true
}

// formatUserCode shows a normalised code as XXXX-XXXX.
func formatUserCode(code string) string {
	return code[:userCodeLength/2] + "-" + code[userCodeLength/2:]
}
