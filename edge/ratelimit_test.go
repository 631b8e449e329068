package edge

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func loginRoute() Route {
	return Route{Method: "POST", Path: "/v1/auth/login", IPLimited: true, Handler: func(req *Request) error {
		return req.JSON(http.StatusOK, nil)
	}}
}

func TestIPLimitRejects21st(t *testing.T) {
	h := newHarness(t, nil).start(loginRoute())

	for i := 1; i <= 20; i++ {
		if resp := h.do("POST", "/v1/auth/login", ""); resp.status != http.StatusOK {
			t.Fatalf("request %d: status = %d, want 200", i, resp.status)
		}
	}
	resp := h.do("POST", "/v1/auth/login", "")

	if resp.status != http.StatusTooManyRequests {
		t.Fatalf("21st request: status = %d, want 429", resp.status)
	}
	if code := resp.apiError(t).Code; code != CodeRateLimited {
		t.Errorf("code = %q, want %q", code, CodeRateLimited)
	}
	if got := resp.header.Get("Retry-After"); got != "3" {
		t.Errorf("Retry-After = %q, want 3 (one 20/min interval)", got)
	}
	if got := resp.header.Get("RateLimit-Policy"); got != "20;w=60;burst=20" {
		t.Errorf("RateLimit-Policy = %q, want 20;w=60;burst=20", got)
	}
	if got := resp.header.Get("X-RateLimit-Remaining"); got != "0" {
		t.Errorf("X-RateLimit-Remaining = %q, want 0", got)
	}
}

func TestIPLimitRefillsWithClock(t *testing.T) {
	h := newHarness(t, nil).start(loginRoute())
	for range 21 {
		h.do("POST", "/v1/auth/login", "")
	}

	h.clock.Advance(3 * time.Second)
	resp := h.do("POST", "/v1/auth/login", "")

	if resp.status != http.StatusOK {
		t.Errorf("status after one interval = %d, want 200", resp.status)
	}
}

func TestIPLimitPerClientBehindProxy(t *testing.T) {
	cfg := testConfig()
	cfg.Server.TrustedProxies = []string{"127.0.0.1/32"}
	h := newHarness(t, cfg).start(loginRoute())

	for range 20 {
		h.do("POST", "/v1/auth/login", "", "X-Forwarded-For", "203.0.113.1")
	}
	first := h.do("POST", "/v1/auth/login", "", "X-Forwarded-For", "203.0.113.1")
	other := h.do("POST", "/v1/auth/login", "", "X-Forwarded-For", "203.0.113.2")
	// A client that forges an entry on the left is still counted by the
	// entry the proxy appended.
	forged := h.do("POST", "/v1/auth/login", "", "X-Forwarded-For", "198.51.100.9, 203.0.113.1")

	if first.status != http.StatusTooManyRequests {
		t.Errorf("21st request of 203.0.113.1: status = %d, want 429", first.status)
	}
	if other.status != http.StatusOK {
		t.Errorf("first request of 203.0.113.2: status = %d, want 200", other.status)
	}
	if forged.status != http.StatusTooManyRequests {
		t.Errorf("forged left entry: status = %d, want 429", forged.status)
	}
}

func TestForwardedForIgnoredWithoutTrustedProxy(t *testing.T) {
	h := newHarness(t, nil).start(loginRoute())

	for i := range 20 {
		h.do("POST", "/v1/auth/login", "", "X-Forwarded-For", "203.0.113."+string(rune('0'+i%10)))
	}
	resp := h.do("POST", "/v1/auth/login", "", "X-Forwarded-For", "198.51.100.1")

	if resp.status != http.StatusTooManyRequests {
		t.Errorf("status = %d, want 429 because every request came from 127.0.0.1", resp.status)
	}
}

func TestIPLimitFailsOpen(t *testing.T) {
	h := newHarness(t, nil).start(loginRoute())
	h.kv.fail(errors.New("connection refused"))

	resp := h.do("POST", "/v1/auth/login", "")

	if resp.status != http.StatusOK {
		t.Errorf("status = %d, want 200 while the KV store fails", resp.status)
	}
	if !strings.Contains(h.logs.String(), "connection refused") {
		t.Error("log lacks the KV error")
	}
}

func TestIPRejectionsCounted(t *testing.T) {
	h := newHarness(t, nil)
	h.start(loginRoute(), Route{Method: "GET", Path: "/metrics", Handler: h.server.Metrics().Handler()})
	for range 22 {
		h.do("POST", "/v1/auth/login", "")
	}

	resp := h.do("GET", "/metrics", "")

	if want := `nexus_rate_limit_rejections_total{scope="ip"} 2`; !strings.Contains(string(resp.body), want) {
		t.Errorf("metrics lack %s", want)
	}
}

func TestClientIP(t *testing.T) {
	trusted, err := parseTrustedProxies([]string{"10.0.0.0/8", "192.0.2.7"})
	if err != nil {
		t.Fatalf("parse trusted proxies: %v", err)
	}
	cases := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"DirectClient", "198.51.100.1", nil, "198.51.100.1"},
		{"DirectClientForgesHeader", "198.51.100.1", []string{"203.0.113.5"}, "198.51.100.1"},
		{"ProxyWithoutHeader", "10.1.2.3", nil, "10.1.2.3"},
		{"OneProxy", "10.1.2.3", []string{"203.0.113.5"}, "203.0.113.5"},
		{"ProxyChain", "10.1.2.3", []string{"203.0.113.5, 192.0.2.7, 10.9.9.9"}, "203.0.113.5"},
		{"ForgedLeftEntry", "10.1.2.3", []string{"1.1.1.1, 203.0.113.5"}, "203.0.113.5"},
		{"TwoHeaders", "10.1.2.3", []string{"1.1.1.1", "203.0.113.5"}, "203.0.113.5"},
		{"AllTrusted", "10.1.2.3", []string{"10.4.4.4"}, "10.1.2.3"},
		{"Garbage", "10.1.2.3", []string{"not-an-ip"}, "10.1.2.3"},
		{"IPv6", "10.1.2.3", []string{"2001:db8::1"}, "2001:db8::1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var req fasthttp.Request
			for _, value := range tc.xff {
				req.Header.Add("X-Forwarded-For", value)
			}
			var ctx fasthttp.RequestCtx
			ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP(tc.remote), Port: 40000}, nil)

			got := clientIP(&ctx, trusted)

			if got != netip.MustParseAddr(tc.want) {
				t.Errorf("client IP = %v, want %s", got, tc.want)
			}
		})
	}
}
