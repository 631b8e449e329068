package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/runtime/gcra"
)

// HandlerFunc serves one route. It returns nil after writing the response
// through the Request, an *Error (possibly wrapped) for an expected failure,
// or any other error, which the edge logs with the request id and turns into
// a 500 INTERNAL_ERROR showing only "internal error" and the request id.
type HandlerFunc func(*Request) error

// Principal is the authenticated caller of a request.
type Principal struct {
	UserID    string
	SessionID string
	// Entitlements is the snapshot that the user's actor returned at admission.
	Entitlements runtime.Entitlements
}

// Request is the request that a handler serves. The edge reuses Request
// values and the wrapped fasthttp.RequestCtx after the handler returns, so a
// handler must not keep the Request, its Ctx or its Principal pointer, nor
// use them from another goroutine. Copy the values that must outlive the
// handler, such as the request id or the Principal itself.
type Request struct {
	// Ctx is the fasthttp request, for what the helpers below do not cover
	// (query arguments, headers, streamed responses).
	Ctx *fasthttp.RequestCtx
	// Principal is the authenticated caller, nil on routes that are not Authenticated.
	Principal *Principal

	server    *Server
	route     *route
	requestID string
	principal Principal
	logger    *slog.Logger
	// credential is true when the route's Credentials accepted the bearer
	// token, so admission checks no session.
	credential bool

	stdCtx context.Context
	cancel context.CancelFunc

	// limit and decision are the rate limit applied to the request, kept so
	// the headers can be written again after a panic resets the response.
	hasLimit bool
	limit    gcra.Limit
	decision gcra.Decision

	// scratch is reused to build header values without allocating.
	scratch []byte
}

var requestPool = sync.Pool{New: func() any { return &Request{scratch: make([]byte, 0, 64)} }}

func acquireRequest(ctx *fasthttp.RequestCtx, s *Server, rt *route) *Request {
	req := requestPool.Get().(*Request)
	req.Ctx = ctx
	req.server = s
	req.route = rt
	return req
}

func releaseRequest(req *Request) {
	scratch := req.scratch[:0]
	*req = Request{scratch: scratch}
	requestPool.Put(req)
}

// ClientIP returns the client's address: the remote address, or the
// right-most X-Forwarded-For entry that is not a trusted proxy when the
// request came through one.
func (r *Request) ClientIP() string { return clientIP(r.Ctx, r.server.trustedProxies).String() }

// RequestID returns the request id, which is also sent in the X-Request-Id header.
func (r *Request) RequestID() string { return r.requestID }

// Logger returns the server's logger with the request_id field, and the
// user_id field on authenticated routes.
func (r *Request) Logger() *slog.Logger {
	if r.logger != nil {
		return r.logger
	}

	if r.Principal != nil {
		r.logger = r.server.logger.With("request_id", r.requestID, "user_id", r.Principal.UserID)
	} else {
		r.logger = r.server.logger.With("request_id", r.requestID)
	}
	return r.logger
}

// Context returns the context for the handler's store calls. It derives
// from context.Background, not from the connection: fasthttp does not cancel
// anything when the client goes away. Its deadline is server.store_timeout
// after the first call of Context, and it is cancelled when the handler
// returns.
func (r *Request) Context() context.Context {
	if r.stdCtx == nil {
		r.stdCtx, r.cancel = context.WithTimeout(context.Background(), r.server.storeTimeout)
	}
	return r.stdCtx
}

// endContext cancels the handler's context, if the handler asked for one.
func (r *Request) endContext() {
	if r.cancel != nil {
		r.cancel()
	}
}

// Param returns the value of the path parameter name, such as "id" for the
// pattern /v1/skills/{id}, or "" when the route has no such parameter.
func (r *Request) Param(name string) string {
	value, _ := r.Ctx.UserValue(name).(string)
	return value
}

// JSON writes {"data": data} with status and Content-Type application/json.
// It returns an error, which the handler should return, when data cannot be
// encoded.
func (r *Request) JSON(status int, data any) error {
	body, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode response of %s %s: %w", r.route.Method, r.route.Path, err)
	}

	resp := &r.Ctx.Response
	resp.SetStatusCode(status)
	resp.Header.SetContentTypeBytes(contentTypeJSON)
	resp.ResetBody()
	resp.AppendBody(dataPrefix)
	resp.AppendBody(body)
	resp.AppendBody(dataSuffix)
	return nil
}

// Raw writes body as it is, with status and contentType, outside the envelope.
func (r *Request) Raw(status int, contentType string, body []byte) {
	r.Ctx.SetStatusCode(status)
	r.Ctx.SetContentType(contentType)
	r.Ctx.SetBody(body)
}

// setRateLimit records the rate limit applied to the request and writes its headers.
func (r *Request) setRateLimit(limit gcra.Limit, decision gcra.Decision) {
	r.hasLimit = true
	r.limit = limit
	r.decision = decision
	r.scratch = writeRateLimitHeaders(&r.Ctx.Response.Header, r.scratch, limit, decision, r.server.clock.Now())
}
