package edge

import (
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"

	"github.com/nexus-suite/nexus/edge/bearer"
	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/runtime/clock"
)

var benchBody = []byte(`{"data":{"id":"itm_1","name":"first"}}`)

// benchRequest returns a GET of path with a bearer token, in the form the router receives.
func benchRequest(path string) *fasthttp.RequestCtx {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(fasthttp.MethodGet)
	ctx.Request.SetRequestURI(path)
	ctx.Request.Header.Set("Authorization", "Bearer "+testToken)
	return &ctx
}

func runBench(b *testing.B, handler fasthttp.RequestHandler, ctx *fasthttp.RequestCtx) {
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		handler(ctx)
	}
	if status := ctx.Response.StatusCode(); status != http.StatusOK {
		b.Fatalf("status = %d, want 200: %s", status, ctx.Response.Body())
	}
}

// BenchmarkAuthenticatedGET runs an authenticated, gated GET through every
// middleware step, with in-memory fakes for the verifier and the admitter
// and the access log off.
func BenchmarkAuthenticatedGET(b *testing.B) {
	cfg := testConfig()
	cfg.Log.Access = false
	gates := &runtime.Gates{}
	gates.Get("items").Open()
	server := New(Options{
		Config:   cfg,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Verifier: &fakeVerifier{claims: map[string]bearer.Claims{testToken: {Subject: testUserID, SessionID: "ses_1"}}},
		Admitter: newFakeAdmitter(),
		Clock:    clock.NewFake(testStart),
		Gates:    gates,
	})
	err := server.Mount(Route{Method: "GET", Path: "/v1/items/{id}", Module: "items", Authenticated: true,
		Handler: func(req *Request) error {
			req.Raw(http.StatusOK, "application/json", benchBody)
			return nil
		}})
	if err != nil {
		b.Fatalf("mount: %v", err)
	}

	runBench(b, server.Handler(), benchRequest("/v1/items/itm_1"))
}

// BenchmarkBareHandler writes the same response through the same router
// with no middleware, as the baseline for BenchmarkAuthenticatedGET.
func BenchmarkBareHandler(b *testing.B) {
	r := router.New()
	r.GET("/v1/items/{id}", func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(http.StatusOK)
		ctx.SetContentType("application/json")
		ctx.SetBody(benchBody)
	})

	runBench(b, r.Handler, benchRequest("/v1/items/itm_1"))
}
