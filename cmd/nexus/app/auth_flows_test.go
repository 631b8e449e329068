package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/modules/auth"
	"github.com/nexus-suite/nexus/modules/auth/mail"
)

// outbox is a mail.Sender that keeps every message, for tests.
type outbox struct {
	mu       sync.Mutex
	messages []mail.Message
}

func (o *outbox) Send(_ context.Context, m mail.Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.messages = append(o.messages, m)
	return nil
}

func (o *outbox) count(to string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, m := range o.messages {
		if m.To == to {
			n++
		}
	}
	return n
}

var linkPattern = regexp.MustCompile(`https?://\S+\?token=\S+`)

// lastLink returns the link of the latest message to the address.
func (o *outbox) lastLink(t *testing.T, to string) string {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := len(o.messages) - 1; i >= 0; i-- {
		if o.messages[i].To == to {
			link := linkPattern.FindString(o.messages[i].Text)
			if link == "" {
				t.Fatalf("message to %s has no link: %q", to, o.messages[i].Text)
			}
			return link
		}
	}
	t.Fatalf("no message to %s", to)
	return ""
}

func tokenOf(t *testing.T, link string) string {
	t.Helper()
	parsed, err := url.Parse(link)
	if err != nil {
		t.Fatalf("parse link %q: %v", link, err)
	}
	return parsed.Query().Get("token")
}

// authServer is a test server whose auth module mails into an outbox.
type authServer struct {
	*testServer
	outbox *outbox
}

// startAuthServer raises the per-IP limit out of the way of tests that send
// many unauthenticated requests; the limit has its own test.
func startAuthServer(t *testing.T, e engine, configure ...func(cfg *configs.Config)) *authServer {
	t.Helper()
	s := startServer(t, serverOption{engine: e, config: func(cfg *configs.Config) {
		cfg.RateLimit.IPPerMinute = 1_000_000
		cfg.RateLimit.IPBurst = 1_000_000
		for _, apply := range configure {
			apply(cfg)
		}
	}})
	box := &outbox{}
	module, ok := s.app.Manager().Module("auth")
	if !ok {
		t.Fatal("auth module not registered")
	}
	module.(*auth.Module).SetMailer(box)
	return &authServer{testServer: s, outbox: box}
}

const goodPassword = "correct horse battery staple"

func (s *authServer) postJSON(t *testing.T, path, body, token string) response {
	t.Helper()
	headers := []string{"Content-Type", "application/json"}
	if token != "" {
		headers = append(headers, "Authorization", "Bearer "+token)
	}
	return s.do(t, "POST", path, body, headers...)
}

func jsonBody(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(data)
}

// registerVerified registers an account, follows its verification mail
// and returns the address.
func (s *authServer) registerVerified(t *testing.T) string {
	t.Helper()
	email := "user-" + randomID(t) + "@Example.COM"
	res := s.postJSON(t, "/v1/auth/register", jsonBody(t, map[string]string{"email": email, "password": goodPassword}), "")
	if res.status != http.StatusCreated {
		t.Fatalf("register = %d %s", res.status, res.body)
	}
	normalized := strings.Split(email, "@")[0] + "@example.com"
	token := tokenOf(t, s.outbox.lastLink(t, normalized))
	if res := s.postJSON(t, "/v1/auth/verify-email", jsonBody(t, map[string]string{"token": token}), ""); res.status != http.StatusOK {
		t.Fatalf("verify = %d %s", res.status, res.body)
	}
	return normalized
}

type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	SessionID    string `json:"session_id"`
	ExpiresIn    int64  `json:"expires_in"`
	TokenType    string `json:"token_type"`
}

func (s *authServer) login(t *testing.T, email, password string) tokens {
	t.Helper()
	res := s.postJSON(t, "/v1/auth/login", jsonBody(t, map[string]string{"email": email, "password": password, "device_name": "test"}), "")
	if res.status != http.StatusOK {
		t.Fatalf("login = %d %s", res.status, res.body)
	}
	var pair tokens
	res.data(t, &pair)
	return pair
}

func (s *authServer) refresh(t *testing.T, refreshToken string) response {
	t.Helper()
	return s.postJSON(t, "/v1/auth/refresh", jsonBody(t, map[string]string{"refresh_token": refreshToken}), "")
}

func TestRegistration(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startAuthServer(t, e)

		res := s.postJSON(t, "/v1/auth/register", `{"email": "  Ada@Example.COM ", "password": "`+goodPassword+`", "display_name": "Ada"}`, "")
		if res.status != http.StatusCreated {
			t.Fatalf("register = %d %s", res.status, res.body)
		}
		var created struct {
			ID            string `json:"id"`
			Email         string `json:"email"`
			EmailVerified bool   `json:"email_verified"`
		}
		res.data(t, &created)
		if created.Email != "Ada@example.com" {
			t.Errorf("email = %q, want trimmed with the domain lower-cased", created.Email)
		}
		if created.EmailVerified || !strings.HasPrefix(created.ID, "usr_") {
			t.Errorf("created = %+v", created)
		}
		if s.outbox.count("Ada@example.com") != 1 {
			t.Error("no verification mail was sent")
		}

		cases := []struct {
			name      string
			body      string
			status    int
			code      string
			field     string
			wantExtra map[string]any
		}{
			{"duplicate", `{"email": "Ada@example.com", "password": "` + goodPassword + `"}`, 409, "CONFLICT", "email", nil},
			{"invalid email", `{"email": "not-an-address", "password": "` + goodPassword + `"}`, 400, "VALIDATION_ERROR", "email", nil},
			{"email with a name", `{"email": "Ada <ada@example.com>", "password": "` + goodPassword + `"}`, 400, "VALIDATION_ERROR", "email", nil},
			{"short password", `{"email": "b@example.com", "password": "elevenchars"}`, 400, "VALIDATION_ERROR", "password", map[string]any{"min_length": float64(12)}},
			{"long password", `{"email": "b@example.com", "password": "` + strings.Repeat("x", 1025) + `"}`, 400, "VALIDATION_ERROR", "password", map[string]any{"max_length": float64(1024)}},
			{"common password", `{"email": "b@example.com", "password": "` + commonLongPassword(t) + `"}`, 400, "VALIDATION_ERROR", "password", map[string]any{"reason": "common"}},
			{"invalid utf-8 password", "{\"email\": \"b@example.com\", \"password\": \"abcdefghijk\xff\xfe\"}", 400, "VALIDATION_ERROR", "", nil},
			{"escaped lone surrogate", `{"email": "b@example.com", "password": "abcdefghijkl\ud800"}`, 400, "VALIDATION_ERROR", "password", nil},
			{"wrong type", `{"email": "b@example.com", "password": 123456789012}`, 400, "VALIDATION_ERROR", "password", nil},
			{"extra field", `{"email": "b@example.com", "password": "` + goodPassword + `", "admin": true}`, 400, "VALIDATION_ERROR", "admin", nil},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				res := s.postJSON(t, "/v1/auth/register", tc.body, "")
				if res.status != tc.status {
					t.Fatalf("status = %d, want %d (%s)", res.status, tc.status, res.body)
				}
				apiErr := res.envelopeError(t)
				if apiErr.Code != tc.code {
					t.Errorf("code = %q, want %q", apiErr.Code, tc.code)
				}
				if tc.field != "" && apiErr.Details["field"] != tc.field {
					t.Errorf("details.field = %v, want %q", apiErr.Details["field"], tc.field)
				}
				for key, want := range tc.wantExtra {
					if apiErr.Details[key] != want {
						t.Errorf("details.%s = %v, want %v", key, apiErr.Details[key], want)
					}
				}
			})
		}
	})
}

// commonLongPassword returns an entry of the built-in list that is long
// enough to pass the length rule, so only the list rejects it.
func commonLongPassword(t *testing.T) string {
	t.Helper()
	return "Password1234"
}

func TestEmailVerification(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startAuthServer(t, e)
		email := "verify-" + randomID(t) + "@example.com"
		s.postJSON(t, "/v1/auth/register", jsonBody(t, map[string]string{"email": email, "password": goodPassword}), "")

		// Sign-in before verification: the right password gets 403, a wrong one 401.
		res := s.postJSON(t, "/v1/auth/login", jsonBody(t, map[string]string{"email": email, "password": goodPassword}), "")
		if res.status != http.StatusForbidden || res.envelopeError(t).Code != "EMAIL_UNVERIFIED" {
			t.Errorf("login before verification = %d %s, want 403 EMAIL_UNVERIFIED", res.status, res.body)
		}
		res = s.postJSON(t, "/v1/auth/login", jsonBody(t, map[string]string{"email": email, "password": "wrong " + goodPassword}), "")
		if res.status != http.StatusUnauthorized {
			t.Errorf("wrong password before verification = %d, want 401", res.status)
		}

		token := tokenOf(t, s.outbox.lastLink(t, email))
		verify := func() response {
			return s.postJSON(t, "/v1/auth/verify-email", jsonBody(t, map[string]string{"token": token}), "")
		}
		if res := verify(); res.status != http.StatusOK || !strings.Contains(res.String(), `"email_verified":true`) {
			t.Fatalf("verify = %d %s", res.status, res.body)
		}
		res = verify()
		if res.status != http.StatusBadRequest || res.envelopeError(t).Details["reason"] != "used" {
			t.Errorf("second use = %d %s, want 400 with reason used", res.status, res.body)
		}

		// A fresh token expires after the verification TTL.
		email2 := "expiry-" + randomID(t) + "@example.com"
		s.postJSON(t, "/v1/auth/register", jsonBody(t, map[string]string{"email": email2, "password": goodPassword}), "")
		link := s.outbox.lastLink(t, email2)
		s.clock.Advance(24*time.Hour + time.Second)
		res = s.postJSON(t, "/v1/auth/verify-email", jsonBody(t, map[string]string{"token": tokenOf(t, link)}), "")
		if res.status != http.StatusBadRequest || res.envelopeError(t).Details["reason"] != "expired" {
			t.Errorf("expired token = %d %s, want 400 with reason expired", res.status, res.body)
		}

		// The resend returns 202 for every address, and mails only real, unverified ones.
		before := s.outbox.count(email2)
		for _, address := range []string{email2, "nobody-" + randomID(t) + "@example.com", email} {
			res := s.postJSON(t, "/v1/auth/verify-email/resend", jsonBody(t, map[string]string{"email": address}), "")
			if res.status != http.StatusAccepted {
				t.Errorf("resend to %s = %d, want 202", address, res.status)
			}
		}
		if s.outbox.count(email2) != before+1 {
			t.Errorf("mails to %s = %d, want %d", email2, s.outbox.count(email2), before+1)
		}

		// The mailed link opens a form; submitting it verifies the address.
		page := followVerificationLink(t, s.testServer, s.outbox.lastLink(t, email2))
		if page.status != http.StatusOK || !strings.Contains(page.String(), "Email verified") {
			t.Errorf("following the link = %d %s", page.status, page.body)
		}
	})
}

func TestResendIsLimitedPerAddress(t *testing.T) {
	s := startAuthServer(t, engineSQLite)
	email := "limited-" + randomID(t) + "@example.com"
	s.postJSON(t, "/v1/auth/register", jsonBody(t, map[string]string{"email": email, "password": goodPassword}), "")

	for i := 0; i < 6; i++ {
		if res := s.postJSON(t, "/v1/auth/verify-email/resend", jsonBody(t, map[string]string{"email": email}), ""); res.status != http.StatusAccepted {
			t.Fatalf("resend %d = %d, want 202", i+1, res.status)
		}
	}
	// One mail at registration, then three resends in the window.
	if got := s.outbox.count(email); got != 4 {
		t.Errorf("mails = %d, want 4 (registration plus the per-address limit of 3)", got)
	}
}

func TestLoginCredentials(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startAuthServer(t, e)
		email := s.registerVerified(t)

		wrong := s.postJSON(t, "/v1/auth/login", jsonBody(t, map[string]string{"email": email, "password": "not the " + goodPassword}), "")
		unknown := s.postJSON(t, "/v1/auth/login", jsonBody(t, map[string]string{"email": "ghost-" + randomID(t) + "@example.com", "password": "not the " + goodPassword}), "")
		if wrong.status != http.StatusUnauthorized || unknown.status != http.StatusUnauthorized {
			t.Fatalf("statuses = %d and %d, want 401 and 401", wrong.status, unknown.status)
		}
		if string(wrong.body) != string(unknown.body) {
			t.Errorf("bodies differ:\n%s\n%s", wrong.body, unknown.body)
		}

		pair := s.login(t, email, goodPassword)
		if pair.TokenType != "Bearer" || pair.ExpiresIn != 900 || pair.RefreshToken == "" {
			t.Errorf("pair = %+v", pair)
		}
		me := s.get(t, "/v1/auth/me", pair.AccessToken)
		if me.status != http.StatusOK || !strings.Contains(me.String(), email) {
			t.Errorf("/me = %d %s", me.status, me.body)
		}
		header := decodeJWTHeader(t, pair.AccessToken)
		if header["kid"] != s.app.Keys().SigningKeyID() || header["alg"] != "RS256" {
			t.Errorf("token header = %v, want the signing kid and RS256", header)
		}
	})
}

var formTokenPattern = regexp.MustCompile(`name="token" value="([^"]*)"`)

// followVerificationLink opens the mailed link as a browser would: it gets
// the form and submits it.
func followVerificationLink(t *testing.T, s *testServer, link string) response {
	t.Helper()
	form := s.get(t, pathOf(t, link), "")
	match := formTokenPattern.FindStringSubmatch(form.String())
	if form.status != http.StatusOK || match == nil {
		t.Fatalf("verification form = %d %s", form.status, form.body)
	}
	if match[1] != tokenOf(t, link) {
		t.Fatalf("form token %q differs from the link's", match[1])
	}
	return s.do(t, "POST", "/v1/auth/verify-email", "token="+url.QueryEscape(match[1]),
		"Content-Type", "application/x-www-form-urlencoded")
}

// pathOf returns the path and query of a link, to request it from the test server.
func pathOf(t *testing.T, link string) string {
	t.Helper()
	parsed, err := url.Parse(link)
	if err != nil {
		t.Fatalf("parse link %q: %v", link, err)
	}
	return parsed.RequestURI()
}

func decodeSegment(segment string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(segment)
}

func decodeJWTHeader(t *testing.T, token string) map[string]any {
	t.Helper()
	part, _, _ := strings.Cut(token, ".")
	var header map[string]any
	data, err := decodeSegment(part)
	if err == nil {
		err = json.Unmarshal(data, &header)
	}
	if err != nil {
		t.Fatalf("decode token header: %v", err)
	}
	return header
}

func TestLockout(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startAuthServer(t, e)
		email := s.registerVerified(t)

		lockedBody := func(address string) edgeErrorShape {
			for i := 0; i < 5; i++ {
				res := s.postJSON(t, "/v1/auth/login", jsonBody(t, map[string]string{"email": address, "password": "wrong password " + fmt.Sprint(i)}), "")
				if res.status != http.StatusUnauthorized {
					t.Fatalf("failure %d on %s = %d, want 401", i+1, address, res.status)
				}
			}
			res := s.postJSON(t, "/v1/auth/login", jsonBody(t, map[string]string{"email": address, "password": goodPassword}), "")
			if res.status != http.StatusLocked {
				t.Fatalf("sixth attempt on %s = %d, want 423 (%s)", address, res.status, res.body)
			}
			if res.header.Get("Retry-After") != "900" {
				t.Errorf("Retry-After = %q, want 900", res.header.Get("Retry-After"))
			}
			apiErr := res.envelopeError(t)
			return edgeErrorShape{Code: apiErr.Code, Message: apiErr.Message, LockedUntil: fmt.Sprint(apiErr.Details["locked_until"])}
		}

		known := lockedBody(email)
		unknown := lockedBody("ghost-" + randomID(t) + "@example.com")
		if known != unknown {
			t.Errorf("lock of a known address %+v differs from an unknown one %+v", known, unknown)
		}
		if known.Code != "ACCOUNT_LOCKED" {
			t.Errorf("code = %q, want ACCOUNT_LOCKED", known.Code)
		}
		if want := s.clock.Now().Add(15 * time.Minute).UTC().Format(time.RFC3339); known.LockedUntil != want {
			t.Errorf("locked_until = %s, want %s", known.LockedUntil, want)
		}

		s.clock.Advance(15*time.Minute + time.Second)
		s.login(t, email, goodPassword)
	})
}

type edgeErrorShape struct {
	Code, Message, LockedUntil string
}

func TestConcurrentGuessesEvaluateAtMostFive(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startAuthServer(t, e)
		email := s.registerVerified(t)

		var mu sync.Mutex
		statuses := map[int]int{}
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				res := s.postJSON(t, "/v1/auth/login", jsonBody(t, map[string]string{"email": email, "password": fmt.Sprintf("guess number %d!", i)}), "")
				mu.Lock()
				statuses[res.status]++
				mu.Unlock()
			}(i)
		}
		wg.Wait()

		// Only an evaluated password gets 401. The other requests were stopped before evaluation.
		if statuses[http.StatusUnauthorized] > 5 {
			t.Errorf("evaluated %d passwords, want at most 5 (statuses %v)", statuses[http.StatusUnauthorized], statuses)
		}
		if statuses[http.StatusUnauthorized]+statuses[http.StatusLocked] != 50 {
			t.Errorf("statuses = %v, want only 401 and 423", statuses)
		}
	})
}
