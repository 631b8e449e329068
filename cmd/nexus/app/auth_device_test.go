package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/nexus-suite/nexus/configs"
)

// deviceInterval is the polling interval of the device tests' config, the
// smallest the option allows, so that x/oauth2's real-time polling is quick.
const deviceInterval = time.Second

// startDeviceServer starts an auth server whose device codes start with a
// one-second interval, and lets its fake clock follow real time so that
// x/oauth2's real sleeps between polls count as time passing.
func startDeviceServer(t *testing.T, e engine, configure ...func(cfg *configs.Config)) *authServer {
	t.Helper()
	s := startAuthServer(t, e, append([]func(cfg *configs.Config){func(cfg *configs.Config) {
		cfg.Modules["auth"]["device"] = map[string]any{"interval": deviceInterval.String()}
	}}, configure...)...)
	return s
}

// followRealTime advances the server's fake clock by the real time that
// passes, until the test ends.
func followRealTime(t *testing.T, s *authServer) {
	t.Helper()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		last := time.Now()
		ticker := time.NewTicker(20 * time.Millisecond)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-ticker.C:
				s.clock.Advance(now.Sub(last))
				last = now
			}
		}
	}()
	t.Cleanup(func() { close(done); wg.Wait() })
}

func (s *authServer) oauthConfig() *oauth2.Config {
	return &oauth2.Config{
		ClientID: "nexus-cli",
		Endpoint: oauth2.Endpoint{
			DeviceAuthURL: s.url + "/v1/auth/device/code",
			TokenURL:      s.url + "/v1/auth/device/token",
			AuthStyle:     oauth2.AuthStyleInParams,
		},
	}
}

// browser is a cookie-keeping client that does not follow redirects and
// checks every response against the OpenAPI document, as s.do does.
type browser struct {
	s      *authServer
	client *http.Client
}

func newBrowser(t *testing.T, s *authServer) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatalf("cookie jar: %v", err)
	}
	return &browser{s: s, client: &http.Client{
		Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (b *browser) send(t *testing.T, method, path string, form url.Values) response {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.s.url+path, body)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := b.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read %s %s: %v", method, path, err)
	}
	if err := documentValidator(t).Check(method, path, res.StatusCode, res.Header, data); err != nil {
		t.Errorf("%s %s answered %d outside the OpenAPI document: %v\n%s", method, path, res.StatusCode, err, data)
	}
	return response{status: res.StatusCode, header: res.Header, body: data}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page response) string {
	t.Helper()
	match := csrfField.FindSubmatch(page.body)
	if match == nil {
		t.Fatalf("page has no csrf field:\n%s", page.body)
	}
	return string(match[1])
}

// signIn opens the page for a user code, signs in, and returns the
// confirmation page that the sign-in redirects to.
func (b *browser) signIn(t *testing.T, email, userCode string) response {
	t.Helper()
	page := b.send(t, "GET", "/v1/auth/device?user_code="+url.QueryEscape(userCode), nil)
	if page.status != http.StatusOK || !strings.Contains(page.String(), `action="/v1/auth/device/signin"`) {
		t.Fatalf("device page before sign-in = %d\n%s", page.status, page.body)
	}
	res := b.send(t, "POST", "/v1/auth/device/signin", url.Values{
		"csrf": {csrfOf(t, page)}, "user_code": {userCode}, "email": {email}, "password": {goodPassword},
	})
	if res.status != http.StatusSeeOther {
		t.Fatalf("sign-in = %d\n%s", res.status, res.body)
	}
	location := res.header.Get("Location")
	return b.send(t, "GET", location, nil)
}

// decide posts the decision from a confirmation page.
func (b *browser) decide(t *testing.T, confirm response, userCode, decision string) response {
	t.Helper()
	return b.send(t, "POST", "/v1/auth/device/approve", url.Values{
		"csrf": {csrfOf(t, confirm)}, "user_code": {userCode}, "decision": {decision},
	})
}

func TestDeviceFlowApprove(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startDeviceServer(t, e)
		followRealTime(t, s)
		email := s.registerVerified(t)
		config := s.oauthConfig()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()

		auth, err := config.DeviceAuth(ctx)
		if err != nil {
			t.Fatalf("DeviceAuth: %v", err)
		}
		if !regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`).MatchString(auth.UserCode) {
			t.Errorf("user code %q is not XXXX-XXXX of the consonant alphabet", auth.UserCode)
		}
		if auth.VerificationURIComplete != auth.VerificationURI+"?user_code="+auth.UserCode {
			t.Errorf("verification_uri_complete = %q", auth.VerificationURIComplete)
		}

		// The user types the code in lower case with a space instead of the dash.
		typed := strings.ToLower(strings.Replace(auth.UserCode, "-", " ", 1))
		b := newBrowser(t, s)
		confirm := b.signIn(t, email, typed)
		if confirm.status != http.StatusOK || !strings.Contains(confirm.String(), "Nexus CLI") ||
			!strings.Contains(confirm.String(), auth.UserCode) {
			t.Fatalf("confirmation page = %d, want the client name and the code\n%s", confirm.status, confirm.body)
		}

		polled := make(chan error, 1)
		var token *oauth2.Token
		go func() {
			var err error
			token, err = config.DeviceAccessToken(ctx, auth)
			polled <- err
		}()
		time.Sleep(1500 * time.Millisecond) // at least one authorization_pending
		done := b.decide(t, confirm, auth.UserCode, "approve")
		if done.status != http.StatusOK || !strings.Contains(done.String(), "Device connected") {
			t.Fatalf("approve = %d\n%s", done.status, done.body)
		}
		if err := <-polled; err != nil {
			t.Fatalf("DeviceAccessToken: %v", err)
		}

		me := s.get(t, "/v1/auth/me", token.AccessToken)
		if me.status != http.StatusOK || !strings.Contains(me.String(), email) {
			t.Errorf("GET /me with the device token = %d %s", me.status, me.body)
		}
		sessions := s.get(t, "/v1/auth/sessions", token.AccessToken)
		if !strings.Contains(sessions.String(), `"Nexus CLI"`) {
			t.Errorf("the device session is not named after the client: %s", sessions.body)
		}
		if token.RefreshToken == "" {
			t.Error("no refresh token")
		}

		// A device code is single-use.
		again := s.do(t, "POST", "/v1/auth/device/token",
			"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id=nexus-cli&device_code="+url.QueryEscape(auth.DeviceCode),
			"Content-Type", "application/x-www-form-urlencoded")
		if again.status != http.StatusBadRequest || !strings.Contains(again.String(), `"invalid_grant"`) {
			t.Errorf("second exchange = %d %s, want 400 invalid_grant", again.status, again.body)
		}
	})
}

func TestDeviceFlowDeny(t *testing.T) {
	s := startDeviceServer(t, engineSQLite)
	followRealTime(t, s)
	email := s.registerVerified(t)
	config := s.oauthConfig()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	auth, err := config.DeviceAuth(ctx)
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}
	b := newBrowser(t, s)
	confirm := b.signIn(t, email, auth.UserCode)
	if res := b.decide(t, confirm, auth.UserCode, "deny"); res.status != http.StatusOK || !strings.Contains(res.String(), "Request denied") {
		t.Fatalf("deny = %d\n%s", res.status, res.body)
	}

	_, err = config.DeviceAccessToken(ctx, auth)
	var retrieve *oauth2.RetrieveError
	if !errors.As(err, &retrieve) || retrieve.ErrorCode != "access_denied" {
		t.Fatalf("DeviceAccessToken error = %v, want access_denied", err)
	}

	// The decided code cannot be approved afterwards.
	if res := b.decide(t, confirm, auth.UserCode, "approve"); res.status != http.StatusBadRequest {
		t.Errorf("approve after deny = %d, want 400", res.status)
	}
}

func TestDeviceFlowExpiry(t *testing.T) {
	s := startDeviceServer(t, enginePostgres)
	config := s.oauthConfig()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	auth, err := config.DeviceAuth(ctx)
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}
	s.clock.Advance(10*time.Minute + time.Second)

	_, err = config.DeviceAccessToken(ctx, auth)
	var retrieve *oauth2.RetrieveError
	if !errors.As(err, &retrieve) || retrieve.ErrorCode != "expired_token" {
		t.Fatalf("DeviceAccessToken error = %v, want expired_token", err)
	}

	email := s.registerVerified(t)
	b := newBrowser(t, s)
	page := b.signIn(t, email, auth.UserCode)
	if page.status != http.StatusBadRequest || !strings.Contains(page.String(), "expired") {
		t.Errorf("page for an expired code = %d\n%s", page.status, page.body)
	}
}

// poll sends one raw device token request and returns the OAuth error code,
// or "" for tokens.
func (s *authServer) poll(t *testing.T, deviceCode string) string {
	t.Helper()
	res := s.do(t, "POST", "/v1/auth/device/token", url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {"nexus-cli"}, "device_code": {deviceCode},
	}.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	if res.status == http.StatusOK {
		return ""
	}
	var body struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(res.body, &body); err != nil || body.Error == "" {
		t.Fatalf("poll = %d %s", res.status, res.body)
	}
	return body.Error
}

func (s *authServer) startDevice(t *testing.T) (deviceCode, userCode string) {
	t.Helper()
	res := s.do(t, "POST", "/v1/auth/device/code", `{"client_id": "nexus-cli"}`, "Content-Type", "application/json")
	if res.status != http.StatusOK {
		t.Fatalf("device code = %d %s", res.status, res.body)
	}
	var auth struct {
		DeviceCode string `json:"device_code"`
		UserCode   string `json:"user_code"`
	}
	if err := json.Unmarshal(res.body, &auth); err != nil {
		t.Fatalf("decode %s: %v", res.body, err)
	}
	return auth.DeviceCode, auth.UserCode
}

func TestDeviceSlowDownIsRemembered(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startDeviceServer(t, e, func(cfg *configs.Config) {
			cfg.Modules["auth"]["device"] = map[string]any{"interval": "5s"}
		})
		deviceCode, _ := s.startDevice(t)

		steps := []struct {
			wait time.Duration
			want string
		}{
			{0, "authorization_pending"},
			{200 * time.Millisecond, "slow_down"},               // interval 5s -> 10s
			{9200 * time.Millisecond, "authorization_pending"},  // 0.8s early: network jitter, not punished
			{8500 * time.Millisecond, "slow_down"},              // 1.5s early -> 15s
			{14100 * time.Millisecond, "authorization_pending"}, // the grown interval stays
			{14100 * time.Millisecond, "authorization_pending"}, // and jitter is never punished again
		}
		for i, step := range steps {
			s.clock.Advance(step.wait)
			if got := s.poll(t, deviceCode); got != step.want {
				t.Fatalf("poll %d after %s = %s, want %s", i+1, step.wait, got, step.want)
			}
		}
	})
}

// TestDeviceJitteryPollerIsNotSlowedDown polls up to 0.9 s before each
// interval ends, as a client on a jittery network does, and then gets its
// tokens after the user approves.
func TestDeviceJitteryPollerIsNotSlowedDown(t *testing.T) {
	s := startDeviceServer(t, engineSQLite, func(cfg *configs.Config) {
		cfg.Modules["auth"]["device"] = map[string]any{"interval": "5s"}
	})
	email := s.registerVerified(t)
	deviceCode, userCode := s.startDevice(t)
	random := rand.New(rand.NewPCG(1, 2))

	for i := range 20 {
		early := time.Duration(random.Int64N(int64(900 * time.Millisecond)))
		s.clock.Advance(5*time.Second - early)
		if got := s.poll(t, deviceCode); got != "authorization_pending" {
			t.Fatalf("poll %d, %s early: %s, want authorization_pending", i+1, early, got)
		}
	}

	b := newBrowser(t, s)
	confirm := b.signIn(t, email, userCode)
	if res := b.decide(t, confirm, userCode, "approve"); res.status != http.StatusOK {
		t.Fatalf("approve = %d\n%s", res.status, res.body)
	}
	s.clock.Advance(4200 * time.Millisecond)
	if got := s.poll(t, deviceCode); got != "" {
		t.Fatalf("poll after approval = %s, want tokens", got)
	}
}

func TestDeviceEndpointErrors(t *testing.T) {
	s := startDeviceServer(t, engineSQLite)
	deviceCode, _ := s.startDevice(t)
	form := "application/x-www-form-urlencoded"

	cases := []struct {
		name, path, body string
		wantStatus       int
		wantError        string
	}{
		{"unknown client", "/v1/auth/device/code", "client_id=nobody", 401, "invalid_client"},
		{"missing client", "/v1/auth/device/code", "scope=x", 401, "invalid_client"},
		{"wrong grant type", "/v1/auth/device/token", "grant_type=password&client_id=nexus-cli&device_code=" + deviceCode, 400, "unsupported_grant_type"},
		{"missing device code", "/v1/auth/device/token", "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id=nexus-cli", 400, "invalid_request"},
		{"unknown device code", "/v1/auth/device/token", "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id=nexus-cli&device_code=nope", 400, "invalid_grant"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := s.do(t, "POST", tc.path, tc.body, "Content-Type", form)
			if res.status != tc.wantStatus || !strings.Contains(res.String(), `"error":"`+tc.wantError+`"`) {
				t.Errorf("%s = %d %s, want %d %s", tc.path, res.status, res.body, tc.wantStatus, tc.wantError)
			}
		})
	}

	t.Run("unknown JSON field", func(t *testing.T) {
		res := s.do(t, "POST", "/v1/auth/device/code", `{"client_id": "nexus-cli", "colour": "blue"}`, "Content-Type", "application/json")
		if res.status != http.StatusBadRequest || !strings.Contains(res.String(), `"invalid_request"`) {
			t.Errorf("unknown field = %d %s", res.status, res.body)
		}
	})
}

func TestDevicePageGuardsForms(t *testing.T) {
	s := startDeviceServer(t, engineSQLite, func(cfg *configs.Config) {
		cfg.Modules["auth"]["device"] = map[string]any{"interval": "1s", "max_wrong_codes": 3}
	})
	email := s.registerVerified(t)
	_, userCode := s.startDevice(t)

	t.Run("sign-in without the CSRF token", func(t *testing.T) {
		b := newBrowser(t, s)
		b.send(t, "GET", "/v1/auth/device", nil)
		res := b.send(t, "POST", "/v1/auth/device/signin", url.Values{"email": {email}, "password": {goodPassword}, "csrf": {"forged"}})
		if res.status != http.StatusForbidden {
			t.Errorf("sign-in with a forged token = %d, want 403", res.status)
		}
	})

	t.Run("decision without the CSRF cookie", func(t *testing.T) {
		b := newBrowser(t, s)
		confirm := b.signIn(t, email, userCode)
		other := newBrowser(t, s) // another site's form: no cookie of ours
		res := other.send(t, "POST", "/v1/auth/device/approve", url.Values{"csrf": {csrfOf(t, confirm)}, "user_code": {userCode}, "decision": {"approve"}})
		if res.status != http.StatusForbidden {
			t.Errorf("approve without the cookie = %d, want 403", res.status)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		b := newBrowser(t, s)
		page := b.send(t, "GET", "/v1/auth/device", nil)
		res := b.send(t, "POST", "/v1/auth/device/signin", url.Values{"email": {email}, "password": {"not the password at all"}, "csrf": {csrfOf(t, page)}})
		if res.status != http.StatusUnauthorized || !strings.Contains(res.String(), "wrong") {
			t.Errorf("wrong password = %d\n%s", res.status, res.body)
		}
	})

	t.Run("guessed codes are limited per IP", func(t *testing.T) {
		b := newBrowser(t, s)
		b.signIn(t, email, "")
		for i := range 3 {
			if res := b.send(t, "GET", "/v1/auth/device?user_code=BCDF-GHJK", nil); res.status != http.StatusBadRequest {
				t.Fatalf("guess %d = %d, want 400", i+1, res.status)
			}
		}
		if res := b.send(t, "GET", "/v1/auth/device?user_code="+userCode, nil); res.status != http.StatusTooManyRequests {
			t.Errorf("a right code after 3 wrong ones = %d, want 429", res.status)
		}
	})
}
