package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/runtime"
)

// testRoutes are mounted only in tests: a strict JSON endpoint with a small
// body limit, a panicking handler and a slow one.
func testRoutes() []edge.Route {
	type echoInput struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	}
	return []edge.Route{
		{Method: "POST", Path: "/v1/test/echo", MaxBodyBytes: 1024, Handler: func(r *edge.Request) error {
			var input echoInput
			if err := r.Decode(&input); err != nil {
				return err
			}
			return r.JSON(http.StatusOK, input)
		}},
		{Method: "GET", Path: "/v1/test/panic", Handler: func(*edge.Request) error {
			panic("handler exploded on purpose")
		}},
		{Method: "GET", Path: "/v1/test/slow", Handler: func(r *edge.Request) error {
			time.Sleep(300 * time.Millisecond)
			return r.JSON(http.StatusOK, map[string]string{"status": "done"})
		}},
	}
}

func TestSystemEndpoints(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startServer(t, serverOption{engine: e})

		health := s.get(t, "/health", "")
		if health.status != http.StatusOK || !strings.Contains(string(health.body), `"status":"ok"`) {
			t.Errorf("/health = %d %s", health.status, health.body)
		}

		ready := s.get(t, "/ready", "")
		if ready.status != http.StatusOK {
			t.Errorf("/ready = %d %s", ready.status, ready.body)
		}
		var readiness struct {
			Status string `json:"status"`
			Checks map[string]struct {
				Status string `json:"status"`
				Engine string `json:"engine"`
			} `json:"checks"`
		}
		ready.data(t, &readiness)
		wantEngine := map[engine]string{engineSQLite: "sqlite", enginePostgres: "postgres"}[e]
		if readiness.Checks["database"].Engine != wantEngine {
			t.Errorf("database engine = %q, want %q", readiness.Checks["database"].Engine, wantEngine)
		}

		status := s.get(t, "/status", "")
		var page struct {
			Status struct {
				Indicator string `json:"indicator"`
			} `json:"status"`
			Components []struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"components"`
		}
		if err := json.Unmarshal(status.body, &page); err != nil {
			t.Fatalf("decode /status: %v", err)
		}
		if page.Status.Indicator != "none" {
			t.Errorf("indicator = %q, want none", page.Status.Indicator)
		}
		if registered := runtime.RegisteredModules(); len(page.Components) != len(registered) {
			t.Fatalf("components = %+v, want one per registered module %v", page.Components, registered)
		}
		for _, component := range page.Components {
			if component.Status != "operational" {
				t.Errorf("component %s = %s, want operational", component.ID, component.Status)
			}
		}

		jwks := s.get(t, "/.well-known/jwks.json", "")
		authJWKS := s.get(t, "/v1/auth/jwks", "")
		if jwks.status != http.StatusOK || string(jwks.body) != string(authJWKS.body) {
			t.Errorf("JWKS differ: %s vs %s", jwks.body, authJWKS.body)
		}
		if !strings.Contains(string(jwks.body), s.app.Keys().SigningKeyID()) {
			t.Errorf("JWKS %s lacks the signing kid", jwks.body)
		}

		openapi := s.get(t, "/v1/openapi.json", "")
		if openapi.status != http.StatusOK || !json.Valid(openapi.body) {
			t.Errorf("/v1/openapi.json = %d", openapi.status)
		}
	})
}

func TestMetricsExposition(t *testing.T) {
	s := startServer(t, serverOption{})
	_, _, token := s.session(t)
	s.get(t, "/v1/entitlements", token)
	s.get(t, "/nowhere", "")

	metrics := string(s.get(t, "/metrics", "").body)
	for _, want := range []string{
		`nexus_http_requests_total{method="GET",route="/v1/entitlements",status="200"} 1`,
		`route="unmatched",status="404"`,
		"nexus_http_request_duration_seconds_bucket",
		"nexus_rate_limit_rejections_total",
		"nexus_user_actors 1",
		"nexus_module_restarts_total",
		"nexus_db_pool_open_connections",
		"nexus_db_pool_max_open_connections",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestEdgeErrorsUseEnvelope(t *testing.T) {
	s := startServer(t, serverOption{routes: testRoutes()})

	cases := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantCode   string
		wantField  string
	}{
		{"unknown route", "GET", "/v1/nothing-here", "", 404, "NOT_FOUND", ""},
		{"wrong method", "DELETE", "/health", "", 405, "VALIDATION_ERROR", ""},
		{"malformed json", "POST", "/v1/test/echo", `{"name": "a",`, 400, "VALIDATION_ERROR", "body"},
		{"wrong type", "POST", "/v1/test/echo", `{"count": "three"}`, 400, "VALIDATION_ERROR", "count"},
		{"unknown field", "POST", "/v1/test/echo", `{"colour": "red"}`, 400, "VALIDATION_ERROR", "colour"},
		{"oversized body", "POST", "/v1/test/echo", `{"name": "` + strings.Repeat("x", 2048) + `"}`, 413, "QUOTA_EXCEEDED", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := s.do(t, tc.method, tc.path, tc.body, "Content-Type", "application/json")
			if res.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", res.status, tc.wantStatus, res.body)
			}
			apiErr := res.envelopeError(t)
			if apiErr.Code != tc.wantCode {
				t.Errorf("code = %q, want %q", apiErr.Code, tc.wantCode)
			}
			if tc.wantField != "" && apiErr.Details["field"] != tc.wantField {
				t.Errorf("details.field = %v, want %q", apiErr.Details["field"], tc.wantField)
			}
			if res.header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
		})
	}

	t.Run("body over the server limit", func(t *testing.T) {
		// The server's own limit is the largest route limit, such as the sync
		// write routes' 16 MiB; fasthttp responds from the Content-Length
		// before reading the body.
		largest := s.cfg.Server.MaxBodyBytes
		for _, route := range s.app.Routes() {
			largest = max(largest, route.MaxBodyBytes)
		}
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(s.url, "http://"), time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.Close()
		request := fmt.Sprintf("POST /v1/test/echo HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 2*largest)
		if _, err := conn.Write([]byte(request)); err != nil {
			t.Fatalf("write: %v", err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("read response: %v", err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status = %d, want 413 (%s)", res.StatusCode, body)
		}
		if !strings.Contains(string(body), `"code":"QUOTA_EXCEEDED"`) {
			t.Errorf("body = %s, want the QUOTA_EXCEEDED envelope", body)
		}
	})

	t.Run("valid body", func(t *testing.T) {
		res := s.do(t, "POST", "/v1/test/echo", `{"name":"nexus","count":3}`, "Content-Type", "application/json")
		if res.status != http.StatusOK || string(res.body) != `{"data":{"name":"nexus","count":3}}` {
			t.Errorf("echo = %d %s", res.status, res.body)
		}
	})
}

func TestPanicIsInternalError(t *testing.T) {
	s := startServer(t, serverOption{routes: testRoutes()})

	res := s.do(t, "GET", "/v1/test/panic", "", "X-Request-Id", "trace-me-42")
	if res.status != http.StatusInternalServerError {
		t.Fatalf("status = %d, want 500", res.status)
	}
	apiErr := res.envelopeError(t)
	if apiErr.Code != "INTERNAL_ERROR" {
		t.Errorf("code = %q, want INTERNAL_ERROR", apiErr.Code)
	}
	if strings.Contains(string(res.body), "exploded") {
		t.Errorf("body %s shows the panic value", res.body)
	}
	if res.header.Get("X-Request-Id") != "trace-me-42" {
		t.Errorf("X-Request-Id = %q, want the client's", res.header.Get("X-Request-Id"))
	}
	logs := s.logs.String()
	if !strings.Contains(logs, "handler exploded on purpose") || !strings.Contains(logs, "trace-me-42") {
		t.Error("the log lacks the panic value or the request id")
	}
}

func TestShutdownFinishesInFlightRequest(t *testing.T) {
	s := startServer(t, serverOption{routes: testRoutes()})

	var res response
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		res = s.get(t, "/v1/test/slow", "")
	}()
	time.Sleep(100 * time.Millisecond)
	s.stop()
	wg.Wait()

	if res.status != http.StatusOK {
		t.Fatalf("in-flight request = %d %s, want 200", res.status, res.body)
	}
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(s.url, "http://"), time.Second)
	if err == nil {
		conn.Close()
		t.Error("the listener still accepts connections after shutdown")
	}
}

func TestDisabledModuleRoutesAnswer404(t *testing.T) {
	s := startServer(t, serverOption{config: func(cfg *configs.Config) {
		cfg.Modules["entitlements"]["enabled"] = false
		cfg.Modules["billing"]["enabled"] = false
		cfg.Modules["sync"]["enabled"] = false
		cfg.Modules["mcp"]["enabled"] = false
		cfg.Modules["skills"]["enabled"] = false
	}})

	res := s.get(t, "/v1/entitlements/tiers", "")
	if res.status != http.StatusNotFound {
		t.Fatalf("status = %d, want 404", res.status)
	}
	apiErr := res.envelopeError(t)
	if !strings.Contains(apiErr.Message, "entitlements") || apiErr.Details["module"] != "entitlements" {
		t.Errorf("error = %+v, want it to name the module", apiErr)
	}

	var page struct {
		Components []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"components"`
	}
	if err := json.Unmarshal(s.get(t, "/status", "").body, &page); err != nil {
		t.Fatalf("decode /status: %v", err)
	}
	statuses := map[string]string{}
	for _, c := range page.Components {
		statuses[c.ID] = c.Status
	}
	if statuses["entitlements"] != "disabled" || statuses["auth"] != "operational" {
		t.Errorf("components = %v, want entitlements disabled and auth operational", statuses)
	}
}

func TestReloadRejectsMissingDependency(t *testing.T) {
	s := startServer(t, serverOption{})
	cfg := *s.cfg
	cfg.Modules = map[string]map[string]any{"auth": {"enabled": false}, "entitlements": {"enabled": true}}

	err := s.app.Manager().Apply(context.Background(), &cfg)
	if err == nil || !strings.Contains(err.Error(), "module entitlements requires module auth, which is disabled") {
		t.Fatalf("err = %v, want it to name both modules", err)
	}
	if res := s.get(t, "/v1/entitlements/tiers", ""); res.status != http.StatusOK {
		t.Errorf("tiers after the rejected config = %d, want 200", res.status)
	}
}
