package app_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/cmd/nexus/app"
	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/edge/openapi"
	"github.com/nexus-suite/nexus/storage"
)

// openapiServer is the real app serving on a loopback port, for checking
// its responses against the OpenAPI document.
type openapiServer struct {
	app     *app.App
	cfg     *configs.Config
	baseURL string
}

// openapiStart starts the app with the default config, SQLite in a
// temporary directory and the in-process key-value store, after configure
// has changed the config. It stops the app at cleanup and waits for Serve
// to return.
func openapiStart(t *testing.T, configure func(cfg *configs.Config)) *openapiServer {
	t.Helper()

	cfg, err := configs.Load("", nil)
	if err != nil {
		t.Fatalf("load default config: %v", err)
	}
	cfg.DataDir = t.TempDir()
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Server.ShutdownTimeout = 5 * time.Second
	if configure != nil {
		configure(cfg)
	}

	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, app.Options{Config: cfg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		cancel()
		t.Fatalf("start app: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		a.Close()
		t.Fatalf("listen on 127.0.0.1: %v", err)
	}

	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &openapiServer{app: a, cfg: cfg, baseURL: "http://" + ln.Addr().String()}
}

// openapiToken inserts a user and a live session and returns an access
// token for them, signed by the app's current key.
func (s *openapiServer) openapiToken(t *testing.T) string {
	t.Helper()
	random := make([]byte, 8)
	_, _ = rand.Read(random) // crypto/rand.Read never returns an error since Go 1.24.
	suffix := hex.EncodeToString(random)
	userID, sessionID := "usr_"+suffix, "ses_"+suffix
	now := time.Now()

	sessions := storage.NewSessions(s.app.DB())
	ctx := context.Background()
	if err := sessions.InsertUser(ctx, userID, userID+"@example.com", now); err != nil {
		t.Fatalf("insert user %s: %v", userID, err)
	}
	record := storage.SessionRecord{ID: sessionID, UserID: userID, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := sessions.Insert(ctx, record); err != nil {
		t.Fatalf("insert session %s: %v", sessionID, err)
	}

	token, err := s.app.Keys().Sign(map[string]any{
		"sub": userID, "sid": sessionID, "jti": "jti_" + suffix,
		"iss": s.cfg.Tokens.Issuer, "aud": s.cfg.Tokens.Audience,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(s.cfg.Tokens.AccessTTL).Unix(),
	})
	if err != nil {
		t.Fatalf("sign access token: %v", err)
	}
	return token
}

// openapiRequest is one request of a table, with the status it must get.
type openapiRequest struct {
	name   string
	method string
	uri    string
	// authorization is the Authorization header value, or empty to send none.
	authorization string
	body          string
	wantStatus    int
}

// openapiCheck sends each request in order, then requires its status and
// checks the response against the document.
func openapiCheck(t *testing.T, s *openapiServer, requests []openapiRequest) {
	t.Helper()
	validator, err := openapi.NewValidator()
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}

	for _, r := range requests {
		t.Run(r.name, func(t *testing.T) {
			var body io.Reader
			if r.body != "" {
				body = strings.NewReader(r.body)
			}
			req, err := http.NewRequest(r.method, s.baseURL+r.uri, body)
			if err != nil {
				t.Fatalf("new request: %v", err)
			}
			if r.authorization != "" {
				req.Header.Set("Authorization", r.authorization)
			}

			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", r.method, r.uri, err)
			}
			data, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				t.Fatalf("read body of %s %s: %v", r.method, r.uri, err)
			}

			if res.StatusCode != r.wantStatus {
				t.Fatalf("%s %s = %d %s, want %d", r.method, r.uri, res.StatusCode, data, r.wantStatus)
			}
			if err := validator.Check(r.method, r.uri, res.StatusCode, res.Header, data); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestOpenAPIRoutesMatchServer(t *testing.T) {
	s := openapiStart(t, nil)

	mounted := map[string]bool{}
	for _, route := range s.app.Routes() {
		mounted[route.Method+" "+route.Path] = true
	}
	documented := map[string]bool{}
	for _, route := range openapi.Routes() {
		documented[route.Method+" "+route.Path] = true
	}

	for route := range mounted {
		if !documented[route] {
			t.Errorf("%s is mounted but missing from openapi.yaml", route)
		}
	}
	for route := range documented {
		if !mounted[route] {
			t.Errorf("%s is in openapi.yaml but not mounted", route)
		}
	}
}

func TestOpenAPIResponses(t *testing.T) {
	s := openapiStart(t, func(cfg *configs.Config) {
		cfg.Server.MaxBodyBytes = 1024
	})
	bearer := "Bearer " + s.openapiToken(t)

	openapiCheck(t, s, []openapiRequest{
		{name: "health", method: "GET", uri: "/health", wantStatus: 200},
		{name: "ready", method: "GET", uri: "/ready", wantStatus: 200},
		{name: "status", method: "GET", uri: "/status", wantStatus: 200},
		{name: "metrics", method: "GET", uri: "/metrics", wantStatus: 200},
		{name: "well-known JWKS", method: "GET", uri: "/.well-known/jwks.json", wantStatus: 200},
		{name: "OpenAPI document", method: "GET", uri: "/v1/openapi.json", wantStatus: 200},
		{name: "auth JWKS", method: "GET", uri: "/v1/auth/jwks", wantStatus: 200},
		{name: "tiers", method: "GET", uri: "/v1/entitlements/tiers", wantStatus: 200},
		{name: "entitlements", method: "GET", uri: "/v1/entitlements", authorization: bearer, wantStatus: 200},
		{name: "check granted feature", method: "GET", uri: "/v1/entitlements/check?feature=sync", authorization: bearer, wantStatus: 200},
		{name: "check unknown feature", method: "GET", uri: "/v1/entitlements/check?feature=teleport", authorization: bearer, wantStatus: 400},
		{name: "check without feature", method: "GET", uri: "/v1/entitlements/check", authorization: bearer, wantStatus: 400},
		{name: "missing token", method: "GET", uri: "/v1/entitlements", wantStatus: 401},
		{name: "invalid token", method: "GET", uri: "/v1/entitlements/check?feature=sync", authorization: "Bearer abc.def.ghi", wantStatus: 401},
		{name: "malformed authorization", method: "GET", uri: "/v1/entitlements", authorization: "Basic dXNlcjpwYXNz", wantStatus: 401},
		{name: "unknown route", method: "GET", uri: "/v1/nope", wantStatus: 404},
		{name: "wrong method", method: "POST", uri: "/health", wantStatus: 405},
		{name: "wrong method on module route", method: "DELETE", uri: "/v1/entitlements", wantStatus: 405},
		{name: "body over limit", method: "GET", uri: "/health", body: strings.Repeat("x", 2048), wantStatus: 413},
		{name: "body over limit on unknown route", method: "POST", uri: "/v1/nope", body: strings.Repeat("x", 2048), wantStatus: 413},
	})
}

func TestOpenAPIDisabledModules(t *testing.T) {
	s := openapiStart(t, func(cfg *configs.Config) {
		cfg.Modules["auth"]["enabled"] = false
		cfg.Modules["entitlements"]["enabled"] = false
		cfg.Modules["billing"]["enabled"] = false
		cfg.Modules["sync"]["enabled"] = false
		cfg.Modules["mcp"]["enabled"] = false
		cfg.Modules["skills"]["enabled"] = false
	})

	openapiCheck(t, s, []openapiRequest{
		{name: "status", method: "GET", uri: "/status", wantStatus: 200},
		{name: "auth JWKS", method: "GET", uri: "/v1/auth/jwks", wantStatus: 404},
		{name: "tiers", method: "GET", uri: "/v1/entitlements/tiers", wantStatus: 404},
		{name: "entitlements", method: "GET", uri: "/v1/entitlements", wantStatus: 404},
		{name: "well-known JWKS", method: "GET", uri: "/.well-known/jwks.json", wantStatus: 200},
	})
}

func TestOpenAPIRateLimited(t *testing.T) {
	s := openapiStart(t, func(cfg *configs.Config) {
		cfg.RateLimit.IPPerMinute = 1
		cfg.RateLimit.IPBurst = 1
		core := cfg.Tiers.Catalog["core"]
		core.Limits.RequestsPerMinute = 1
		core.Limits.Burst = 1
		cfg.Tiers.Catalog["core"] = core
	})
	bearer := "Bearer " + s.openapiToken(t)

	openapiCheck(t, s, []openapiRequest{
		{name: "tiers within IP limit", method: "GET", uri: "/v1/entitlements/tiers", wantStatus: 200},
		{name: "tiers over IP limit", method: "GET", uri: "/v1/entitlements/tiers", wantStatus: 429},
		{name: "entitlements within user limit", method: "GET", uri: "/v1/entitlements", authorization: bearer, wantStatus: 200},
		{name: "entitlements over user limit", method: "GET", uri: "/v1/entitlements", authorization: bearer, wantStatus: 429},
		{name: "check over user limit", method: "GET", uri: "/v1/entitlements/check?feature=sync", authorization: bearer, wantStatus: 429},
	})
}

func TestOpenAPIIPLimitOff(t *testing.T) {
	s := openapiStart(t, func(cfg *configs.Config) {
		cfg.RateLimit.IPPerMinute = 0
	})

	openapiCheck(t, s, []openapiRequest{
		{name: "tiers without rate-limit headers", method: "GET", uri: "/v1/entitlements/tiers", wantStatus: 200},
	})
}

func TestOpenAPINotReady(t *testing.T) {
	s := openapiStart(t, nil)
	// A closed pool fails its ping at once, as an unreachable database would
	// after ready_timeout.
	if err := s.app.DB().Close(); err != nil {
		t.Fatalf("close database: %v", err)
	}

	openapiCheck(t, s, []openapiRequest{
		{name: "ready", method: "GET", uri: "/ready", wantStatus: 503},
		{name: "health", method: "GET", uri: "/health", wantStatus: 200},
	})
}
