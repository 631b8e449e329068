package app_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/xml"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	"github.com/oauth2-proxy/mockoidc"
)

// ssoDomain is the email domain of the test connections.
const ssoDomain = "corp.example.com"

type ssoConnection struct {
	ID          string `json:"id"`
	MetadataURL string `json:"metadata_url"`
	StartURL    string `json:"start_url"`
}

// createConnection creates an SSO connection as an operator.
func (s *authServer) createConnection(t *testing.T, body map[string]any) ssoConnection {
	t.Helper()
	operator := s.operator(t)
	res := s.as(t, operator, "POST", "/v1/admin/sso/connections", jsonBody(t, body))
	if res.status != http.StatusCreated {
		t.Fatalf("create connection = %d %s", res.status, res.body)
	}
	var connection ssoConnection
	res.data(t, &connection)
	return connection
}

// beginSSO starts a sign-in through a connection and returns the app's
// flow and where the browser goes next.
func (s *authServer) beginSSO(t *testing.T, connectionID string) (appFlow, *url.URL) {
	t.Helper()
	verifier, challenge := pkcePair(t)
	state := "app-" + randomID(t)
	query := url.Values{
		"client_id": {appClientID}, "redirect_uri": {appRedirectURI},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "state": {state},
	}
	res := s.do(t, "GET", "/v1/auth/sso/"+connectionID+"/start?"+query.Encode(), "")
	if res.status != http.StatusFound {
		t.Fatalf("SSO start = %d %s", res.status, res.body)
	}
	next, err := url.Parse(res.header.Get("Location"))
	if err != nil {
		t.Fatalf("parse identity provider URL: %v", err)
	}
	return appFlow{verifier: verifier, state: state}, next
}

func TestSSOWithOIDCCreatesAccountJustInTime(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		provider := startOIDCProvider(t)
		s := startAuthServer(t, e, addApp("unused", oidcOptions(provider)))
		connection := s.createConnection(t, map[string]any{
			"domain": ssoDomain, "kind": "oidc", "name": "Corp",
			"oidc": map[string]any{"issuer": provider.Issuer(), "client_id": provider.ClientID, "client_secret": provider.ClientSecret},
		})

		discover := s.do(t, "GET", "/v1/auth/sso/discover?email="+url.QueryEscape("ada@"+ssoDomain), "")
		if discover.status != http.StatusOK || !strings.Contains(discover.String(), connection.ID) {
			t.Errorf("discover = %d %s", discover.status, discover.body)
		}
		if res := s.do(t, "GET", "/v1/auth/sso/discover?email=ada%40elsewhere.example", ""); res.status != http.StatusNotFound {
			t.Errorf("discover another domain = %d, want 404", res.status)
		}

		email := "ada-" + randomID(t) + "@" + ssoDomain
		provider.QueueUser(&mockoidc.MockUser{Subject: "corp-" + randomID(t), Email: email})
		flow, next := s.beginSSO(t, connection.ID)
		res, err := testClient.Get(next.String())
		if err != nil {
			t.Fatalf("visit the identity provider: %v", err)
		}
		res.Body.Close()
		back, err := url.Parse(res.Header.Get("Location"))
		if err != nil {
			t.Fatalf("parse callback: %v", err)
		}
		flow.callback = back.RequestURI()
		params := s.finish(t, flow)
		exchange := s.exchange(t, params.Get("code"), flow.verifier)
		if exchange.status != http.StatusOK {
			t.Fatalf("exchange = %d %s", exchange.status, exchange.body)
		}
		var pair tokens
		exchange.data(t, &pair)
		p := s.profile(t, pair.AccessToken)
		if p.Email != email || !p.EmailVerified || len(p.Identities) != 1 || p.Identities[0].Provider != "sso:"+connection.ID {
			t.Errorf("just-in-time account = %+v", p)
		}
	})
}

func TestSSORequiredDomainRefusesPassword(t *testing.T) {
	provider := startOIDCProvider(t)
	s := startAuthServer(t, engineSQLite)
	email := s.registerVerified(t)
	domain := email[strings.LastIndexByte(email, '@')+1:]
	connection := s.createConnection(t, map[string]any{
		"domain": domain, "kind": "oidc", "name": "Example",
		"oidc": map[string]any{"issuer": provider.Issuer(), "client_id": provider.ClientID, "client_secret": provider.ClientSecret},
	})
	s.login(t, email, goodPassword) // not required yet

	operator := s.operator(t)
	if res := s.as(t, operator, "PATCH", "/v1/admin/sso/connections/"+connection.ID, `{"require_sso": true}`); res.status != http.StatusOK {
		t.Fatalf("require SSO = %d %s", res.status, res.body)
	}
	res := s.postJSON(t, "/v1/auth/login", jsonBody(t, map[string]string{"email": email, "password": goodPassword}), "")
	if res.status != http.StatusForbidden {
		t.Fatalf("password login on an SSO-only domain = %d %s, want 403", res.status, res.body)
	}
	apiErr := res.envelopeError(t)
	required, _ := apiErr.Details["sso_required"].(map[string]any)
	if apiErr.Code != "FORBIDDEN" || required["connection_id"] != connection.ID {
		t.Errorf("error = %+v, want FORBIDDEN with details.sso_required naming %s", apiErr, connection.ID)
	}
}

func TestSSOConnectionAdminChecks(t *testing.T) {
	s := startAuthServer(t, engineSQLite)
	member := s.member(t)
	if res := s.as(t, member, "GET", "/v1/admin/sso/connections", ""); res.status != http.StatusForbidden {
		t.Errorf("list as a member = %d, want 403", res.status)
	}
	operator := s.operator(t)
	cases := []struct {
		name      string
		body      map[string]any
		wantField string
	}{
		{"bad domain", map[string]any{"domain": "not a domain", "kind": "oidc", "name": "x"}, "domain"},
		{"unknown kind", map[string]any{"domain": "a.example", "kind": "ldap", "name": "x"}, "kind"},
		{"oidc without issuer", map[string]any{"domain": "a.example", "kind": "oidc", "name": "x", "oidc": map[string]any{"issuer": "nope", "client_id": "a", "client_secret": "b"}}, "oidc.issuer"},
		{"saml with junk metadata", map[string]any{"domain": "a.example", "kind": "saml", "name": "x", "saml": map[string]any{"idp_metadata_xml": "<html/>"}}, "saml.idp_metadata_xml"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := s.as(t, operator, "POST", "/v1/admin/sso/connections", jsonBody(t, tc.body))
			if res.status != http.StatusBadRequest || res.envelopeError(t).Details["field"] != tc.wantField {
				t.Errorf("create = %d %s, want 400 on %s", res.status, res.body, tc.wantField)
			}
		})
	}
}

// testIdP is a SAML identity provider built from crewjam/saml, which signs
// responses for the server's service provider.
type testIdP struct {
	idp      *saml.IdentityProvider
	metadata string
}

type spMetadataSource struct {
	s  *authServer
	t  *testing.T
	id string
}

func (p spMetadataSource) GetServiceProvider(*http.Request, string) (*saml.EntityDescriptor, error) {
	res := p.s.do(p.t, "GET", "/v1/auth/sso/"+p.id+"/metadata", "")
	return samlsp.ParseMetadata(res.body)
}

func newTestIdP(t *testing.T) *testIdP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("generate IdP key: %v", err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-idp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create IdP certificate: %v", err)
	}
	certificate, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse IdP certificate: %v", err)
	}
	metadataURL, _ := url.Parse("http://idp.test/metadata")
	ssoURL, _ := url.Parse("http://idp.test/sso")
	idp := &saml.IdentityProvider{Key: key, Certificate: certificate, MetadataURL: *metadataURL, SSOURL: *ssoURL}
	metadata, err := xml.Marshal(idp.Metadata())
	if err != nil {
		t.Fatalf("encode IdP metadata: %v", err)
	}
	return &testIdP{idp: idp, metadata: string(metadata)}
}

// respond builds the IdP's response to the AuthnRequest in the redirect
// URL, for the user with email. change may alter the assertion before it
// is signed; tamper may alter the signed response document.
func (p *testIdP) respond(t *testing.T, s *authServer, connectionID string, request *url.URL, email string,
	change func(*saml.Assertion), tamper func(*etree.Element)) (samlResponse, relayState string) {
	t.Helper()
	p.idp.ServiceProviderProvider = spMetadataSource{s: s, t: t, id: connectionID}
	httpRequest, err := http.NewRequest("GET", request.String(), nil)
	if err != nil {
		t.Fatalf("build IdP request: %v", err)
	}
	authn, err := saml.NewIdpAuthnRequest(p.idp, httpRequest)
	if err != nil {
		t.Fatalf("read AuthnRequest: %v", err)
	}
	if err := authn.Validate(); err != nil {
		t.Fatalf("validate AuthnRequest: %v", err)
	}
	session := &saml.Session{ID: "session-" + randomID(t), NameID: email, NameIDFormat: string(saml.EmailAddressNameIDFormat), UserEmail: email}
	if err := (saml.DefaultAssertionMaker{}).MakeAssertion(authn, session); err != nil {
		t.Fatalf("make assertion: %v", err)
	}
	if change != nil {
		change(authn.Assertion)
	}
	if err := authn.MakeResponse(); err != nil {
		t.Fatalf("make response: %v", err)
	}
	if tamper != nil {
		tamper(authn.ResponseEl)
	}
	doc := etree.NewDocument()
	doc.SetRoot(authn.ResponseEl)
	raw, err := doc.WriteToBytes()
	if err != nil {
		t.Fatalf("encode response: %v", err)
	}
	return base64.StdEncoding.EncodeToString(raw), authn.RelayState
}

// postResponse posts a SAML response to the connection's ACS and returns
// the server's response.
func (s *authServer) postResponse(t *testing.T, connectionID, samlResponse, relayState string) response {
	t.Helper()
	form := url.Values{"SAMLResponse": {samlResponse}, "RelayState": {relayState}}
	return s.do(t, "POST", "/v1/auth/sso/"+connectionID+"/callback", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
}

// appRedirect returns the query of the app redirect in res.
func appRedirect(t *testing.T, res response) url.Values {
	t.Helper()
	if res.status != http.StatusFound {
		t.Fatalf("ACS = %d %s, want a redirect to the app", res.status, res.body)
	}
	target, err := url.Parse(res.header.Get("Location"))
	if err != nil || !strings.HasPrefix(target.String(), appRedirectURI) {
		t.Fatalf("ACS redirected to %q, want the app", res.header.Get("Location"))
	}
	return target.Query()
}

func removeSignatures(root *etree.Element) {
	for _, signature := range root.FindElements("//Signature") {
		signature.Parent().RemoveChild(signature)
	}
}

func TestSSOWithSAML(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		idp := newTestIdP(t)
		s := startAuthServer(t, e, addApp("unused", map[string]any{"type": "github", "client_id": "x", "client_secret": "y"}))
		connection := s.createConnection(t, map[string]any{
			"domain": ssoDomain, "kind": "saml", "name": "Corp SAML",
			"saml": map[string]any{"idp_metadata_xml": idp.metadata},
		})
		email := "grace-" + randomID(t) + "@" + ssoDomain

		t.Run("signed assertion", func(t *testing.T) {
			flow, request := s.beginSSO(t, connection.ID)
			samlResponse, relayState := idp.respond(t, s, connection.ID, request, email, nil, nil)
			params := appRedirect(t, s.postResponse(t, connection.ID, samlResponse, relayState))
			if params.Get("state") != flow.state || params.Get("code") == "" {
				t.Fatalf("app redirect = %v, want a code and the app's state", params)
			}
			exchange := s.exchange(t, params.Get("code"), flow.verifier)
			if exchange.status != http.StatusOK {
				t.Fatalf("exchange = %d %s", exchange.status, exchange.body)
			}
			var pair tokens
			exchange.data(t, &pair)
			if p := s.profile(t, pair.AccessToken); p.Email != email || len(p.Identities) != 1 {
				t.Errorf("profile = %+v, want %s with the SSO identity", p, email)
			}

			// The same response again: its state is used up.
			if replay := s.postResponse(t, connection.ID, samlResponse, relayState); replay.status != http.StatusBadRequest {
				t.Errorf("replayed response = %d, want 400", replay.status)
			}
			// The same response under the state of a new sign-in.
			_, next := s.beginSSO(t, connection.ID)
			fresh := next.Query().Get("RelayState")
			if params := appRedirect(t, s.postResponse(t, connection.ID, samlResponse, fresh)); params.Get("error") != "access_denied" {
				t.Errorf("replayed assertion in a new flow: app got %v, want access_denied", params)
			}
		})

		// Each case names the part of the logged rejection that shows it
		// failed for its own reason.
		rejected := []struct {
			name       string
			change     func(*saml.Assertion)
			tamper     func(*etree.Element)
			wantReason string
		}{
			{name: "unsigned", tamper: removeSignatures, wantReason: "signature element not present"},
			{name: "tampered", tamper: func(root *etree.Element) {
				for _, nameID := range root.FindElements("//NameID") {
					nameID.SetText("mallory@" + ssoDomain)
				}
			}, wantReason: "Signature could not be verified"},
			{name: "wrong audience", change: func(a *saml.Assertion) {
				a.Conditions.AudienceRestrictions = []saml.AudienceRestriction{{Audience: saml.Audience{Value: "https://other.example/metadata"}}}
			}, wantReason: "AudienceRestriction"},
		}
		for _, tc := range rejected {
			t.Run(tc.name, func(t *testing.T) {
				_, request := s.beginSSO(t, connection.ID)
				samlResponse, relayState := idp.respond(t, s, connection.ID, request, "x-"+randomID(t)+"@"+ssoDomain, tc.change, tc.tamper)
				params := appRedirect(t, s.postResponse(t, connection.ID, samlResponse, relayState))
				if params.Get("error") != "access_denied" || params.Get("code") != "" {
					t.Errorf("app redirect = %v, want error=access_denied and no code", params)
				}
				if logged := lastLine(s.logs.String(), "SSO sign-in rejected"); !strings.Contains(logged, tc.wantReason) {
					t.Errorf("rejection logged as %s, want the reason %q", logged, tc.wantReason)
				}
			})
		}

		// Runs last, because it moves the server's clock.
		defer t.Run("expired on the server's clock", func(t *testing.T) {
			_, request := s.beginSSO(t, connection.ID)
			samlResponse, relayState := idp.respond(t, s, connection.ID, request, "late-"+randomID(t)+"@"+ssoDomain, nil, nil)
			// Within the sign-in's 10 minutes, but far past the response's
			// issue time and crewjam/saml's allowed issue delay and skew.
			s.clock.Advance(9 * time.Minute)
			params := appRedirect(t, s.postResponse(t, connection.ID, samlResponse, relayState))
			if params.Get("error") != "access_denied" {
				t.Errorf("app redirect = %v, want access_denied", params)
			}
			if logged := lastLine(s.logs.String(), "SSO sign-in rejected"); !strings.Contains(logged, "expired") {
				t.Errorf("rejection logged as %s, want an expired response", logged)
			}
		})

		t.Run("address outside the domain", func(t *testing.T) {
			_, request := s.beginSSO(t, connection.ID)
			samlResponse, relayState := idp.respond(t, s, connection.ID, request, "eve@elsewhere.example", nil, nil)
			if params := appRedirect(t, s.postResponse(t, connection.ID, samlResponse, relayState)); params.Get("error") != "access_denied" {
				t.Errorf("app redirect = %v, want access_denied", params)
			}
		})
	})
}

// lastLine returns the last line of logs that contains the text.
func lastLine(logs, containing string) string {
	lines := strings.Split(logs, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], containing) {
			return lines[i]
		}
	}
	return ""
}
