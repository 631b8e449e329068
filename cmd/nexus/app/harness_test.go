package app_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/cmd/nexus/app"
	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/edge/openapi"
	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/storage"
	"github.com/nexus-suite/nexus/storage/storagetest"
)

// engine selects the storage behind a test server.
type engine string

const (
	engineSQLite   engine = "sqlite"
	enginePostgres engine = "postgres" // PostgreSQL and Redis
)

// forEachEngine runs fn as one subtest per engine.
func forEachEngine(t *testing.T, fn func(t *testing.T, e engine)) {
	t.Run(string(engineSQLite), func(t *testing.T) { fn(t, engineSQLite) })
	t.Run(string(enginePostgres), func(t *testing.T) { fn(t, enginePostgres) })
}

// testServer is a real server on a loopback port with a fake clock.
type testServer struct {
	app   *app.App
	url   string
	clock *clock.Fake
	cfg   *configs.Config
	logs  *logBuffer
	stop  func()
}

type serverOption struct {
	engine engine
	config func(cfg *configs.Config)
	routes []edge.Route
}

// startServer starts the app in process on 127.0.0.1 and stops it at cleanup.
func startServer(t *testing.T, opt serverOption) *testServer {
	t.Helper()

	cfg, err := configs.Load("", nil)
	if err != nil {
		t.Fatalf("load default config: %v", err)
	}
	cfg.DataDir = t.TempDir()
	cfg.Server.Listen = "127.0.0.1:0"
	// The listener comes first, so that links and redirects that the
	// server builds from modules.auth.public_url point at it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	if cfg.Modules["auth"] != nil {
		cfg.Modules["auth"]["public_url"] = "http://" + ln.Addr().String()
	}
	cfg.Server.ShutdownTimeout = 5 * time.Second
	if opt.engine == enginePostgres {
		cfg.Database.URL = storagetest.PostgresURL(t)
		cfg.Redis.URL = storagetest.Redis(t)
		cfg.Redis.Prefix = storagetest.Prefix(t)
	}
	if opt.config != nil {
		opt.config(cfg)
	}

	fake := clock.NewFake(time.Now().Truncate(time.Second))
	logs := &logBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	ctx, cancel := context.WithCancel(context.Background())
	server, err := app.New(ctx, app.Options{Config: cfg, Logger: logger, Clock: fake, Routes: opt.routes})
	if err != nil {
		cancel()
		ln.Close()
		t.Fatalf("start app: %v", err)
	}

	served := make(chan error, 1)
	go func() { served <- server.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-served; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)

	return &testServer{app: server, url: "http://" + ln.Addr().String(), clock: fake, cfg: cfg, logs: logs, stop: stop}
}

// session creates a user and a live session and returns a signed access token for it.
func (s *testServer) session(t *testing.T) (userID, sessionID, token string) {
	t.Helper()
	userID, sessionID = "usr_"+randomID(t), "ses_"+randomID(t)
	now := s.clock.Now()

	sessions := storage.NewSessions(s.app.DB())
	ctx := context.Background()
	if err := sessions.InsertUser(ctx, userID, userID+"@example.com", now); err != nil {
		t.Fatalf("insert user: %v", err)
	}
	record := storage.SessionRecord{ID: sessionID, UserID: userID, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	if err := sessions.Insert(ctx, record); err != nil {
		t.Fatalf("insert session: %v", err)
	}
	return userID, sessionID, s.token(t, userID, sessionID, nil)
}

// token signs an access token for the session; extra overrides claims.
func (s *testServer) token(t *testing.T, userID, sessionID string, extra map[string]any) string {
	t.Helper()
	now := s.clock.Now()
	claims := map[string]any{
		"sub": userID, "sid": sessionID, "jti": randomID(t),
		"iss": s.cfg.Tokens.Issuer, "aud": s.cfg.Tokens.Audience,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(s.cfg.Tokens.AccessTTL).Unix(),
	}
	for key, value := range extra {
		claims[key] = value
	}
	token, err := s.app.Keys().Sign(claims)
	if err != nil {
		t.Fatalf("sign token: %v", err)
	}
	return token
}

// response is a finished HTTP exchange with its body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

// String returns the body as text.
func (r response) String() string { return string(r.body) }

// envelopeError decodes {"error": {...}} from the body.
func (r response) envelopeError(t *testing.T) edge.Error {
	t.Helper()
	var envelope struct {
		Error struct {
			Code    string         `json:"code"`
			Message string         `json:"message"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.body, &envelope); err != nil {
		t.Fatalf("decode error envelope %q: %v", r.body, err)
	}
	return edge.Error{Status: r.status, Code: envelope.Error.Code, Message: envelope.Error.Message, Details: envelope.Error.Details}
}

// data decodes {"data": ...} into dst.
func (r response) data(t *testing.T, dst any) {
	t.Helper()
	var envelope struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(r.body, &envelope); err != nil {
		t.Fatalf("decode data envelope %q: %v", r.body, err)
	}
	if err := json.Unmarshal(envelope.Data, dst); err != nil {
		t.Fatalf("decode data %q: %v", envelope.Data, err)
	}
}

// do sends one request; headers alternate names and values.
func (s *testServer) do(t *testing.T, method, path, body string, headers ...string) response {
	t.Helper()
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url+path, reader)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := testClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body of %s %s: %v", method, path, err)
	}

	// Every response from a documented route must match the OpenAPI
	// document. The routes under /v1/test/ exist only in these tests.
	if !strings.HasPrefix(path, "/v1/test/") {
		if err := documentValidator(t).Check(method, path, res.StatusCode, res.Header, data); err != nil {
			t.Errorf("%s %s answered %d outside the OpenAPI document: %v\n%s", method, path, res.StatusCode, err, data)
		}
	}
	return response{status: res.StatusCode, header: res.Header, body: data}
}

// testClient bounds each request, so a server that never responds fails the
// test that sent the request, naming it, instead of stalling the package.
// It does not follow redirects, so tests see the server's own responses.
var testClient = &http.Client{
	Timeout:       time.Minute,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

var (
	validatorOnce sync.Once
	validator     *openapi.Validator
	validatorErr  error
)

func documentValidator(t *testing.T) *openapi.Validator {
	t.Helper()
	validatorOnce.Do(func() { validator, validatorErr = openapi.NewValidator() })
	if validatorErr != nil {
		t.Fatalf("load the OpenAPI document: %v", validatorErr)
	}
	return validator
}

func (s *testServer) get(t *testing.T, path, token string) response {
	t.Helper()
	if token == "" {
		return s.do(t, "GET", path, "")
	}
	return s.do(t, "GET", path, "", "Authorization", "Bearer "+token)
}

func randomID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random id: %v", err)
	}
	return hex.EncodeToString(b)
}

// logBuffer collects log output for assertions; it is safe for concurrent writes.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
