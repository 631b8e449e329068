package app_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/nexus-suite/nexus/configs"
)

// The app of these tests: a desktop client whose loopback redirect URI
// matches any port.
const (
	appClientID    = "desktop-app"
	appRedirectURI = "http://127.0.0.1:53682/callback"
)

// addApp registers the test app client and the sign-in provider.
func addApp(provider string, options map[string]any) func(cfg *configs.Config) {
	return func(cfg *configs.Config) {
		cfg.Modules["auth"]["clients"] = map[string]any{
			appClientID: map[string]any{
				"name": "Desktop App", "type": "public",
				"redirect_uris": []any{"http://127.0.0.1/callback"}, "grants": []any{"authorization_code", "refresh_token"},
			},
		}
		cfg.Modules["auth"]["providers"] = map[string]any{provider: options}
	}
}

func startOIDCProvider(t *testing.T) *mockoidc.MockOIDC {
	t.Helper()
	provider, err := mockoidc.Run()
	if err != nil {
		t.Fatalf("start mockoidc: %v", err)
	}
	t.Cleanup(func() { _ = provider.Shutdown() })
	return provider
}

func oidcOptions(provider *mockoidc.MockOIDC) map[string]any {
	return map[string]any{
		"type": "oidc", "name": "Mock OIDC", "issuer": provider.Issuer(),
		"client_id": provider.ClientID, "client_secret": provider.ClientSecret,
	}
}

// pkcePair returns a random verifier and its S256 challenge.
func pkcePair(t *testing.T) (verifier, challenge string) {
	t.Helper()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatalf("random verifier: %v", err)
	}
	verifier = base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// appFlow is the app's side of one sign-in.
type appFlow struct {
	verifier string
	state    string
	// callback is the server's callback path with the provider's code,
	// reached after the browser went through the provider.
	callback string
}

// beginAppFlow starts a sign-in and follows the browser through the
// provider, up to the redirect back to the server's callback.
func (s *authServer) beginAppFlow(t *testing.T, provider string) appFlow {
	t.Helper()
	verifier, challenge := pkcePair(t)
	state := "app-" + randomID(t)
	query := url.Values{
		"client_id": {appClientID}, "redirect_uri": {appRedirectURI},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "state": {state},
	}
	start := s.do(t, "GET", "/v1/auth/oauth/"+provider+"/start?"+query.Encode(), "")
	if start.status != http.StatusFound {
		t.Fatalf("start = %d %s", start.status, start.body)
	}

	res, err := testClient.Get(start.header.Get("Location"))
	if err != nil {
		t.Fatalf("visit the provider: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound {
		t.Fatalf("provider answered %d, want a redirect back", res.StatusCode)
	}
	back, err := url.Parse(res.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(back.String(), s.url+"/v1/auth/oauth/"+provider+"/callback") {
		t.Fatalf("provider redirected to %q, want the server's callback", res.Header.Get("Location"))
	}
	return appFlow{verifier: verifier, state: state, callback: back.RequestURI()}
}

// finish calls the server's callback and returns the app's redirect.
func (s *authServer) finish(t *testing.T, flow appFlow) url.Values {
	t.Helper()
	res := s.do(t, "GET", flow.callback, "")
	if res.status != http.StatusFound {
		t.Fatalf("callback = %d %s", res.status, res.body)
	}
	target, err := url.Parse(res.header.Get("Location"))
	if err != nil {
		t.Fatalf("parse app redirect: %v", err)
	}
	if got := target.Scheme + "://" + target.Host + target.Path; got != appRedirectURI {
		t.Fatalf("redirected to %s, want the app's %s", got, appRedirectURI)
	}
	params := target.Query()
	if params.Get("state") != flow.state {
		t.Errorf("app state = %q, want %q", params.Get("state"), flow.state)
	}
	return params
}

func (s *authServer) exchange(t *testing.T, code, verifier string) response {
	t.Helper()
	return s.postJSON(t, "/v1/auth/oauth/exchange", jsonBody(t, map[string]string{
		"client_id": appClientID, "code": code, "code_verifier": verifier, "redirect_uri": appRedirectURI,
	}), "")
}

// signInThrough runs a whole sign-in and returns the access token.
func (s *authServer) signInThrough(t *testing.T, provider string) tokens {
	t.Helper()
	flow := s.beginAppFlow(t, provider)
	params := s.finish(t, flow)
	if params.Get("code") == "" {
		t.Fatalf("app redirect has no code: %v", params)
	}
	res := s.exchange(t, params.Get("code"), flow.verifier)
	if res.status != http.StatusOK {
		t.Fatalf("exchange = %d %s", res.status, res.body)
	}
	var pair tokens
	res.data(t, &pair)
	return pair
}

type profile struct {
	ID            string `json:"id"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	HasPassword   bool   `json:"has_password"`
	Identities    []struct {
		Provider string `json:"provider"`
		Email    string `json:"email"`
	} `json:"identities"`
}

func (s *authServer) profile(t *testing.T, accessToken string) profile {
	t.Helper()
	res := s.get(t, "/v1/auth/me", accessToken)
	if res.status != http.StatusOK {
		t.Fatalf("GET /me = %d %s", res.status, res.body)
	}
	var p profile
	res.data(t, &p)
	return p
}

func TestOIDCSignInCreatesThenReusesAccount(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		provider := startOIDCProvider(t)
		s := startAuthServer(t, e, addApp("mock", oidcOptions(provider)))
		email := "oidc-" + randomID(t) + "@example.com"
		user := &mockoidc.MockUser{Subject: "sub-" + randomID(t), Email: email, EmailVerified: true}

		provider.QueueUser(user)
		first := s.profile(t, s.signInThrough(t, "mock").AccessToken)
		if first.Email != email || !first.EmailVerified || first.HasPassword {
			t.Errorf("new account = %+v, want the verified email and no password", first)
		}
		if len(first.Identities) != 1 || first.Identities[0].Provider != "mock" {
			t.Errorf("identities = %+v, want one of mock", first.Identities)
		}

		provider.QueueUser(user)
		second := s.profile(t, s.signInThrough(t, "mock").AccessToken)
		if second.ID != first.ID {
			t.Errorf("second sign-in reached account %s, want %s", second.ID, first.ID)
		}

		// The account has no password: a password login fails like a wrong one.
		login := s.postJSON(t, "/v1/auth/login", jsonBody(t, map[string]string{"email": email, "password": goodPassword}), "")
		if login.status != http.StatusUnauthorized {
			t.Errorf("password login of a provider-made account = %d, want 401", login.status)
		}
	})
}

func TestOIDCLinksOnlyVerifiedEmail(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		provider := startOIDCProvider(t)
		s := startAuthServer(t, e, addApp("mock", oidcOptions(provider)))
		email := s.registerVerified(t)
		existing := s.profile(t, s.login(t, email, goodPassword).AccessToken)

		provider.QueueUser(&mockoidc.MockUser{Subject: "unverified-" + randomID(t), Email: email, EmailVerified: false})
		flow := s.beginAppFlow(t, "mock")
		params := s.finish(t, flow)
		if params.Get("error") != "access_denied" || params.Get("code") != "" {
			t.Errorf("unverified provider email: app got %v, want error=access_denied and no code", params)
		}

		provider.QueueUser(&mockoidc.MockUser{Subject: "verified-" + randomID(t), Email: email, EmailVerified: true})
		linked := s.profile(t, s.signInThrough(t, "mock").AccessToken)
		if linked.ID != existing.ID || !linked.HasPassword || len(linked.Identities) != 1 {
			t.Errorf("linked = %+v, want account %s with its password and one identity", linked, existing.ID)
		}
	})
}

func TestOIDCClaimsUnverifiedAccount(t *testing.T) {
	provider := startOIDCProvider(t)
	s := startAuthServer(t, engineSQLite, addApp("mock", oidcOptions(provider)))
	email := "squatted-" + randomID(t) + "@example.com"
	register := s.postJSON(t, "/v1/auth/register", jsonBody(t, map[string]string{"email": email, "password": goodPassword}), "")
	if register.status != http.StatusCreated {
		t.Fatalf("register = %d %s", register.status, register.body)
	}

	provider.QueueUser(&mockoidc.MockUser{Subject: "owner-" + randomID(t), Email: email, EmailVerified: true})
	owner := s.profile(t, s.signInThrough(t, "mock").AccessToken)
	if owner.HasPassword || !owner.EmailVerified {
		t.Errorf("claimed account = %+v, want verified and without the registrant's password", owner)
	}
	login := s.postJSON(t, "/v1/auth/login", jsonBody(t, map[string]string{"email": email, "password": goodPassword}), "")
	if login.status != http.StatusUnauthorized {
		t.Errorf("the registrant's password after the claim = %d, want 401", login.status)
	}
}

func TestOAuthParallelFlowsFinishInReverse(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		provider := startOIDCProvider(t)
		s := startAuthServer(t, e, addApp("mock", oidcOptions(provider)))
		emails := []string{"first-" + randomID(t) + "@example.com", "second-" + randomID(t) + "@example.com"}

		var flows []appFlow
		for _, email := range emails {
			provider.QueueUser(&mockoidc.MockUser{Subject: email, Email: email, EmailVerified: true})
			flows = append(flows, s.beginAppFlow(t, "mock"))
		}
		for i := len(flows) - 1; i >= 0; i-- {
			params := s.finish(t, flows[i])
			res := s.exchange(t, params.Get("code"), flows[i].verifier)
			if res.status != http.StatusOK {
				t.Fatalf("flow %d exchange = %d %s", i, res.status, res.body)
			}
			var pair tokens
			res.data(t, &pair)
			if got := s.profile(t, pair.AccessToken).Email; got != emails[i] {
				t.Errorf("flow %d signed in %s, want %s", i, got, emails[i])
			}
		}
	})
}

func TestOAuthCodeAndStateAreSingleUse(t *testing.T) {
	provider := startOIDCProvider(t)
	s := startAuthServer(t, engineSQLite, addApp("mock", oidcOptions(provider)))
	provider.QueueUser(&mockoidc.MockUser{Subject: "single-" + randomID(t), Email: "single-" + randomID(t) + "@example.com", EmailVerified: true})
	flow := s.beginAppFlow(t, "mock")
	code := s.finish(t, flow).Get("code")

	replay := s.do(t, "GET", flow.callback, "")
	if replay.status != http.StatusBadRequest || replay.envelopeError(t).Details["field"] != "state" {
		t.Errorf("replayed state = %d %s, want 400 on state", replay.status, replay.body)
	}

	wrongVerifier, _ := pkcePair(t)
	wrong := s.exchange(t, code, wrongVerifier)
	if wrong.status != http.StatusBadRequest || wrong.envelopeError(t).Details["field"] != "code_verifier" {
		t.Errorf("wrong verifier = %d %s, want 400 on code_verifier", wrong.status, wrong.body)
	}
	if res := s.exchange(t, code, flow.verifier); res.status != http.StatusOK {
		t.Errorf("right verifier after a wrong one = %d %s, want 200", res.status, res.body)
	}
	if res := s.exchange(t, code, flow.verifier); res.status != http.StatusBadRequest {
		t.Errorf("second exchange = %d %s, want 400", res.status, res.body)
	}
}

func TestOAuthStartChecksTheApp(t *testing.T) {
	provider := startOIDCProvider(t)
	s := startAuthServer(t, engineSQLite, addApp("mock", oidcOptions(provider)))
	_, challenge := pkcePair(t)
	base := url.Values{
		"client_id": {appClientID}, "redirect_uri": {"http://127.0.0.1:9/callback"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
	cases := []struct {
		name, key, value, wantField string
	}{
		{"unknown client", "client_id", "nobody", "client_id"},
		{"device-only client", "client_id", "nexus-cli", "client_id"},
		{"unregistered redirect", "redirect_uri", "http://evil.example/callback", "redirect_uri"},
		{"loopback with another path", "redirect_uri", "http://127.0.0.1:9/other", "redirect_uri"},
		{"plain challenge method", "code_challenge_method", "plain", "code_challenge_method"},
		{"short challenge", "code_challenge", "abc", "code_challenge"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			query := url.Values{}
			for k, v := range base {
				query[k] = v
			}
			query.Set(tc.key, tc.value)
			res := s.do(t, "GET", "/v1/auth/oauth/mock/start?"+query.Encode(), "")
			if res.status != http.StatusBadRequest || res.envelopeError(t).Details["field"] != tc.wantField {
				t.Errorf("start = %d %s, want 400 on %s", res.status, res.body, tc.wantField)
			}
		})
	}
	if res := s.do(t, "GET", "/v1/auth/oauth/nope/start?"+base.Encode(), ""); res.status != http.StatusNotFound {
		t.Errorf("unknown provider = %d, want 404", res.status)
	}
}

// githubStub is a GitHub-shaped provider: OAuth 2.0 with PKCE, then the
// user and emails REST API, with no ID token.
type githubStub struct {
	server *httptest.Server
	mu     sync.Mutex
	// codes maps an issued code to its PKCE challenge.
	codes map[string]string
}

func startGitHubStub(t *testing.T, userID int64, emails []map[string]any) *githubStub {
	t.Helper()
	stub := &githubStub{codes: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", func(w http.ResponseWriter, r *http.Request) {
		code := "gh-" + fmt.Sprint(time.Now().UnixNano())
		stub.mu.Lock()
		stub.codes[code] = r.URL.Query().Get("code_challenge")
		stub.mu.Unlock()
		http.Redirect(w, r, r.URL.Query().Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(r.URL.Query().Get("state")), http.StatusFound)
	})
	mux.HandleFunc("POST /login/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		stub.mu.Lock()
		challenge, ok := stub.codes[r.Form.Get("code")]
		delete(stub.codes, r.Form.Get("code"))
		stub.mu.Unlock()
		sum := sha256.Sum256([]byte(r.Form.Get("code_verifier")))
		if !ok || r.Form.Get("client_id") != "gh-client" || r.Form.Get("client_secret") != "gh-secret" ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != challenge {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"error":"bad_verification_code"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"gh-token","token_type":"bearer","scope":"read:user,user:email"}`))
	})
	authorized := func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") != "Bearer gh-token" {
			http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
			return false
		}
		return true
	}
	mux.HandleFunc("GET /api/user", func(w http.ResponseWriter, r *http.Request) {
		if authorized(w, r) {
			_ = json.NewEncoder(w).Encode(map[string]any{"id": userID, "login": "octo", "name": "Octo Cat"})
		}
	})
	mux.HandleFunc("GET /api/user/emails", func(w http.ResponseWriter, r *http.Request) {
		if authorized(w, r) {
			_ = json.NewEncoder(w).Encode(emails)
		}
	})
	stub.server = httptest.NewServer(mux)
	t.Cleanup(stub.server.Close)
	return stub
}

func (g *githubStub) options() map[string]any {
	return map[string]any{
		"type": "github", "name": "GitHub", "client_id": "gh-client", "client_secret": "gh-secret",
		"auth_url": g.server.URL + "/login/oauth/authorize", "token_url": g.server.URL + "/login/oauth/access_token",
		"api_url": g.server.URL + "/api",
	}
}

func TestGitHubSignInUsesPrimaryVerifiedEmail(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		primary := "octo-" + randomID(t) + "@example.com"
		stub := startGitHubStub(t, 583231, []map[string]any{
			{"email": "old-" + randomID(t) + "@example.com", "primary": false, "verified": true},
			{"email": "unverified@example.com", "primary": false, "verified": false},
			{"email": primary, "primary": true, "verified": true},
		})
		s := startAuthServer(t, e, addApp("github", stub.options()))

		pair := s.signInThrough(t, "github")
		p := s.profile(t, pair.AccessToken)
		if p.Email != primary || len(p.Identities) != 1 || p.Identities[0].Provider != "github" {
			t.Errorf("profile = %+v, want %s with a github identity", p, primary)
		}

		// The only sign-in method cannot be unlinked.
		res := s.do(t, "DELETE", "/v1/auth/me/identities/github", "", "Authorization", "Bearer "+pair.AccessToken)
		if res.status != http.StatusConflict || res.envelopeError(t).Details["reason"] != "last_sign_in_method" {
			t.Errorf("unlink the last method = %d %s, want 409 last_sign_in_method", res.status, res.body)
		}
	})
}

func TestUnlinkIdentityKeepsPasswordAccount(t *testing.T) {
	provider := startOIDCProvider(t)
	s := startAuthServer(t, engineSQLite, addApp("mock", oidcOptions(provider)))
	email := s.registerVerified(t)
	provider.QueueUser(&mockoidc.MockUser{Subject: "link-" + randomID(t), Email: email, EmailVerified: true})
	pair := s.signInThrough(t, "mock")

	res := s.do(t, "DELETE", "/v1/auth/me/identities/mock", "", "Authorization", "Bearer "+pair.AccessToken)
	if res.status != http.StatusOK {
		t.Fatalf("unlink = %d %s", res.status, res.body)
	}
	if p := s.profile(t, pair.AccessToken); len(p.Identities) != 0 {
		t.Errorf("identities after unlink = %+v, want none", p.Identities)
	}
	if res := s.do(t, "DELETE", "/v1/auth/me/identities/mock", "", "Authorization", "Bearer "+pair.AccessToken); res.status != http.StatusNotFound {
		t.Errorf("second unlink = %d, want 404", res.status)
	}
}

// TestParallelUnlinksKeepOneSignInMethod sends the unlinks of both
// identities of an account without a password at once: one must fail, so
// the account keeps a way to sign in. The two requests do not always
// overlap in the database, so a missing lock shows here only sometimes.
func TestParallelUnlinksKeepOneSignInMethod(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		provider := startOIDCProvider(t)
		email := "two-ways-" + randomID(t) + "@example.com"
		stub := startGitHubStub(t, 4242, []map[string]any{{"email": email, "primary": true, "verified": true}})
		s := startAuthServer(t, e, addApp("mock", oidcOptions(provider)), func(cfg *configs.Config) {
			cfg.Modules["auth"]["providers"] = map[string]any{"mock": oidcOptions(provider), "github": stub.options()}
		})

		provider.QueueUser(&mockoidc.MockUser{Subject: "two-" + randomID(t), Email: email, EmailVerified: true})
		pair := s.signInThrough(t, "mock")
		s.signInThrough(t, "github")
		if p := s.profile(t, pair.AccessToken); len(p.Identities) != 2 || p.HasPassword {
			t.Fatalf("profile = %+v, want two identities and no password", p)
		}

		statuses := make(chan int, 2)
		var wg sync.WaitGroup
		for _, name := range []string{"mock", "github"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses <- s.do(t, "DELETE", "/v1/auth/me/identities/"+name, "", "Authorization", "Bearer "+pair.AccessToken).status
			}()
		}
		wg.Wait()
		close(statuses)
		counts := map[int]int{}
		for status := range statuses {
			counts[status]++
		}
		if counts[http.StatusOK] != 1 || counts[http.StatusConflict] != 1 {
			t.Errorf("parallel unlinks answered %v, want one 200 and one 409", counts)
		}
		if p := s.profile(t, pair.AccessToken); len(p.Identities) != 1 {
			t.Errorf("identities after the unlinks = %+v, want one left", p.Identities)
		}
	})
}
