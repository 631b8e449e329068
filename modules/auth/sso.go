package auth

import (
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/nexus-suite/nexus/edge"
)

// Enterprise SSO: one connection per email domain, OIDC or SAML 2.0.
// Sign-in follows the same app flow as social login (start with the app's
// PKCE challenge, a one-time code to the app's redirect URI, the exchange
// at POST /v1/auth/oauth/exchange). Accounts of the domain are created
// just in time, and the identity provider is trusted for the addresses of
// its own domain only.

const (
	samlAssertionPrefix = "auth:saml-assertion:"
	// samlMinReplayWindow is the shortest time a used assertion id is
	// remembered. An assertion valid for longer is remembered until it
	// expires, plus crewjam/saml's allowed clock skew.
	samlMinReplayWindow = 10 * time.Minute
	// samlMailOID is the attribute name of the mail attribute (RFC 4524)
	// in the URI form that many identity providers send.
	samlMailOID = "urn:oid:0.9.2342.19200300.100.1.3"
)

// ssoDiscovery is the response of GET /v1/auth/sso/discover.
type ssoDiscovery struct {
	ConnectionID string `json:"connection_id"`
	Name         string `json:"name"`
	Kind         string `json:"kind"`
	RequireSSO   bool   `json:"require_sso"`
	StartURL     string `json:"start_url"`
}

// ssoDiscover serves GET /v1/auth/sso/discover?email=.
func (m *Module) ssoDiscover(r *edge.Request) error {
	email, err := normalizeEmail(string(r.Ctx.QueryArgs().Peek("email")))
	if err != nil {
		return invalidEmail()
	}
	connection, err := m.connectionForEmail(r, email)
	if errors.Is(err, errNotFound) {
		return edge.NotFound("no SSO connection serves this email domain")
	}
	if err != nil {
		return err
	}
	return r.JSON(http.StatusOK, ssoDiscovery{
		ConnectionID: connection.ID, Name: connection.Name, Kind: connection.Kind, RequireSSO: connection.RequireSSO,
		StartURL: m.callbackURL("/v1/auth/sso/" + connection.ID + "/start"),
	})
}

func (m *Module) connectionForEmail(r *edge.Request, email string) (ssoConnection, error) {
	domain := email[strings.LastIndexByte(email, '@')+1:]
	return m.store.ssoConnection(r.Context(), m.masterKey, `WHERE domain = $1`, domain)
}

// requireSSOError returns 403 when the email's domain signs in through SSO
// only, and nil otherwise.
func (m *Module) requireSSOError(r *edge.Request, email string) error {
	connection, err := m.connectionForEmail(r, email)
	if errors.Is(err, errNotFound) || err == nil && !connection.RequireSSO {
		return nil
	}
	if err != nil {
		return err
	}
	forbidden := edge.Forbidden("this email domain signs in through single sign-on only")
	forbidden.Details = map[string]any{"sso_required": map[string]any{
		"connection_id": connection.ID, "name": connection.Name,
		"start_url": m.callbackURL("/v1/auth/sso/" + connection.ID + "/start"),
	}}
	return forbidden
}

func (m *Module) loadConnection(r *edge.Request) (ssoConnection, error) {
	connection, err := m.store.ssoConnection(r.Context(), m.masterKey, `WHERE id = $1`, r.Param("connection"))
	if errors.Is(err, errNotFound) {
		return ssoConnection{}, edge.NotFound("no SSO connection with this id")
	}
	return connection, err
}

// oidcConnection returns the cached OIDC provider of a connection, built
// again when the connection changed.
func (m *Module) oidcConnection(c ssoConnection) *oidcProvider {
	type cached struct {
		updatedAt time.Time
		provider  *oidcProvider
	}
	if value, ok := m.ssoProviders.Load(c.ID); ok && value.(cached).updatedAt.Equal(c.UpdatedAt) {
		return value.(cached).provider
	}
	provider := newOIDCProvider(c.identityProvider(), c.OIDCIssuer, c.OIDCClientID, c.OIDCSecret, nil, m.providerClient, m.host.Clock)
	m.ssoProviders.Store(c.ID, cached{updatedAt: c.UpdatedAt, provider: provider})
	return provider
}

// serviceProvider builds the SAML service provider of a connection. Its
// entity id is the connection's metadata URL, and it signs no requests.
// It is built for each request, with a clock fixed at the request's time
// on the module's clock, so assertion times are checked against that time.
func (m *Module) serviceProvider(c ssoConnection) (*saml.ServiceProvider, error) {
	descriptor, err := samlsp.ParseMetadata([]byte(c.SAMLMetadata))
	if err != nil {
		return nil, fmt.Errorf("parse IdP metadata of SSO connection %s: %w", c.ID, err)
	}
	acs, err := url.Parse(m.callbackURL("/v1/auth/sso/" + c.ID + "/callback"))
	if err != nil {
		return nil, err
	}
	metadata, err := url.Parse(m.callbackURL("/v1/auth/sso/" + c.ID + "/metadata"))
	if err != nil {
		return nil, err
	}
	return &saml.ServiceProvider{
		EntityID: metadata.String(), MetadataURL: *metadata, AcsURL: *acs,
		IDPMetadata: descriptor, AuthnNameIDFormat: saml.EmailAddressNameIDFormat,
		Clock: dsig.NewFakeClockAt(m.now()),
	}, nil
}

// ssoStart serves GET /v1/auth/sso/{connection}/start.
func (m *Module) ssoStart(r *edge.Request) error {
	connection, err := m.loadConnection(r)
	if err != nil {
		return err
	}
	app, err := m.readAppRequest(r)
	if err != nil {
		return err
	}

	var target string
	switch connection.Kind {
	case ssoKindOIDC:
		state, challenge, nonce, err := m.startFlow(r.Context(), connection.identityProvider(), app, "")
		if err != nil {
			return err
		}
		target, err = m.oidcConnection(connection).authCodeURL(r.Context(), state, challenge, nonce,
			m.callbackURL("/v1/auth/sso/"+connection.ID+"/callback"))
		if err != nil {
			r.Logger().Error("SSO identity provider unavailable", slog.String("connection_id", connection.ID), slog.String("error", err.Error()))
			return edge.NewError("INTERNAL_ERROR", "the identity provider is unavailable; try again later", nil)
		}
	case ssoKindSAML:
		target, err = m.samlStart(r, connection, app)
		if err != nil {
			return err
		}
	}
	r.Ctx.Response.Header.Set("Location", target)
	r.Ctx.Response.Header.Set("Cache-Control", "no-store")
	r.Raw(http.StatusFound, "text/plain; charset=utf-8", nil)
	return nil
}

func (m *Module) samlStart(r *edge.Request, connection ssoConnection, app appRequest) (string, error) {
	sp, err := m.serviceProvider(connection)
	if err != nil {
		return "", err
	}
	ssoURL, err := idpSSOURL([]byte(connection.SAMLMetadata))
	if err != nil {
		return "", fmt.Errorf("SSO connection %s: %w", connection.ID, err)
	}
	request, err := sp.MakeAuthenticationRequest(ssoURL, saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		return "", fmt.Errorf("make SAML request of SSO connection %s: %w", connection.ID, err)
	}
	state, _, _, err := m.startFlow(r.Context(), connection.identityProvider(), app, request.ID)
	if err != nil {
		return "", err
	}
	target, err := request.Redirect(state, sp)
	if err != nil {
		return "", fmt.Errorf("encode SAML request of SSO connection %s: %w", connection.ID, err)
	}
	return target.String(), nil
}

// ssoCallback serves the identity provider's return: GET with code and
// state for OIDC, and POST with SAMLResponse and RelayState (the SAML
// assertion consumer service).
func (m *Module) ssoCallback(r *edge.Request) error {
	connection, err := m.loadConnection(r)
	if err != nil {
		return err
	}

	var identity externalIdentity
	var flow signInFlow
	switch connection.Kind {
	case ssoKindOIDC:
		query := r.Ctx.QueryArgs()
		flow, err = m.takeFlow(r.Context(), string(query.Peek("state")), connection.identityProvider())
		if err != nil {
			return err
		}
		if providerError := string(query.Peek("error")); providerError != "" {
			return redirectToApp(r, flow, url.Values{"error": {"access_denied"}, "error_description": {"the identity provider reported " + providerError}})
		}
		identity, err = m.oidcConnection(connection).identify(r.Context(), string(query.Peek("code")), flow.Verifier, flow.Nonce,
			m.callbackURL("/v1/auth/sso/"+connection.ID+"/callback"))
	case ssoKindSAML:
		if string(r.Ctx.Method()) != http.MethodPost {
			return edge.Validation("SAMLResponse", "a SAML response arrives by HTTP POST")
		}
		form := r.Ctx.PostArgs()
		flow, err = m.takeFlow(r.Context(), string(form.Peek("RelayState")), connection.identityProvider())
		if err != nil {
			return err
		}
		identity, err = m.samlIdentity(r, connection, flow, string(form.Peek("SAMLResponse")))
	}
	if err != nil {
		r.Logger().Warn("SSO sign-in rejected", slog.String("connection_id", connection.ID), slog.String("error", err.Error()))
		return redirectToApp(r, flow, url.Values{"error": {"access_denied"}, "error_description": {"the identity provider's response was rejected"}})
	}

	// The identity provider is trusted for addresses of its own domain only.
	email, err := normalizeEmail(identity.Email)
	if err != nil || !strings.HasSuffix(email, "@"+connection.Domain) {
		r.Logger().Warn("SSO identity outside the connection's domain", slog.String("connection_id", connection.ID))
		return redirectToApp(r, flow, url.Values{"error": {"access_denied"},
			"error_description": {"the identity provider returned an address outside " + connection.Domain}})
	}
	identity.Email, identity.EmailVerified = email, true
	return m.finishFlow(r, flow, identity)
}

// samlIdentity verifies a SAML response with crewjam/saml: the signature
// (of the Response or the Assertion, one of them required) against the
// IdP's certificate, the destination, audience, validity window and
// InResponseTo, which must be the request of this flow. An assertion id
// seen before is rejected, also across nodes, through the key-value store.
func (m *Module) samlIdentity(r *edge.Request, connection ssoConnection, flow signInFlow, encoded string) (externalIdentity, error) {
	sp, err := m.serviceProvider(connection)
	if err != nil {
		return externalIdentity{}, err
	}
	raw, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return externalIdentity{}, errors.New("SAMLResponse is not base64")
	}
	assertion, err := sp.ParseXMLResponse(raw, []string{flow.RequestID}, sp.AcsURL)
	if err != nil {
		var invalid *saml.InvalidResponseError
		if errors.As(err, &invalid) {
			return externalIdentity{}, fmt.Errorf("invalid SAML response: %v", invalid.PrivateErr)
		}
		return externalIdentity{}, fmt.Errorf("invalid SAML response: %w", err)
	}
	replayWindow := samlMinReplayWindow
	if assertion.Conditions != nil {
		if untilExpiry := assertion.Conditions.NotOnOrAfter.Sub(m.now()) + saml.MaxClockSkew; untilExpiry > replayWindow {
			replayWindow = untilExpiry
		}
	}
	first, err := m.host.KV.SetNX(r.Context(), samlAssertionPrefix+connection.ID+":"+assertion.ID, []byte("1"), replayWindow)
	if err != nil {
		return externalIdentity{}, fmt.Errorf("record SAML assertion: %w", err)
	}
	if !first {
		return externalIdentity{}, errors.New("the SAML assertion was used before")
	}

	identity := externalIdentity{Provider: connection.identityProvider()}
	if assertion.Subject != nil && assertion.Subject.NameID != nil {
		identity.Subject = assertion.Subject.NameID.Value
		if strings.Contains(identity.Subject, "@") {
			identity.Email = identity.Subject
		}
	}
	for _, statement := range assertion.AttributeStatements {
		for _, attribute := range statement.Attributes {
			name := strings.ToLower(attribute.Name)
			if (name == "email" || name == "mail" || name == samlMailOID) && len(attribute.Values) > 0 {
				identity.Email = attribute.Values[0].Value
			}
			if (name == "displayname" || name == "name") && len(attribute.Values) > 0 {
				identity.Name = attribute.Values[0].Value
			}
		}
	}
	if identity.Subject == "" {
		return externalIdentity{}, errors.New("the SAML assertion has no NameID")
	}
	return identity, nil
}

// ssoMetadata serves GET /v1/auth/sso/{connection}/metadata: the service
// provider metadata to register at a SAML identity provider.
func (m *Module) ssoMetadata(r *edge.Request) error {
	connection, err := m.loadConnection(r)
	if err != nil {
		return err
	}
	if connection.Kind != ssoKindSAML {
		return edge.NotFound("this SSO connection uses OIDC and has no SAML metadata")
	}
	sp, err := m.serviceProvider(connection)
	if err != nil {
		return err
	}
	body, err := xml.MarshalIndent(sp.Metadata(), "", "  ")
	if err != nil {
		return fmt.Errorf("encode SAML metadata: %w", err)
	}
	r.Raw(http.StatusOK, "application/samlmetadata+xml", body)
	return nil
}
