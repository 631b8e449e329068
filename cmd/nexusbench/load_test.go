package main

import (
	"context"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestPercentile(t *testing.T) {
	ten := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		name   string
		values []time.Duration
		p      float64
		want   time.Duration
	}{
		{"Empty", nil, 50, 0},
		{"Single", []time.Duration{7}, 99, 7},
		{"MedianOfTen", ten, 50, 5},
		{"P99OfTen", ten, 99, 10},
		{"P10OfTen", ten, 10, 1},
		{"P11OfTen", ten, 11, 2},
		{"P100OfTen", ten, 100, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.values, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.values, tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	stats := []connectionStats{
		{latencies: []time.Duration{3 * time.Millisecond, time.Millisecond}, bodyBytes: 200},
		{latencies: []time.Duration{2 * time.Millisecond, 4 * time.Millisecond}, errors: 2, firstError: "status 500: {}"},
	}

	got := summarize(stats, 2*time.Second)

	if got.Requests != 4 {
		t.Errorf("Requests = %d, want 4", got.Requests)
	}
	if got.RequestsPerSecond != 2 {
		t.Errorf("RequestsPerSecond = %v, want 2", got.RequestsPerSecond)
	}
	if got.P50Millis != 2 {
		t.Errorf("P50Millis = %v, want 2", got.P50Millis)
	}
	if got.P99Millis != 4 {
		t.Errorf("P99Millis = %v, want 4", got.P99Millis)
	}
	if got.MaxMillis != 4 {
		t.Errorf("MaxMillis = %v, want 4", got.MaxMillis)
	}
	if got.Errors != 2 {
		t.Errorf("Errors = %d, want 2", got.Errors)
	}
	if got.BodyBytes != 200 {
		t.Errorf("BodyBytes = %d, want 200", got.BodyBytes)
	}
	if got.FirstError != "status 500: {}" {
		t.Errorf("FirstError = %q, want the second connection's", got.FirstError)
	}
}

func TestHeaderListSet(t *testing.T) {
	tests := []struct {
		name      string
		value     string
		wantName  string
		wantValue string
		wantErr   bool
	}{
		{"Bearer", "Authorization: Bearer abc", "Authorization", "Bearer abc", false},
		{"ColonInValue", "X-Time: 12:30", "X-Time", "12:30", false},
		{"EmptyValue", "X-Empty:", "X-Empty", "", false},
		{"NoColon", "Authorization Bearer abc", "", "", true},
		{"EmptyName", " : value", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var headers headerList
			err := headers.Set(tt.value)
			if tt.wantErr {
				if err == nil {
					t.Errorf("Set(%q) accepted %v, want an error", tt.value, headers)
				}
				return
			}
			if err != nil {
				t.Fatalf("Set(%q): %v", tt.value, err)
			}
			if headers[0].Name != tt.wantName {
				t.Errorf("name = %q, want %q", headers[0].Name, tt.wantName)
			}
			if headers[0].Value != tt.wantValue {
				t.Errorf("value = %q, want %q", headers[0].Value, tt.wantValue)
			}
		})
	}
}

func TestLoadOptionsCheck(t *testing.T) {
	valid := loadOptions{Method: "GET", URL: "http://127.0.0.1:8080/v1/entitlements", Duration: time.Second, Connections: 1}
	tests := []struct {
		name    string
		change  func(*loadOptions)
		wantErr string
	}{
		{"Valid", func(*loadOptions) {}, ""},
		{"Post", func(o *loadOptions) { o.Method = "POST" }, ""},
		{"LowercaseMethod", func(o *loadOptions) { o.Method = "post" }, "-method"},
		{"UnknownMethod", func(o *loadOptions) { o.Method = "CONNECT" }, "-method"},
		{"EmptyMethod", func(o *loadOptions) { o.Method = "" }, "-method"},
		{"Localhost", func(o *loadOptions) { o.URL = "http://localhost:8080/" }, ""},
		{"HTTPS", func(o *loadOptions) { o.URL = "https://127.0.0.1:8443/" }, "scheme"},
		{"NoPort", func(o *loadOptions) { o.URL = "http://127.0.0.1/" }, "no port"},
		{"OtherHost", func(o *loadOptions) { o.URL = "http://10.0.0.1:8080/" }, "loopback"},
		{"AnyAddress", func(o *loadOptions) { o.URL = "http://0.0.0.0:8080/" }, "loopback"},
		{"Hostname", func(o *loadOptions) { o.URL = "http://example.com:80/" }, "loopback"},
		{"ZeroDuration", func(o *loadOptions) { o.Duration = 0 }, "-duration"},
		{"NegativeWarmup", func(o *loadOptions) { o.Warmup = -time.Second }, "-warmup"},
		{"NoConnections", func(o *loadOptions) { o.Connections = 0 }, "-connections"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := valid
			tt.change(&opts)
			err := opts.check()
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("check() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("check() = %v, want an error about %s", err, tt.wantErr)
			}
		})
	}
}

func TestLoadOptionsArgsRoundTrip(t *testing.T) {
	want := loadOptions{
		Method: "POST", URL: "http://127.0.0.1:8080/v1/auth/login",
		Headers:  []header{{Name: "Content-Type", Value: "application/json"}, {Name: "X-Time", Value: "12:30"}},
		Body:     `{"email":"a@example.com","password":"p w"}`,
		Duration: 3 * time.Second, Warmup: 500 * time.Millisecond, Connections: 4,
	}

	args := want.args()
	got, err := parseLoadOptions(args[1:])
	if err != nil {
		t.Fatalf("parseLoadOptions(%q): %v", args[1:], err)
	}

	if args[0] != "load" {
		t.Errorf("args start with %q, want the command load", args[0])
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parsed options = %+v, want %+v", got, want)
	}
}

func TestParseLoadOptionsDefaults(t *testing.T) {
	opts, err := parseLoadOptions([]string{"-url", "http://127.0.0.1:8080/"})
	if err != nil {
		t.Fatalf("parseLoadOptions: %v", err)
	}

	if opts.Method != "GET" {
		t.Errorf("Method = %q, want GET", opts.Method)
	}
	if opts.Body != "" {
		t.Errorf("Body = %q, want empty", opts.Body)
	}
	if opts.Connections != defaultConnections {
		t.Errorf("Connections = %d, want %d", opts.Connections, defaultConnections)
	}
}

func TestParseLoadOptionsRejectsMethod(t *testing.T) {
	_, err := parseLoadOptions([]string{"-url", "http://127.0.0.1:8080/", "-method", "TRACE"})

	if !errors.Is(err, errUsage) {
		t.Errorf("parseLoadOptions with -method TRACE = %v, want a usage error", err)
	}
}

// serveLoopback serves handler on a free loopback port until the test ends
// and returns its base URL.
func serveLoopback(t *testing.T, server *fasthttp.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	go func() { _ = server.Serve(ln) }()
	t.Cleanup(func() { _ = server.Shutdown() })
	return "http://" + ln.Addr().String()
}

func TestGenerateLoadBare(t *testing.T) {
	base := serveLoopback(t, newBareServer())
	opts := loadOptions{Method: "GET", URL: base + "/v1/entitlements", Duration: 300 * time.Millisecond, Warmup: 50 * time.Millisecond, Connections: 2}

	result, err := generateLoad(context.Background(), opts)
	if err != nil {
		t.Fatalf("generateLoad: %v", err)
	}

	if result.Requests == 0 {
		t.Error("Requests = 0, want some")
	}
	if result.Errors != 0 {
		t.Errorf("Errors = %d (first: %s), want 0", result.Errors, result.FirstError)
	}
	if result.BodyBytes != len(bareBody) {
		t.Errorf("BodyBytes = %d, want %d", result.BodyBytes, len(bareBody))
	}
	if result.P50Millis > result.P99Millis {
		t.Errorf("p50 %v ms is above p99 %v ms", result.P50Millis, result.P99Millis)
	}
	if result.Seconds != 0.3 {
		t.Errorf("Seconds = %v, want 0.3", result.Seconds)
	}
}

func TestGenerateLoadSendsHeaders(t *testing.T) {
	server := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Request.Header.Peek("Authorization")) != "Bearer secret" {
			ctx.SetStatusCode(fasthttp.StatusUnauthorized)
		}
	}}
	base := serveLoopback(t, server)
	opts := loadOptions{
		Method: "GET", URL: base + "/", Duration: 100 * time.Millisecond, Connections: 1,
		Headers: []header{{Name: "Authorization", Value: "Bearer secret"}},
	}

	result, err := generateLoad(context.Background(), opts)
	if err != nil {
		t.Fatalf("generateLoad: %v", err)
	}

	if result.Errors != 0 {
		t.Errorf("Errors = %d (first: %s), want 0", result.Errors, result.FirstError)
	}
}

func TestGenerateLoadSendsBody(t *testing.T) {
	const body = `{"email":"bench@example.com","password":"secret"}`
	server := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		switch {
		case !ctx.IsPost():
			ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
		case string(ctx.Request.Header.ContentType()) != "application/json":
			ctx.SetStatusCode(fasthttp.StatusUnsupportedMediaType)
		case string(ctx.PostBody()) != body:
			ctx.SetStatusCode(fasthttp.StatusBadRequest)
		}
	}}
	base := serveLoopback(t, server)
	opts := loadOptions{
		Method: "POST", URL: base + "/v1/auth/login", Body: body,
		Headers:  []header{{Name: "Content-Type", Value: "application/json"}},
		Duration: 100 * time.Millisecond, Connections: 2,
	}

	result, err := generateLoad(context.Background(), opts)
	if err != nil {
		t.Fatalf("generateLoad: %v", err)
	}

	if result.Requests == 0 {
		t.Error("Requests = 0, want some")
	}
	if result.Errors != 0 {
		t.Errorf("Errors = %d (first: %s), want 0", result.Errors, result.FirstError)
	}
}

func TestGenerateLoadCountsErrors(t *testing.T) {
	server := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(fasthttp.StatusInternalServerError)
		ctx.SetBodyString(`{"error":{"code":"internal"}}`)
	}}
	base := serveLoopback(t, server)
	opts := loadOptions{Method: "GET", URL: base + "/", Duration: 100 * time.Millisecond, Connections: 2}

	result, err := generateLoad(context.Background(), opts)
	if err != nil {
		t.Fatalf("generateLoad: %v", err)
	}

	if result.Errors == 0 {
		t.Error("Errors = 0, want every request counted")
	}
	if result.Requests != 0 {
		t.Errorf("Requests = %d, want 0 successful", result.Requests)
	}
	if !strings.Contains(result.FirstError, "status 500") {
		t.Errorf("FirstError = %q, want it to name status 500", result.FirstError)
	}
}

func TestGenerateLoadServerDown(t *testing.T) {
	address, err := freeLoopbackAddress()
	if err != nil {
		t.Fatal(err)
	}
	opts := loadOptions{Method: "GET", URL: "http://" + address + "/", Duration: 50 * time.Millisecond, Connections: 1}

	result, err := generateLoad(context.Background(), opts)
	if err != nil {
		t.Fatalf("generateLoad: %v", err)
	}

	if result.Errors == 0 {
		t.Error("Errors = 0, want the refused connections counted")
	}
	if result.FirstError == "" {
		t.Error("FirstError is empty, want the connection error")
	}
}

func TestGenerateLoadCancelled(t *testing.T) {
	base := serveLoopback(t, newBareServer())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	opts := loadOptions{Method: "GET", URL: base + "/", Duration: time.Minute, Connections: 1}

	_, err := generateLoad(ctx, opts)

	if err == nil {
		t.Error("generateLoad with a cancelled context returned no error")
	}
}
