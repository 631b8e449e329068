package client

import (
	"net/url"

	"golang.org/x/oauth2"
)

// BrowserSignIn is the start of a browser sign-in through a social
// provider or an SSO connection: open URL in the user's browser, receive
// the one-time code on the redirect URI, then call ExchangeCode with
// Verifier.
type BrowserSignIn struct {
	URL string
	// Verifier is the PKCE code verifier (RFC 7636); keep it secret until
	// the exchange.
	Verifier string
}

// OAuthStart returns the sign-in URL of a social provider (such as github
// or google) for the app clientID, with a fresh PKCE verifier.
func (c *Client) OAuthStart(provider, clientID, redirectURI, state string) BrowserSignIn {
	return c.browserSignIn("/v1/auth/oauth/"+url.PathEscape(provider)+"/start", clientID, redirectURI, state)
}

// SSOStart returns the sign-in URL of an enterprise SSO connection (see
// DiscoverSSO) for the app clientID, with a fresh PKCE verifier.
func (c *Client) SSOStart(connectionID, clientID, redirectURI, state string) BrowserSignIn {
	return c.browserSignIn("/v1/auth/sso/"+url.PathEscape(connectionID)+"/start", clientID, redirectURI, state)
}

func (c *Client) browserSignIn(path, clientID, redirectURI, state string) BrowserSignIn {
	verifier := oauth2.GenerateVerifier()
	query := url.Values{
		"client_id":             {clientID},
		"redirect_uri":          {redirectURI},
		"code_challenge":        {oauth2.S256ChallengeFromVerifier(verifier)},
		"code_challenge_method": {"S256"},
	}
	if state != "" {
		query.Set("state", state)
	}
	return BrowserSignIn{URL: c.opts.BaseURL + path + "?" + query.Encode(), Verifier: verifier}
}
