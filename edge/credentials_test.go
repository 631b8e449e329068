package edge

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/runtime"
)

// credentialAdmitter is a fakeAdmitter that also admits requests without a
// session and records which kind of admission each request got.
type credentialAdmitter struct {
	*fakeAdmitter
	mu          sync.Mutex
	credentials []string
}

func (a *credentialAdmitter) AdmitCredential(ctx context.Context, userID string) (runtime.Admission, error) {
	a.mu.Lock()
	a.credentials = append(a.credentials, userID)
	a.mu.Unlock()
	return a.fakeAdmitter.Admit(ctx, userID, "")
}

func (a *credentialAdmitter) credentialUsers() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.credentials...)
}

// newCredentialHarness returns a harness whose admitter implements CredentialAdmitter.
func newCredentialHarness(t *testing.T) (*harness, *credentialAdmitter) {
	t.Helper()
	h := newHarness(t, nil)
	admitter := &credentialAdmitter{fakeAdmitter: h.admitter}
	h.server = New(Options{
		Config:   h.cfg,
		Logger:   slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Verifier: h.verifier,
		Admitter: admitter,
		KV:       h.kv,
		Clock:    h.clock,
		Gates:    h.gates,
	})
	return h, admitter
}

// moduleCredentials accepts "mod_good" for usr_9, rejects other tokens
// with the mod_ prefix and leaves the rest to the access-token check.
func moduleCredentials(_ *Request, token string) (string, error) {
	switch {
	case token == "mod_good":
		return "usr_9", nil
	case strings.HasPrefix(token, "mod_"):
		return "", errors.New("token revoked")
	default:
		return "", ErrNotCredential
	}
}

func credentialRoute(seen *Principal) Route {
	return Route{
		Method: "GET", Path: "/v1/tool", Authenticated: true, Credentials: moduleCredentials,
		Handler: func(r *Request) error {
			*seen = *r.Principal
			return okHandler(r)
		},
	}
}

func TestCredentialAdmitsWithoutSession(t *testing.T) {
	var seen Principal
	h, admitter := newCredentialHarness(t)
	h.start(credentialRoute(&seen))

	resp := h.do("GET", "/v1/tool", "", "Authorization", "Bearer mod_good")

	if resp.status != http.StatusOK {
		t.Fatalf("status = %d, want 200 (body %s)", resp.status, resp.body)
	}
	if seen.UserID != "usr_9" || seen.SessionID != "" {
		t.Errorf("principal = %q/%q, want usr_9 without a session", seen.UserID, seen.SessionID)
	}
	if got := admitter.credentialUsers(); len(got) != 1 || got[0] != "usr_9" {
		t.Errorf("credential admissions = %v, want [usr_9]", got)
	}
	if resp.header.Get("RateLimit-Policy") == "" {
		t.Error("RateLimit-Policy header is missing")
	}
}

func TestCredentialRejectedIs401(t *testing.T) {
	var seen Principal
	h, admitter := newCredentialHarness(t)
	h.start(credentialRoute(&seen))

	resp := h.do("GET", "/v1/tool", "", "Authorization", "Bearer mod_revoked")

	if resp.status != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401 (body %s)", resp.status, resp.body)
	}
	if code := resp.apiError(t).Code; code != CodeUnauthorized {
		t.Errorf("code = %s, want %s", code, CodeUnauthorized)
	}
	if got := admitter.credentialUsers(); len(got) != 0 {
		t.Errorf("credential admissions = %v, want none", got)
	}
}

func TestCredentialFallsBackToAccessToken(t *testing.T) {
	var seen Principal
	h, admitter := newCredentialHarness(t)
	h.start(credentialRoute(&seen))

	resp := h.do("GET", "/v1/tool", "", "Authorization", "Bearer "+testToken)

	if resp.status != http.StatusOK {
		t.Fatalf("status = %d, want 200 (body %s)", resp.status, resp.body)
	}
	if seen.UserID != testUserID || seen.SessionID != "ses_1" {
		t.Errorf("principal = %q/%q, want %s/ses_1", seen.UserID, seen.SessionID, testUserID)
	}
	if got := admitter.credentialUsers(); len(got) != 0 {
		t.Errorf("credential admissions = %v, want none", got)
	}
}

func TestMountRejectsCredentialsWithoutSupport(t *testing.T) {
	h := newHarness(t, nil)
	var seen Principal

	err := h.server.Mount(credentialRoute(&seen))
	if err == nil || !strings.Contains(err.Error(), "CredentialAdmitter") {
		t.Errorf("Mount error = %v, want one naming CredentialAdmitter", err)
	}

	unauthenticated := credentialRoute(&seen)
	unauthenticated.Authenticated = false
	unauthenticated.Path = "/v1/open"
	if err := h.server.Mount(unauthenticated); err == nil {
		t.Error("Mount accepted credentials on a route that is not authenticated")
	}
}

func TestAccessLogOfStreamedResponse(t *testing.T) {
	h := newHarness(t, nil).start(Route{
		Method: "GET", Path: "/v1/stream",
		Handler: func(r *Request) error {
			r.Ctx.SetContentType("text/plain")
			r.Ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
				for i := 0; i < 3; i++ {
					_, _ = w.WriteString("chunk\n")
					_ = w.Flush()
					time.Sleep(10 * time.Millisecond)
				}
			})
			return nil
		},
	})

	resp := h.do("GET", "/v1/stream", "")

	if resp.status != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.status)
	}
	if got := string(resp.body); got != "chunk\nchunk\nchunk\n" {
		t.Errorf("body = %q, want three chunks", got)
	}
	if !strings.Contains(h.logs.String(), `"streamed":true`) {
		t.Errorf("access log does not mark the streamed response:\n%s", h.logs.String())
	}
}
