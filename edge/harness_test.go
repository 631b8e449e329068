package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/edge/bearer"
	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/runtime/gcra"
)

// testStart is the fake clock's start, on a whole second.
var testStart = time.Unix(1_700_000_000, 0)

func testConfig() *configs.Config {
	return &configs.Config{
		Server: configs.Server{
			ReadTimeout:  5 * time.Second,
			WriteTimeout: 5 * time.Second,
			IdleTimeout:  5 * time.Second,
			MaxBodyBytes: 1024,
			StoreTimeout: 3 * time.Second,
		},
		Log:       configs.Log{Access: true},
		RateLimit: configs.RateLimit{IPPerMinute: 20, IPBurst: 20},
		Actors:    configs.Actors{AdmissionTimeout: time.Second},
	}
}

// fakeVerifier accepts the tokens in claims and rejects every other one.
type fakeVerifier struct {
	claims map[string]bearer.Claims
}

func (v *fakeVerifier) Verify(token string) (bearer.Claims, error) {
	if token == "unknown-kid-token" {
		return bearer.Claims{}, fmt.Errorf("verify token: %w", &bearer.UnknownKeyError{KeyID: "old-key-7"})
	}
	claims, ok := v.claims[token]
	if !ok {
		return bearer.Claims{}, fmt.Errorf("verify token: %w", bearer.ErrSignature)
	}
	return claims, nil
}

// fakeAdmitter admits every request with a Core-like limit unless err is set.
type fakeAdmitter struct {
	mu        sync.Mutex
	admission runtime.Admission
	err       error
	calls     int
}

func newFakeAdmitter() *fakeAdmitter {
	limit := gcra.Limit{Rate: 60, Period: time.Minute, Burst: 60}
	return &fakeAdmitter{admission: runtime.Admission{
		Entitlements: runtime.Entitlements{Tier: "core", TierName: "Core", Source: "default"},
		Limit:        limit,
		Decision:     gcra.Decision{Allowed: true, Remaining: 59, ResetAfter: 1500 * time.Millisecond},
	}}
}

func (a *fakeAdmitter) Admit(_ context.Context, userID, sessionID string) (runtime.Admission, error) {
	a.mu.Lock()
	defer a.mu.Unlock()

	a.calls++
	return a.admission, a.err
}

func (a *fakeAdmitter) callCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls
}

func (a *fakeAdmitter) set(admission runtime.Admission, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.admission = admission
	a.err = err
}

// fakeKV implements the GCRA of kv.Store in memory; its other methods are unused.
type fakeKV struct {
	mu   sync.Mutex
	tats map[string]time.Time
	err  error
}

func newFakeKV() *fakeKV { return &fakeKV{tats: map[string]time.Time{}} }

var errUnused = errors.New("not used by the edge")

func (k *fakeKV) Ping(context.Context) error { return nil }
func (k *fakeKV) Get(context.Context, string) ([]byte, bool, error) {
	return nil, false, errUnused
}
func (k *fakeKV) Set(context.Context, string, []byte, time.Duration) error { return errUnused }
func (k *fakeKV) SetNX(context.Context, string, []byte, time.Duration) (bool, error) {
	return false, errUnused
}
func (k *fakeKV) Delete(context.Context, ...string) error { return errUnused }
func (k *fakeKV) IncrBy(context.Context, string, int64, time.Duration) (int64, error) {
	return 0, errUnused
}
func (k *fakeKV) Publish(context.Context, string, []byte) error { return errUnused }
func (k *fakeKV) Subscribe(context.Context, string, func([]byte)) (func(), error) {
	return nil, errUnused
}
func (k *fakeKV) Close() error { return nil }

func (k *fakeKV) fail(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.err = err
}

func (k *fakeKV) GCRA(_ context.Context, key string, limit gcra.Limit, now time.Time) (gcra.Decision, error) {
	k.mu.Lock()
	defer k.mu.Unlock()

	if k.err != nil {
		return gcra.Decision{}, k.err
	}
	decision, tat := gcra.Decide(limit, k.tats[key], now)
	k.tats[key] = tat
	return decision, nil
}

// syncBuffer is a bytes.Buffer that the server's goroutines may write concurrently.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// harness is a Server with fake dependencies, served on 127.0.0.1.
type harness struct {
	t        *testing.T
	cfg      *configs.Config
	server   *Server
	baseURL  string
	addr     string
	logs     *syncBuffer
	clock    *clock.Fake
	verifier *fakeVerifier
	admitter *fakeAdmitter
	kv       *fakeKV
	gates    *runtime.Gates
	client   *http.Client
}

const (
	testToken  = "good-token"
	testUserID = "usr_1"
)

// newHarness builds the server from cfg (testConfig when nil) without serving it.
func newHarness(t *testing.T, cfg *configs.Config) *harness {
	t.Helper()
	if cfg == nil {
		cfg = testConfig()
	}

	h := &harness{
		t:        t,
		cfg:      cfg,
		logs:     &syncBuffer{},
		clock:    clock.NewFake(testStart),
		verifier: &fakeVerifier{claims: map[string]bearer.Claims{testToken: {Subject: testUserID, SessionID: "ses_1", KeyID: "k1"}}},
		admitter: newFakeAdmitter(),
		kv:       newFakeKV(),
		gates:    &runtime.Gates{},
		client:   &http.Client{Timeout: 10 * time.Second},
	}
	h.server = New(Options{
		Config:   cfg,
		Logger:   slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Verifier: h.verifier,
		Admitter: h.admitter,
		KV:       h.kv,
		Clock:    h.clock,
		Gates:    h.gates,
	})
	return h
}

// start mounts routes, opens the gates of their modules and serves on a loopback port.
func (h *harness) start(routes ...Route) *harness {
	h.t.Helper()
	if err := h.server.Mount(routes...); err != nil {
		h.t.Fatalf("mount: %v", err)
	}
	for _, r := range routes {
		if r.Module != "" {
			h.gates.Get(r.Module).Open()
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatalf("listen: %v", err)
	}
	h.addr = ln.Addr().String()
	h.baseURL = "http://" + h.addr

	done := make(chan error, 1)
	go func() { done <- h.server.Serve(ln) }()
	h.t.Cleanup(func() {
		h.client.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.server.Shutdown(ctx); err != nil {
			h.t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			h.t.Errorf("serve: %v", err)
		}
	})
	return h
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// apiError is the error member of the envelope.
type apiError struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

type envelope struct {
	Data  json.RawMessage `json:"data"`
	Error *apiError       `json:"error"`
}

// do sends one request; headers alternate names and values.
func (h *harness) do(method, path, body string, headers ...string) response {
	h.t.Helper()

	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.baseURL+path, reader)
	if err != nil {
		h.t.Fatalf("new request: %v", err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}

	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("read body of %s %s: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// envelope decodes the body, failing the test unless it is JSON with the JSON content type.
func (r response) envelope(t *testing.T) envelope {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var env envelope
	if err := json.Unmarshal(r.body, &env); err != nil {
		t.Fatalf("body %q is not an envelope: %v", r.body, err)
	}
	return env
}

// apiError decodes the body and returns its error member, failing the test when there is none.
func (r response) apiError(t *testing.T) *apiError {
	t.Helper()
	env := r.envelope(t)
	if env.Error == nil {
		t.Fatalf("body %s has no error", r.body)
	}
	return env.Error
}

func okHandler(req *Request) error {
	return req.JSON(http.StatusOK, map[string]string{"ok": "yes"})
}
