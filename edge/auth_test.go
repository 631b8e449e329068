package edge

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/runtime/gcra"
)

func authRoute(seen *Principal) Route {
	return Route{Method: "GET", Path: "/v1/me", Authenticated: true, Handler: func(req *Request) error {
		if seen != nil && req.Principal != nil {
			*seen = *req.Principal
		}
		return okHandler(req)
	}}
}

func TestAuthRejects(t *testing.T) {
	cases := []struct {
		name          string
		authorization string
		challenge     string
	}{
		{"Missing", "", "Bearer"},
		{"WrongScheme", "Basic dXNlcjpwYXNz", "Bearer"},
		{"EmptyToken", "Bearer ", "Bearer"},
		{"TokenWithSpace", "Bearer a b", "Bearer"},
		{"BadToken", "Bearer forged", `Bearer error="invalid_token"`},
		{"UnknownKey", "Bearer unknown-kid-token", `Bearer error="invalid_token"`},
	}
	h := newHarness(t, nil).start(authRoute(nil))

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var resp response
			if tc.authorization == "" {
				resp = h.do("GET", "/v1/me", "")
			} else {
				resp = h.do("GET", "/v1/me", "", "Authorization", tc.authorization)
			}

			if resp.status != http.StatusUnauthorized {
				t.Errorf("status = %d, want 401", resp.status)
			}
			if got := resp.header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tc.challenge)
			}
			if code := resp.apiError(t).Code; code != CodeUnauthorized {
				t.Errorf("code = %q, want %q", code, CodeUnauthorized)
			}
			if resp.header.Get("RateLimit") != "" {
				t.Error("RateLimit header set before admission")
			}
		})
	}
	if calls := h.admitter.callCount(); calls != 0 {
		t.Errorf("admitter called %d times for rejected tokens", calls)
	}
}

func TestAuthLogsUnknownKeyAtWarn(t *testing.T) {
	h := newHarness(t, nil).start(authRoute(nil))

	h.do("GET", "/v1/me", "", "Authorization", "Bearer unknown-kid-token")

	logs := h.logs.String()
	if !strings.Contains(logs, `"level":"WARN"`) || !strings.Contains(logs, `"kid":"old-key-7"`) {
		t.Errorf("log lacks a warning with the kid:\n%s", logs)
	}
	if strings.Contains(logs, "unknown-kid-token") {
		t.Error("log contains the token")
	}
}

func TestAuthenticatedRequest(t *testing.T) {
	var seen Principal
	h := newHarness(t, nil).start(authRoute(&seen))

	resp := h.do("GET", "/v1/me", "", "Authorization", "bearer "+testToken)

	if resp.status != http.StatusOK {
		t.Fatalf("status = %d, want 200 (body %s)", resp.status, resp.body)
	}
	if seen.UserID != testUserID || seen.SessionID != "ses_1" {
		t.Errorf("principal = %s/%s, want %s/ses_1", seen.UserID, seen.SessionID, testUserID)
	}
	if seen.Entitlements.Tier != "core" {
		t.Errorf("entitlements tier = %q, want core", seen.Entitlements.Tier)
	}
}

func TestRateLimitHeadersOnSuccess(t *testing.T) {
	h := newHarness(t, nil).start(authRoute(nil))

	resp := h.do("GET", "/v1/me", "", "Authorization", "Bearer "+testToken)

	// The fake admitter reports 59 remaining, full again after 1.5s.
	want := map[string]string{
		"RateLimit-Policy":      "60;w=60;burst=60",
		"RateLimit":             "limit=60, remaining=59, reset=2",
		"X-RateLimit-Limit":     "60",
		"X-RateLimit-Remaining": "59",
		"X-RateLimit-Reset":     strconv.FormatInt(testStart.Unix()+2, 10),
	}
	for name, value := range want {
		if got := resp.header.Get(name); got != value {
			t.Errorf("%s = %q, want %q", name, got, value)
		}
	}
	if resp.header.Get("Retry-After") != "" {
		t.Error("Retry-After set on an admitted request")
	}
}

func TestAdmissionSessionEnded(t *testing.T) {
	h := newHarness(t, nil).start(authRoute(nil))
	h.admitter.set(runtime.Admission{}, runtime.ErrSessionEnded)

	resp := h.do("GET", "/v1/me", "", "Authorization", "Bearer "+testToken)

	if resp.status != http.StatusUnauthorized {
		t.Errorf("status = %d, want 401", resp.status)
	}
	if code := resp.apiError(t).Code; code != CodeUnauthorized {
		t.Errorf("code = %q, want %q", code, CodeUnauthorized)
	}
	if !strings.HasPrefix(resp.header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", resp.header.Get("WWW-Authenticate"))
	}
}

func TestAdmissionRateLimited(t *testing.T) {
	h := newHarness(t, nil).start(authRoute(nil))
	h.admitter.set(runtime.Admission{
		Limit:    gcra.Limit{Rate: 60, Period: time.Minute, Burst: 10},
		Decision: gcra.Decision{Allowed: false, RetryAfter: 1200 * time.Millisecond, ResetAfter: 10 * time.Second},
	}, runtime.ErrRateLimited)

	resp := h.do("GET", "/v1/me", "", "Authorization", "Bearer "+testToken)

	if resp.status != http.StatusTooManyRequests {
		t.Errorf("status = %d, want 429", resp.status)
	}
	if got := resp.header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After = %q, want 2 (1.2s rounded up)", got)
	}
	apiErr := resp.apiError(t)
	if apiErr.Code != CodeRateLimited {
		t.Errorf("code = %q, want %q", apiErr.Code, CodeRateLimited)
	}
	if apiErr.Details["retry_after"] != float64(2) {
		t.Errorf("details.retry_after = %v, want 2", apiErr.Details["retry_after"])
	}
	want := map[string]string{
		"RateLimit-Policy":      "60;w=60;burst=10",
		"RateLimit":             "limit=60, remaining=0, reset=10",
		"X-RateLimit-Remaining": "0",
		"X-RateLimit-Reset":     strconv.FormatInt(testStart.Unix()+10, 10),
	}
	for name, value := range want {
		if got := resp.header.Get(name); got != value {
			t.Errorf("%s = %q, want %q", name, got, value)
		}
	}
}

func TestAdmissionFailureIs500(t *testing.T) {
	h := newHarness(t, nil).start(authRoute(nil))
	h.admitter.set(runtime.Admission{}, errors.New("actor system stopped"))

	resp := h.do("GET", "/v1/me", "", "Authorization", "Bearer "+testToken)

	if resp.status != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", resp.status)
	}
	if !strings.Contains(h.logs.String(), "actor system stopped") {
		t.Error("log lacks the admission error")
	}
}
