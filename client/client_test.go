package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/client"
	"github.com/nexus-suite/nexus/runtime/clock"
)

// scripted is a test server that responds to each request with the next
// status of a script, then 200, and counts requests by path.
type scripted struct {
	mu       sync.Mutex
	statuses []int
	headers  map[int]http.Header
	calls    map[string]int
	server   *httptest.Server
}

func newScripted(t *testing.T, statuses ...int) *scripted {
	t.Helper()
	s := &scripted{statuses: statuses, calls: map[string]int{}, headers: map[int]http.Header{}}
	s.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.calls[r.URL.Path]++
		status := http.StatusOK
		if len(s.statuses) > 0 {
			status, s.statuses = s.statuses[0], s.statuses[1:]
		}
		for name, values := range s.headers[status] {
			w.Header()[name] = values
		}
		s.mu.Unlock()
		writeStatus(w, status)
	}))
	t.Cleanup(s.server.Close)
	return s
}

func writeStatus(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Request-Id", "req-1")
	w.WriteHeader(status)
	if status < 400 {
		_, _ = w.Write([]byte(`{"data":{"ok":true}}`))
		return
	}
	code := map[int]string{401: "UNAUTHORIZED", 404: "NOT_FOUND", 429: "RATE_LIMITED"}[status]
	if code == "" {
		code = "INTERNAL_ERROR"
	}
	fmt.Fprintf(w, `{"error":{"code":%q,"message":"scripted %d","details":{"n":1}}}`, code, status)
}

func (s *scripted) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path]
}

// recordingClock is a fake clock that records the waits it is asked for
// and fires them at once, so retries run without sleeping.
type recordingClock struct {
	*clock.Fake
	mu     sync.Mutex
	delays []time.Duration
}

func (c *recordingClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.mu.Lock()
	c.delays = append(c.delays, d)
	c.mu.Unlock()
	timer := c.Fake.AfterFunc(d, f)
	go c.Fake.Advance(d)
	return timer
}

func (c *recordingClock) waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.delays...)
}

func newClient(t *testing.T, url string, c clock.Clock, jitter float64) *client.Client {
	t.Helper()
	cl, err := client.New(client.Options{
		BaseURL: url, Clock: c, BaseDelay: 100 * time.Millisecond, MaxDelay: 300 * time.Millisecond,
		Jitter: func() float64 { return jitter }, Tokens: client.Tokens{AccessToken: "access-1", RefreshToken: "refresh-1"},
	})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return cl
}

func TestRetries5xxForSafeRequests(t *testing.T) {
	server := newScripted(t, 503, 502, 500)
	clk := &recordingClock{Fake: clock.NewFake(time.Unix(0, 0))}
	cl := newClient(t, server.server.URL, clk, 0.5)

	if err := cl.Call(context.Background(), client.Request{Method: "GET", Path: "/v1/thing"}, nil); err != nil {
		t.Fatalf("GET after three 5xx: %v", err)
	}
	if got := server.count("/v1/thing"); got != 4 {
		t.Errorf("attempts = %d, want 4 (one and three retries)", got)
	}
	// Full jitter at 0.5 of 100ms, 200ms, then 400ms capped to 300ms.
	want := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond}
	if got := clk.waits(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
}

func TestGivesUpAfterThreeRetries(t *testing.T) {
	server := newScripted(t, 500, 500, 500, 500, 500)
	clk := &recordingClock{Fake: clock.NewFake(time.Unix(0, 0))}
	cl := newClient(t, server.server.URL, clk, 0.999)

	err := cl.Call(context.Background(), client.Request{Method: "DELETE", Path: "/v1/thing"}, nil)
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 500 || apiErr.Code != "INTERNAL_ERROR" || apiErr.RequestID != "req-1" {
		t.Fatalf("error = %v, want the 500 as *client.Error with its code and request id", err)
	}
	if apiErr.Details["n"] != float64(1) {
		t.Errorf("details = %v, want the envelope's details", apiErr.Details)
	}
	if got := server.count("/v1/thing"); got != 4 {
		t.Errorf("attempts = %d, want 4", got)
	}
	for i, wait := range clk.waits() {
		ceiling := min(100*time.Millisecond<<i, 300*time.Millisecond)
		if wait < 0 || wait > ceiling {
			t.Errorf("wait %d = %s, want within [0, %s]", i, wait, ceiling)
		}
	}
}

func TestPostRetriesOnlyWithIdempotencyKey(t *testing.T) {
	server := newScripted(t, 500, 500)
	clk := &recordingClock{Fake: clock.NewFake(time.Unix(0, 0))}
	cl := newClient(t, server.server.URL, clk, 0.5)

	err := cl.Call(context.Background(), client.Request{Method: "POST", Path: "/v1/plain", Body: map[string]int{"a": 1}}, nil)
	if !client.IsCode(err, "INTERNAL_ERROR") {
		t.Errorf("POST without a key: error = %v, want the 500", err)
	}
	if got := server.count("/v1/plain"); got != 1 {
		t.Errorf("POST without a key sent %d times, want 1", got)
	}

	err = cl.Call(context.Background(), client.Request{Method: "POST", Path: "/v1/keyed", Body: map[string]int{"a": 1}, IdempotencyKey: "k-1"}, nil)
	if err != nil {
		t.Errorf("POST with a key after one 500: %v", err)
	}
	if got := server.count("/v1/keyed"); got != 2 {
		t.Errorf("POST with a key sent %d times, want 2", got)
	}
}

func TestWaitsForRetryAfter(t *testing.T) {
	server := newScripted(t, 429)
	server.headers[429] = http.Header{"Retry-After": {"7"}}
	fake := clock.NewFake(time.Unix(0, 0))
	cl := newClient(t, server.server.URL, fake, 0.5)

	done := make(chan error, 1)
	go func() {
		done <- cl.Call(context.Background(), client.Request{Method: "POST", Path: "/v1/limited"}, nil)
	}()

	waitFor(t, func() bool { return fake.Pending() == 1 })
	fake.Advance(6999 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("call returned %v before Retry-After passed", err)
	case <-time.After(50 * time.Millisecond):
	}
	if got := server.count("/v1/limited"); got != 1 {
		t.Errorf("attempts before Retry-After = %d, want 1", got)
	}
	fake.Advance(time.Millisecond)
	if err := <-done; err != nil {
		t.Fatalf("call after Retry-After: %v", err)
	}
	if got := server.count("/v1/limited"); got != 2 {
		t.Errorf("attempts = %d, want 2", got)
	}
}

func TestCancelStopsWaiting(t *testing.T) {
	server := newScripted(t, 503, 503, 503, 503)
	fake := clock.NewFake(time.Unix(0, 0))
	cl := newClient(t, server.server.URL, fake, 0.5)
	ctx, cancel := context.WithCancel(context.Background())

	done := make(chan error, 1)
	go func() { done <- cl.Call(ctx, client.Request{Method: "GET", Path: "/v1/slow"}, nil) }()
	waitFor(t, func() bool { return fake.Pending() == 1 })
	cancel()

	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("call kept waiting after its context was cancelled")
	}
}

// authServer responds with 401 to any token but the current one and rotates
// tokens at /v1/auth/refresh.
type authServer struct {
	server    *httptest.Server
	refreshes atomic.Int32
	// refreshStatus is the status of refresh requests; 200 rotates.
	refreshStatus int
	current       atomic.Value
}

func newAuthServer(t *testing.T, refreshStatus int) *authServer {
	t.Helper()
	a := &authServer{refreshStatus: refreshStatus}
	a.current.Store("access-1")
	a.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/auth/refresh" {
			n := a.refreshes.Add(1)
			time.Sleep(20 * time.Millisecond) // keep the refresh in flight while others arrive
			if a.refreshStatus != http.StatusOK {
				writeStatus(w, a.refreshStatus)
				return
			}
			next := fmt.Sprintf("access-%d", n+1)
			a.current.Store(next)
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{
				"access_token": next, "refresh_token": fmt.Sprintf("refresh-%d", n+1), "expires_in": 900,
			}})
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+a.current.Load().(string) {
			writeStatus(w, http.StatusUnauthorized)
			return
		}
		writeStatus(w, http.StatusOK)
	}))
	t.Cleanup(a.server.Close)
	a.current.Store("access-expired") // the client's access-1 is stale
	return a
}

func TestRefreshOnceAndRetry(t *testing.T) {
	auth := newAuthServer(t, http.StatusOK)
	var saved []client.Tokens
	cl, err := client.New(client.Options{
		BaseURL: auth.server.URL, Tokens: client.Tokens{AccessToken: "access-1", RefreshToken: "refresh-1"},
		OnRefresh: func(tokens client.Tokens) error { saved = append(saved, tokens); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}

	if err := cl.Call(context.Background(), client.Request{Method: "GET", Path: "/v1/auth/me"}, nil); err != nil {
		t.Fatalf("call after a 401: %v", err)
	}
	if got := auth.refreshes.Load(); got != 1 {
		t.Errorf("refreshes = %d, want 1", got)
	}
	if len(saved) != 1 || saved[0].RefreshToken != "refresh-2" || cl.Tokens().AccessToken != "access-2" {
		t.Errorf("saved %+v, client holds %+v; want the rotated pair", saved, cl.Tokens())
	}
}

func TestFailedRefreshAsksToSignIn(t *testing.T) {
	auth := newAuthServer(t, http.StatusUnauthorized)
	cl, err := client.New(client.Options{BaseURL: auth.server.URL, Tokens: client.Tokens{AccessToken: "access-1", RefreshToken: "refresh-1"}})
	if err != nil {
		t.Fatal(err)
	}

	err = cl.Call(context.Background(), client.Request{Method: "GET", Path: "/v1/auth/me"}, nil)
	if !errors.Is(err, client.ErrSignInRequired) || !strings.Contains(err.Error(), "sign in again") {
		t.Errorf("error = %v, want ErrSignInRequired telling the user to sign in again", err)
	}
	if got := auth.refreshes.Load(); got != 1 {
		t.Errorf("refreshes = %d, want 1", got)
	}
}

func TestConcurrent401sShareOneRefresh(t *testing.T) {
	auth := newAuthServer(t, http.StatusOK)
	cl, err := client.New(client.Options{BaseURL: auth.server.URL, Tokens: client.Tokens{AccessToken: "access-1", RefreshToken: "refresh-1"}})
	if err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- cl.Call(context.Background(), client.Request{Method: "GET", Path: "/v1/auth/me"}, nil)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("call: %v", err)
		}
	}
	if got := auth.refreshes.Load(); got != 1 {
		t.Errorf("refreshes = %d for 20 concurrent 401s, want 1", got)
	}
}

func waitFor(t *testing.T, condition func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !condition() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
