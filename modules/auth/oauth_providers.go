package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/nexus-suite/nexus/runtime/clock"
)

// providerTimeout bounds each call to a sign-in provider.
const providerTimeout = 10 * time.Second

// maxProviderResponseBytes bounds what is read from a provider's user API.
const maxProviderResponseBytes = 1 << 20

// identityProvider is a sign-in provider: social login or an OIDC SSO
// connection. The host keeps the state, nonce and PKCE verifier of a flow.
type identityProvider interface {
	// authCodeURL returns where the browser signs in at the provider.
	authCodeURL(ctx context.Context, state, challenge, nonce, redirectURI string) (string, error)
	// identify exchanges the provider's code and returns the user it signed in.
	identify(ctx context.Context, code, verifier, nonce, redirectURI string) (externalIdentity, error)
}

// providerContext carries the HTTP client of provider calls to x/oauth2
// and go-oidc.
func providerContext(ctx context.Context, client *http.Client) context.Context {
	return oidc.ClientContext(context.WithValue(ctx, oauth2.HTTPClient, client), client)
}

// oidcProvider is any OpenID Connect provider, found by discovery on first
// use and verified with go-oidc: the ID token's signature, issuer,
// audience, expiry and nonce.
type oidcProvider struct {
	id, issuer, clientID, clientSecret string
	scopes                             []string
	client                             *http.Client
	clock                              clock.Clock

	mu       sync.Mutex
	provider *oidc.Provider
}

func newOIDCProvider(id, issuer, clientID, clientSecret string, scopes []string, client *http.Client, c clock.Clock) *oidcProvider {
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	return &oidcProvider{id: id, issuer: issuer, clientID: clientID, clientSecret: clientSecret, scopes: scopes, client: client, clock: c}
}

// discover fetches the provider's metadata once. A failure is retried at
// the next sign-in, so a provider that is down at start does not stay broken.
func (p *oidcProvider) discover(ctx context.Context) (*oidc.Provider, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.provider != nil {
		return p.provider, nil
	}
	ctx, cancel := context.WithTimeout(providerContext(ctx, p.client), providerTimeout)
	defer cancel()
	provider, err := oidc.NewProvider(ctx, p.issuer)
	if err != nil {
		return nil, fmt.Errorf("discover OIDC provider %s at %s: %w", p.id, p.issuer, err)
	}
	p.provider = provider
	return provider, nil
}

func (p *oidcProvider) config(provider *oidc.Provider, redirectURI string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: p.clientID, ClientSecret: p.clientSecret, Endpoint: provider.Endpoint(),
		RedirectURL: redirectURI, Scopes: p.scopes,
	}
}

func (p *oidcProvider) authCodeURL(ctx context.Context, state, challenge, nonce, redirectURI string) (string, error) {
	provider, err := p.discover(ctx)
	if err != nil {
		return "", err
	}
	return p.config(provider, redirectURI).AuthCodeURL(state, oidc.Nonce(nonce),
		oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256")), nil
}

func (p *oidcProvider) identify(ctx context.Context, code, verifier, nonce, redirectURI string) (externalIdentity, error) {
	provider, err := p.discover(ctx)
	if err != nil {
		return externalIdentity{}, err
	}
	ctx, cancel := context.WithTimeout(providerContext(ctx, p.client), providerTimeout)
	defer cancel()

	token, err := p.config(provider, redirectURI).Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return externalIdentity{}, fmt.Errorf("exchange code at %s: %w", p.id, err)
	}
	rawIDToken, ok := token.Extra("id_token").(string)
	if !ok || rawIDToken == "" {
		return externalIdentity{}, fmt.Errorf("provider %s returned no id_token", p.id)
	}
	tokenVerifier := provider.Verifier(&oidc.Config{ClientID: p.clientID, Now: p.clock.Now})
	idToken, err := tokenVerifier.Verify(ctx, rawIDToken)
	if err != nil {
		return externalIdentity{}, fmt.Errorf("verify id_token of %s: %w", p.id, err)
	}
	if idToken.Nonce != nonce {
		return externalIdentity{}, fmt.Errorf("id_token of %s has the wrong nonce", p.id)
	}

	var claims struct {
		Email         string `json:"email"`
		EmailVerified any    `json:"email_verified"`
		Name          string `json:"name"`
	}
	if err := idToken.Claims(&claims); err != nil {
		return externalIdentity{}, fmt.Errorf("read id_token claims of %s: %w", p.id, err)
	}
	return externalIdentity{
		Provider: p.id, Subject: idToken.Subject, Email: claims.Email,
		EmailVerified: truthy(claims.EmailVerified), Name: claims.Name,
	}, nil
}

// truthy reads email_verified, which some providers send as the string "true".
func truthy(value any) bool {
	switch v := value.(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(v, "true")
	default:
		return false
	}
}

// githubProvider signs in with GitHub's OAuth 2.0 and reads the user and
// their email addresses from GitHub's REST API, since GitHub has no ID
// token. The endpoints are configurable for GitHub Enterprise Server.
type githubProvider struct {
	id     string
	config oauth2.Config
	apiURL string
	client *http.Client
}

func newGitHubProvider(id string, options providerOptions, client *http.Client) *githubProvider {
	authURL, tokenURL, apiURL := options.AuthURL, options.TokenURL, options.APIURL
	if authURL == "" {
		authURL = "https://github.com/login/oauth/authorize"
	}
	if tokenURL == "" {
		tokenURL = "https://github.com/login/oauth/access_token"
	}
	if apiURL == "" {
		apiURL = "https://api.github.com"
	}
	return &githubProvider{
		id: id, apiURL: strings.TrimRight(apiURL, "/"), client: client,
		config: oauth2.Config{
			ClientID: options.ClientID, ClientSecret: options.ClientSecret,
			Endpoint: oauth2.Endpoint{AuthURL: authURL, TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams},
			Scopes:   []string{"read:user", "user:email"},
		},
	}
}

func (p *githubProvider) authCodeURL(_ context.Context, state, challenge, _ string, redirectURI string) (string, error) {
	config := p.config
	config.RedirectURL = redirectURI
	return config.AuthCodeURL(state,
		oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256")), nil
}

func (p *githubProvider) identify(ctx context.Context, code, verifier, _ string, redirectURI string) (externalIdentity, error) {
	ctx, cancel := context.WithTimeout(providerContext(ctx, p.client), providerTimeout)
	defer cancel()
	config := p.config
	config.RedirectURL = redirectURI
	token, err := config.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return externalIdentity{}, fmt.Errorf("exchange code at %s: %w", p.id, err)
	}

	var account struct {
		ID    int64  `json:"id"`
		Login string `json:"login"`
		Name  string `json:"name"`
	}
	if err := p.get(ctx, token.AccessToken, "/user", &account); err != nil {
		return externalIdentity{}, err
	}
	if account.ID == 0 {
		return externalIdentity{}, fmt.Errorf("%s returned a user without an id", p.id)
	}
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := p.get(ctx, token.AccessToken, "/user/emails", &emails); err != nil {
		return externalIdentity{}, err
	}

	identity := externalIdentity{Provider: p.id, Subject: strconv.FormatInt(account.ID, 10), Name: account.Name}
	if identity.Name == "" {
		identity.Name = account.Login
	}
	// The primary address if GitHub verified it, else the first verified one.
	for _, candidate := range emails {
		if candidate.Verified && (candidate.Primary || !identity.EmailVerified) {
			identity.Email, identity.EmailVerified = candidate.Email, true
			if candidate.Primary {
				break
			}
		}
	}
	return identity, nil
}

func (p *githubProvider) get(ctx context.Context, accessToken, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.apiURL+path, nil)
	if err != nil {
		return fmt.Errorf("build %s request: %w", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/vnd.github+json")
	res, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("call %s%s: %w", p.id, path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxProviderResponseBytes))
	if err != nil {
		return fmt.Errorf("read %s%s: %w", p.id, path, err)
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s%s returned status %d", p.id, path, res.StatusCode)
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("decode %s%s: %w", p.id, path, err)
	}
	return nil
}
