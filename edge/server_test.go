package edge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestUnknownRouteEnvelope(t *testing.T) {
	h := newHarness(t, nil).start(Route{Method: "GET", Path: "/v1/items", Handler: okHandler})

	resp := h.do("GET", "/v1/nothing", "")

	if resp.status != http.StatusNotFound {
		t.Errorf("status = %d, want 404", resp.status)
	}
	apiErr := resp.apiError(t)
	if apiErr.Code != CodeNotFound {
		t.Errorf("code = %q, want %q", apiErr.Code, CodeNotFound)
	}
	if resp.header.Get("X-Request-Id") == "" {
		t.Error("X-Request-Id is missing")
	}
}

func TestTrailingSlashNotRedirected(t *testing.T) {
	h := newHarness(t, nil).start(Route{Method: "GET", Path: "/v1/items", Handler: okHandler})

	resp := h.do("GET", "/v1/items/", "")

	if resp.status != http.StatusNotFound {
		t.Errorf("status = %d, want 404", resp.status)
	}
	resp.apiError(t)
}

func TestMethodNotAllowed(t *testing.T) {
	h := newHarness(t, nil).start(
		Route{Method: "GET", Path: "/v1/items/{id}", Handler: okHandler},
		Route{Method: "DELETE", Path: "/v1/items/{id}", Handler: okHandler},
	)

	resp := h.do("POST", "/v1/items/7", `{}`, "Content-Type", "application/json")

	if resp.status != http.StatusMethodNotAllowed {
		t.Errorf("status = %d, want 405", resp.status)
	}
	if got := resp.header.Get("Allow"); got != "DELETE, GET" {
		t.Errorf("Allow = %q, want %q", got, "DELETE, GET")
	}
	apiErr := resp.apiError(t)
	if apiErr.Code != CodeValidation {
		t.Errorf("code = %q, want %q", apiErr.Code, CodeValidation)
	}
	if apiErr.Details["method"] != "POST" {
		t.Errorf("details.method = %v, want POST", apiErr.Details["method"])
	}
	if fmt.Sprint(apiErr.Details["allowed"]) != "[DELETE GET]" {
		t.Errorf("details.allowed = %v, want [DELETE GET]", apiErr.Details["allowed"])
	}
}

func TestJSONWritesDataEnvelope(t *testing.T) {
	h := newHarness(t, nil).start(Route{Method: "GET", Path: "/v1/items", Handler: okHandler})

	resp := h.do("GET", "/v1/items", "")

	if resp.status != http.StatusOK {
		t.Errorf("status = %d, want 200", resp.status)
	}
	if got := string(resp.body); got != `{"data":{"ok":"yes"}}` {
		t.Errorf("body = %s, want {\"data\":{\"ok\":\"yes\"}}", got)
	}
	resp.envelope(t)
}

func TestHandlerErrorKinds(t *testing.T) {
	cases := []struct {
		name    string
		err     error
		status  int
		code    string
		message string
	}{
		{"APIError", Conflict("email already registered"), 409, CodeConflict, "email already registered"},
		{"WrappedAPIError", fmt.Errorf("create user: %w", Conflict("taken")), 409, CodeConflict, "taken"},
		{"PlainError", errors.New("database is on fire"), 500, CodeInternal, "internal error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil).start(Route{Method: "GET", Path: "/v1/fail",
				Handler: func(*Request) error { return tc.err }})

			resp := h.do("GET", "/v1/fail", "")

			if resp.status != tc.status {
				t.Errorf("status = %d, want %d", resp.status, tc.status)
			}
			apiErr := resp.apiError(t)
			if apiErr.Code != tc.code {
				t.Errorf("code = %q, want %q", apiErr.Code, tc.code)
			}
			if apiErr.Message != tc.message {
				t.Errorf("message = %q, want %q", apiErr.Message, tc.message)
			}
		})
	}
}

func TestPlainErrorLoggedNotShown(t *testing.T) {
	h := newHarness(t, nil).start(Route{Method: "GET", Path: "/v1/fail",
		Handler: func(*Request) error { return errors.New("database is on fire") }})

	resp := h.do("GET", "/v1/fail", "")

	requestID := resp.header.Get("X-Request-Id")
	apiErr := resp.apiError(t)
	if apiErr.Details["request_id"] != requestID {
		t.Errorf("details.request_id = %v, want %q", apiErr.Details["request_id"], requestID)
	}
	if len(apiErr.Details) != 1 {
		t.Errorf("details = %v, want only request_id", apiErr.Details)
	}
	if strings.Contains(string(resp.body), "fire") {
		t.Errorf("body %s shows the cause", resp.body)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "database is on fire") {
		t.Error("log lacks the cause")
	}
	if !strings.Contains(logs, `"request_id":"`+requestID+`"`) {
		t.Error("log lacks the request id")
	}
}

func TestPanicAnswers500(t *testing.T) {
	h := newHarness(t, nil).start(Route{Method: "GET", Path: "/v1/panic",
		Handler: func(req *Request) error {
			req.Ctx.SetBodyString("partial")
			panic("boom in handler")
		}})

	resp := h.do("GET", "/v1/panic", "")

	if resp.status != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", resp.status)
	}
	requestID := resp.header.Get("X-Request-Id")
	if requestID == "" {
		t.Error("X-Request-Id is missing after a panic")
	}
	apiErr := resp.apiError(t)
	if apiErr.Code != CodeInternal {
		t.Errorf("code = %q, want %q", apiErr.Code, CodeInternal)
	}
	if apiErr.Message != "internal error" {
		t.Errorf("message = %q, want internal error", apiErr.Message)
	}
	if len(apiErr.Details) != 1 || apiErr.Details["request_id"] != requestID {
		t.Errorf("details = %v, want only request_id %q", apiErr.Details, requestID)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "boom in handler") {
		t.Error("log lacks the panic value")
	}
	if !strings.Contains(logs, "server_test.go") {
		t.Error("log lacks the stack")
	}
	if !strings.Contains(logs, `"request_id":"`+requestID+`"`) {
		t.Error("log lacks the request id")
	}
}

func TestRequestID(t *testing.T) {
	cases := []struct {
		name   string
		header string
		kept   bool
	}{
		{"Kept", "trace-abc_123", true},
		{"KeptAt64", strings.Repeat("a", 64), true},
		{"TooLong", strings.Repeat("a", 65), false},
		{"Space", "has space", false},
		{"NonASCII", "caf\u00e9", false},
		{"Absent", "", false},
	}
	h := newHarness(t, nil).start(Route{Method: "GET", Path: "/v1/items", Handler: okHandler})

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var resp response
			if tc.header == "" {
				resp = h.do("GET", "/v1/items", "")
			} else {
				resp = h.do("GET", "/v1/items", "", "X-Request-Id", tc.header)
			}

			got := resp.header.Get("X-Request-Id")
			if tc.kept && got != tc.header {
				t.Errorf("X-Request-Id = %q, want the client's %q", got, tc.header)
			}
			if !tc.kept && (got == "" || got == tc.header) {
				t.Errorf("X-Request-Id = %q, want a generated id", got)
			}
			if !validClientRequestID([]byte(got)) {
				t.Errorf("X-Request-Id %q is not a valid id", got)
			}
		})
	}
}

func TestGeneratedRequestIDsDiffer(t *testing.T) {
	ids := newRequestIDs()

	first, second := ids.next(), ids.next()

	if first == second {
		t.Errorf("two ids are both %q", first)
	}
}

func TestModuleGateClosed(t *testing.T) {
	h := newHarness(t, nil).start(Route{Method: "GET", Path: "/v1/sync/items", Module: "sync", Handler: okHandler})
	gate := h.gates.Get("sync")
	if err := gate.Close(context.Background()); err != nil {
		t.Fatalf("close gate: %v", err)
	}

	resp := h.do("GET", "/v1/sync/items", "")

	if resp.status != http.StatusNotFound {
		t.Errorf("status = %d, want 404", resp.status)
	}
	apiErr := resp.apiError(t)
	if apiErr.Message != "module sync is disabled" {
		t.Errorf("message = %q, want %q", apiErr.Message, "module sync is disabled")
	}
	if apiErr.Details["module"] != "sync" {
		t.Errorf("details.module = %v, want sync", apiErr.Details["module"])
	}
}

func TestModuleGateCountsInFlight(t *testing.T) {
	h := newHarness(t, nil)
	var inside int64
	h.start(Route{Method: "GET", Path: "/v1/sync/items", Module: "sync",
		Handler: func(req *Request) error {
			inside = h.gates.Get("sync").InFlight()
			return okHandler(req)
		}})

	resp := h.do("GET", "/v1/sync/items", "")

	if resp.status != http.StatusOK {
		t.Errorf("status = %d, want 200", resp.status)
	}
	if inside != 1 {
		t.Errorf("in flight during handler = %d, want 1", inside)
	}
	if got := h.gates.Get("sync").InFlight(); got != 0 {
		t.Errorf("in flight after request = %d, want 0", got)
	}
}

func TestBodyOverRouteLimit(t *testing.T) {
	h := newHarness(t, nil).start(
		Route{Method: "POST", Path: "/v1/small", MaxBodyBytes: 16, Handler: okHandler},
		Route{Method: "POST", Path: "/v1/large", MaxBodyBytes: 4096, Handler: okHandler},
	)

	resp := h.do("POST", "/v1/small", `{"name":"longer than sixteen bytes"}`, "Content-Type", "application/json")

	if resp.status != http.StatusRequestEntityTooLarge {
		t.Errorf("status = %d, want 413", resp.status)
	}
	apiErr := resp.apiError(t)
	if apiErr.Code != CodeQuotaExceeded {
		t.Errorf("code = %q, want %q", apiErr.Code, CodeQuotaExceeded)
	}
	if apiErr.Details["limit_type"] != "request_body_bytes" {
		t.Errorf("details.limit_type = %v, want request_body_bytes", apiErr.Details["limit_type"])
	}
	if apiErr.Details["limit"] != float64(16) {
		t.Errorf("details.limit = %v, want 16", apiErr.Details["limit"])
	}
}

// rawExchange writes request on a new connection and reads one response.
func rawExchange(t *testing.T, addr, request string) response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatalf("write request: %v", err)
	}

	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

func TestBodyOverServerLimit(t *testing.T) {
	h := newHarness(t, nil).start(
		Route{Method: "POST", Path: "/v1/large", MaxBodyBytes: 4096, Handler: okHandler},
	)

	// The headers announce more than any route accepts, so fasthttp rejects
	// the request before routing and the body is never sent.
	resp := rawExchange(t, h.addr, "POST /v1/large HTTP/1.1\r\nHost: x\r\n"+
		"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n")

	if resp.status != http.StatusRequestEntityTooLarge {
		t.Errorf("status = %d, want 413", resp.status)
	}
	apiErr := resp.apiError(t)
	if apiErr.Code != CodeQuotaExceeded {
		t.Errorf("code = %q, want %q", apiErr.Code, CodeQuotaExceeded)
	}
	if apiErr.Details["limit"] != float64(4096) {
		t.Errorf("details.limit = %v, want 4096, the largest route limit", apiErr.Details["limit"])
	}
	if resp.header.Get("X-Request-Id") == "" {
		t.Error("X-Request-Id is missing")
	}
}

func TestMalformedRequestEnvelope(t *testing.T) {
	h := newHarness(t, nil).start(Route{Method: "GET", Path: "/v1/items", Handler: okHandler})

	resp := rawExchange(t, h.addr, "GET /v1/items HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")

	if resp.status != http.StatusBadRequest {
		t.Errorf("status = %d, want 400", resp.status)
	}
	apiErr := resp.apiError(t)
	if apiErr.Code != CodeValidation {
		t.Errorf("code = %q, want %q", apiErr.Code, CodeValidation)
	}
}

func TestHandlerContext(t *testing.T) {
	h := newHarness(t, nil)
	var handlerCtx context.Context
	var deadline time.Time
	var hasDeadline bool
	h.start(Route{Method: "GET", Path: "/v1/items", Handler: func(req *Request) error {
		handlerCtx = req.Context()
		deadline, hasDeadline = handlerCtx.Deadline()
		if handlerCtx.Err() != nil {
			return fmt.Errorf("context already done: %w", handlerCtx.Err())
		}
		return okHandler(req)
	}})

	before := time.Now()
	resp := h.do("GET", "/v1/items", "")

	if resp.status != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.status)
	}
	if !hasDeadline {
		t.Error("handler context has no deadline")
	}
	if limit := before.Add(h.cfg.Server.StoreTimeout); deadline.After(limit.Add(time.Second)) {
		t.Errorf("deadline %v is later than the store timeout allows (%v)", deadline, limit)
	}
	select {
	case <-handlerCtx.Done():
	default:
		t.Error("handler context is not done after the handler returned")
	}
}

func TestMountDuplicateRoute(t *testing.T) {
	h := newHarness(t, nil)
	if err := h.server.Mount(Route{Method: "GET", Path: "/v1/items", Handler: okHandler}); err != nil {
		t.Fatalf("first mount: %v", err)
	}

	err := h.server.Mount(Route{Method: "GET", Path: "/v1/items", Handler: okHandler})

	if err == nil {
		t.Fatal("second mount of GET /v1/items succeeded")
	}
	if len(h.server.Routes()) != 1 {
		t.Errorf("routes = %d, want 1", len(h.server.Routes()))
	}
}

func TestMountRejectsBadRoutes(t *testing.T) {
	cases := []struct {
		name  string
		route Route
	}{
		{"NoMethod", Route{Path: "/v1/a", Handler: okHandler}},
		{"RelativePath", Route{Method: "GET", Path: "v1/a", Handler: okHandler}},
		{"NoHandler", Route{Method: "GET", Path: "/v1/a"}},
		{"NegativeBody", Route{Method: "GET", Path: "/v1/a", Handler: okHandler, MaxBodyBytes: -1}},
		{"ConflictingParam", Route{Method: "GET", Path: "/v1/items/{name}", Handler: okHandler}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			if err := h.server.Mount(Route{Method: "GET", Path: "/v1/items/{id}", Handler: okHandler}); err != nil {
				t.Fatalf("mount: %v", err)
			}

			if err := h.server.Mount(tc.route); err == nil {
				t.Errorf("mount of %+v succeeded", tc.route)
			}
		})
	}
}

func TestMountNeedsVerifier(t *testing.T) {
	server := New(Options{Config: testConfig()})

	err := server.Mount(Route{Method: "GET", Path: "/v1/me", Authenticated: true, Handler: okHandler})

	if err == nil {
		t.Error("authenticated route mounted without a verifier")
	}
}

func TestInvalidTrustedProxy(t *testing.T) {
	cfg := testConfig()
	cfg.Server.TrustedProxies = []string{"10.0.0.0/8", "not-a-cidr"}
	server := New(Options{Config: cfg})

	err := server.Mount(Route{Method: "GET", Path: "/v1/items", Handler: okHandler})

	if err == nil || !strings.Contains(err.Error(), "trusted_proxies") {
		t.Errorf("mount error = %v, want one naming trusted_proxies", err)
	}
}

func TestParamValue(t *testing.T) {
	h := newHarness(t, nil)
	h.start(Route{Method: "GET", Path: "/v1/items/{id}", Handler: func(req *Request) error {
		return req.JSON(http.StatusOK, map[string]string{"id": req.Param("id"), "other": req.Param("other")})
	}})

	resp := h.do("GET", "/v1/items/abc", "")

	if got := string(resp.body); got != `{"data":{"id":"abc","other":""}}` {
		t.Errorf("body = %s", got)
	}
}

func TestAccessLogLine(t *testing.T) {
	h := newHarness(t, nil).start(Route{Method: "GET", Path: "/v1/items/{id}", Authenticated: true, Handler: okHandler})

	resp := h.do("GET", "/v1/items/42?secret=query", "", "Authorization", "Bearer "+testToken)

	if resp.status != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.status)
	}
	logs := h.logs.String()
	for _, want := range []string{
		`"msg":"request"`, `"route":"/v1/items/{id}"`, `"path":"/v1/items/42"`, `"status":200`,
		`"user_id":"usr_1"`, `"remote_ip":"127.0.0.1"`, `"request_id":"` + resp.header.Get("X-Request-Id") + `"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("access log lacks %s", want)
		}
	}
	for _, secret := range []string{testToken, "secret=query"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains %q", secret)
		}
	}
}

func TestAccessLogOff(t *testing.T) {
	cfg := testConfig()
	cfg.Log.Access = false
	h := newHarness(t, cfg).start(Route{Method: "GET", Path: "/v1/items", Handler: okHandler})

	h.do("GET", "/v1/items", "")

	if strings.Contains(h.logs.String(), `"msg":"request"`) {
		t.Error("access log written with log.access off")
	}
}

func TestMetricsByRoutePattern(t *testing.T) {
	h := newHarness(t, nil)
	h.start(
		Route{Method: "GET", Path: "/v1/items/{id}", Handler: okHandler},
		Route{Method: "GET", Path: "/metrics", Handler: h.server.Metrics().Handler()},
	)

	h.do("GET", "/v1/items/1", "")
	h.do("GET", "/v1/items/2", "")
	h.do("GET", "/v1/missing/3", "")
	resp := h.do("GET", "/metrics", "")

	if resp.status != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.status)
	}
	if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want text/plain", ct)
	}
	text := string(resp.body)
	for _, want := range []string{
		`nexus_http_requests_total{method="GET",route="/v1/items/{id}",status="200"} 2`,
		`nexus_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`nexus_http_request_duration_seconds_count{method="GET",route="/v1/items/{id}"} 2`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(text, `route="/v1/items/1"`) {
		t.Error("metrics use a raw path as route label")
	}
}

func TestShutdownWaitsForInFlight(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	h := newHarness(t, nil).start(Route{Method: "GET", Path: "/v1/slow", Handler: func(req *Request) error {
		close(entered)
		<-release
		return okHandler(req)
	}})

	result := make(chan response, 1)
	go func() { result <- h.do("GET", "/v1/slow", "") }()
	<-entered

	shutdownDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutdownDone <- h.server.Shutdown(ctx)
	}()
	close(release)

	if resp := <-result; resp.status != http.StatusOK {
		t.Errorf("in-flight request status = %d, want 200", resp.status)
	}
	if err := <-shutdownDone; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}
