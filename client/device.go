package client

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/oauth2"
)

// DeviceClientID is the server's public OAuth client of the nexus command.
const DeviceClientID = "nexus-cli"

// DeviceLogin is a started device sign-in: show VerificationURI and
// UserCode to the user, then call Wait.
type DeviceLogin struct {
	UserCode                string
	VerificationURI         string
	VerificationURIComplete string
	ExpiresAt               time.Time

	client   *Client
	config   *oauth2.Config
	response *oauth2.DeviceAuthResponse
}

func (c *Client) deviceConfig(clientID string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: clientID,
		Endpoint: oauth2.Endpoint{
			DeviceAuthURL: c.opts.BaseURL + "/v1/auth/device/code",
			TokenURL:      c.opts.BaseURL + "/v1/auth/device/token",
			AuthStyle:     oauth2.AuthStyleInParams,
		},
	}
}

// StartDeviceLogin starts the device authorization grant (RFC 8628) for
// the OAuth client clientID, usually DeviceClientID.
func (c *Client) StartDeviceLogin(ctx context.Context, clientID string) (*DeviceLogin, error) {
	config := c.deviceConfig(clientID)
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.opts.HTTPClient)
	response, err := config.DeviceAuth(ctx)
	if err != nil {
		return nil, fmt.Errorf("start device sign-in: %w", err)
	}
	return &DeviceLogin{
		UserCode: response.UserCode, VerificationURI: response.VerificationURI,
		VerificationURIComplete: response.VerificationURIComplete, ExpiresAt: response.Expiry,
		client: c, config: config, response: response,
	}, nil
}

// Wait polls until the user approves or denies, or the code expires, and
// keeps the new tokens on approval. It slows down on slow_down, as RFC 8628
// requires.
func (d *DeviceLogin) Wait(ctx context.Context) (Tokens, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, d.client.opts.HTTPClient)
	token, err := d.config.DeviceAccessToken(ctx, d.response)
	if err != nil {
		return Tokens{}, fmt.Errorf("device sign-in: %w", err)
	}
	tokens := Tokens{AccessToken: token.AccessToken, RefreshToken: token.RefreshToken, ExpiresAt: token.Expiry}
	d.client.SetTokens(tokens)
	return tokens, nil
}
