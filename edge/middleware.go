package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/nexus-suite/nexus/edge/bearer"
	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/runtime/gcra"
)

// kvFailureLogInterval is the minimum time between two logs of a failed IP
// rate-limit check, so a KV outage does not write one line per request.
const kvFailureLogInterval = 10 * time.Second

// serveRoute runs one request through the middleware of rt, in order:
// request id, panic recovery, module gate, body limit, IP rate limit,
// authentication, admission, feature check, handler, then metrics and the
// access log.
func (s *Server) serveRoute(ctx *fasthttp.RequestCtx, rt *route) {
	// Durations come from the monotonic wall clock; s.clock is for expiry.
	start := time.Now()
	req := acquireRequest(ctx, s, rt)
	req.requestID = s.ids.requestIDFor(&ctx.Request.Header)
	ctx.Response.Header.Set(headerRequestID, req.requestID)

	s.runRoute(req)
	req.endContext()

	elapsed := time.Since(start)
	rt.metrics.observe(ctx.Response.StatusCode(), elapsed)
	s.logAccess(req, elapsed)
	releaseRequest(req)
}

func (s *Server) runRoute(req *Request) {
	defer s.recoverHandler(req)

	rt := req.route
	if rt.gate != nil {
		if !rt.gate.Enter() {
			s.writeEnvelope(req.Ctx, moduleDisabled(rt.Module), req.requestID)
			return
		}
		defer rt.gate.Leave()
	}

	if err := checkBodySize(req); err != nil {
		s.writeError(req, err)
		return
	}

	if rt.IPLimited {
		if err := s.limitIP(req); err != nil {
			s.writeError(req, err)
			return
		}
	}

	if rt.Authenticated {
		if err := s.authenticate(req); err != nil {
			s.writeError(req, err)
			return
		}
		if err := s.admit(req); err != nil {
			s.writeError(req, err)
			return
		}
		if rt.Feature != "" && !req.Principal.Entitlements.HasFeature(rt.Feature) {
			s.writeError(req, TierRequired(rt.Feature, rt.requiredTier, req.Principal.Entitlements.Tier))
			return
		}
	}

	if err := rt.Handler(req); err != nil {
		s.writeError(req, err)
	}
}

// recoverHandler turns a panic of the handler or the middleware into a 500
// and logs its value and stack with the request id.
func (s *Server) recoverHandler(req *Request) {
	v := recover()
	if v == nil {
		return
	}

	s.logger.Error("handler panicked", "request_id", req.requestID,
		"route", req.route.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))

	// Drop whatever the handler had written, then restore the edge's headers.
	resp := &req.Ctx.Response
	resp.Reset()
	resp.Header.Set(headerRequestID, req.requestID)
	if req.hasLimit {
		req.scratch = writeRateLimitHeaders(&resp.Header, req.scratch, req.limit, req.decision, s.clock.Now())
	}
	s.writeEnvelope(req.Ctx, internalError(req.requestID), req.requestID)
}

func moduleDisabled(module string) *Error {
	return NewError(CodeNotFound, "module "+module+" is disabled", map[string]any{"module": module})
}

func internalError(requestID string) *Error {
	return NewError(CodeInternal, internalMessage, map[string]any{"request_id": requestID})
}

// bodyTooLarge returns the error for a body over limit bytes, detected by
// the edge or by fasthttp itself.
func bodyTooLarge(limit int) *Error {
	return NewError(CodeQuotaExceeded,
		fmt.Sprintf("request body exceeds the limit of %d bytes", limit),
		map[string]any{"limit_type": "request_body_bytes", "limit": limit})
}

func checkBodySize(req *Request) error {
	limit := req.route.maxBodyBytes
	if req.Ctx.Request.Header.ContentLength() > limit || len(req.Ctx.Request.Body()) > limit {
		return bodyTooLarge(limit)
	}
	return nil
}

// limitIP applies rate_limit.ip_per_minute to the client IP through the KV
// store, so that every node shares one count per IP.
func (s *Server) limitIP(req *Request) error {
	if s.ipLimit.Rate <= 0 {
		return nil
	}

	ip := clientIP(req.Ctx, s.trustedProxies)
	var keyBuf [64]byte
	key := string(ip.AppendTo(append(keyBuf[:0], "ip:"...)))

	kvCtx, cancel := context.WithTimeout(context.Background(), s.storeTimeout)
	decision, err := s.kv.GCRA(kvCtx, key, s.ipLimit, s.clock.Now())
	cancel()
	if err != nil {
		// Fail open: a KV outage must not lock every client out of login and
		// registration. Those routes keep their own checks, and the per-user
		// limits still apply once the client has a token.
		if ok, suppressed := s.kvFailures.allow(s.clock.Now()); ok {
			s.logger.Error("IP rate limit check failed, request admitted",
				"request_id", req.requestID, "error", err, "suppressed_since_last_log", suppressed)
		}
		return nil
	}

	req.setRateLimit(s.ipLimit, decision)
	if !decision.Allowed {
		s.metrics.ipRejections.Inc()
		return rejectRateLimited(req, decision)
	}
	return nil
}

// rejectRateLimited sets Retry-After and returns the 429 for decision.
func rejectRateLimited(req *Request, decision gcra.Decision) error {
	seconds := retryAfterSeconds(decision)
	req.scratch = strconv.AppendInt(req.scratch[:0], int64(seconds), 10)
	req.Ctx.Response.Header.SetBytesV(headerRetryAfter, req.scratch)
	return RateLimited(seconds)
}

// authenticate checks the bearer token and sets the request's Principal.
// Every failure is the same 401 for the client; the reason goes to the log.
func (s *Server) authenticate(req *Request) error {
	token, ok := bearerToken(req.Ctx.Request.Header.Peek(headerAuthorization))
	if !ok {
		s.logger.Debug("request rejected: missing or malformed Authorization header",
			"request_id", req.requestID)
		req.Ctx.Response.Header.SetBytesV(headerWWWAuthenticate, wwwAuthenticateMissing)
		return Unauthorized("missing or malformed bearer token in the Authorization header")
	}

	if credentials := req.route.Credentials; credentials != nil {
		userID, err := credentials(req, string(token))
		switch {
		case err == nil:
			req.principal.UserID = userID
			req.Principal = &req.principal
			req.credential = true
			return nil
		case !errors.Is(err, ErrNotCredential):
			s.logger.Debug("module credential rejected", "request_id", req.requestID, "error", err)
			req.Ctx.Response.Header.SetBytesV(headerWWWAuthenticate, wwwAuthenticateInvalid)
			return Unauthorized("invalid or revoked token")
		}
	}

	claims, err := s.verifier.Verify(string(token))
	if err == nil && claims.Subject == "" {
		err = errors.New("token has no subject")
	}
	if err != nil {
		var unknownKey *bearer.UnknownKeyError
		if errors.As(err, &unknownKey) {
			s.logger.Warn("token rejected: signed with an unknown key",
				"request_id", req.requestID, "kid", unknownKey.KeyID)
		} else {
			s.logger.Debug("token rejected", "request_id", req.requestID, "error", err)
		}
		req.Ctx.Response.Header.SetBytesV(headerWWWAuthenticate, wwwAuthenticateInvalid)
		return Unauthorized("invalid or expired access token")
	}

	req.principal.UserID = claims.Subject
	req.principal.SessionID = claims.SessionID
	req.Principal = &req.principal
	return nil
}

// admit sends the request to the user's actor for admission, and sets the user's
// rate-limit headers and entitlements.
func (s *Server) admit(req *Request) error {
	principal := req.Principal
	// The admitter bounds the round trip by actors.admission_timeout itself,
	// which spares a context and its timer on every request.
	var admission runtime.Admission
	var err error
	if req.credential {
		// Mount checked that the admitter implements CredentialAdmitter.
		admission, err = s.admitter.(CredentialAdmitter).AdmitCredential(context.Background(), principal.UserID)
	} else {
		admission, err = s.admitter.Admit(context.Background(), principal.UserID, principal.SessionID)
	}

	if err == nil || errors.Is(err, runtime.ErrRateLimited) {
		if admission.Limit.Rate > 0 {
			req.setRateLimit(admission.Limit, admission.Decision)
		}
	}

	switch {
	case err == nil:
		principal.Entitlements = admission.Entitlements
		return nil
	case errors.Is(err, runtime.ErrSessionEnded):
		s.logger.Debug("request rejected: session ended", "request_id", req.requestID,
			"user_id", principal.UserID, "session_id", principal.SessionID)
		req.Ctx.Response.Header.SetBytesV(headerWWWAuthenticate, wwwAuthenticateInvalid)
		return Unauthorized("session has ended, sign in again")
	case errors.Is(err, runtime.ErrRateLimited):
		s.metrics.userRejections.Inc()
		return rejectRateLimited(req, admission.Decision)
	default:
		return fmt.Errorf("admit request of user %s: %w", principal.UserID, err)
	}
}

// writeError writes err as an error envelope. An error that is not an
// *Error is logged with the request id and sent as a 500 that shows
// nothing of the cause.
func (s *Server) writeError(req *Request, err error) {
	var apiErr *Error
	if !errors.As(err, &apiErr) {
		req.Logger().Error("request failed", "method", req.route.Method, "route", req.route.Path, "error", err)
		apiErr = internalError(req.requestID)
	}
	s.writeEnvelope(req.Ctx, apiErr, req.requestID)
}

type errorEnvelope struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

func (s *Server) writeEnvelope(ctx *fasthttp.RequestCtx, apiErr *Error, requestID string) {
	body, err := json.Marshal(errorEnvelope{Error: errorBody{Code: apiErr.Code, Message: apiErr.Message, Details: apiErr.Details}})
	if err != nil {
		s.logger.Error("encode error response", "request_id", requestID, "code", apiErr.Code, "error", err)
		apiErr = internalError(requestID)
		body, _ = json.Marshal(errorEnvelope{Error: errorBody{Code: apiErr.Code, Message: apiErr.Message, Details: apiErr.Details}})
	}

	status := apiErr.Status
	if status == 0 {
		status = StatusOf(apiErr.Code)
	}
	ctx.Response.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(contentTypeJSON)
	ctx.Response.SetBody(body)
}

// logAccess writes the access log line of a request when log.access is on.
// It never logs headers, the query string or bodies, which can carry tokens.
func (s *Server) logAccess(req *Request, elapsed time.Duration) {
	if !s.accessLog || !s.logger.Enabled(context.Background(), slog.LevelInfo) {
		return
	}

	ctx := req.Ctx
	// Response.Body would read a streamed body to its end, so a streamed
	// response is logged without its size, which is unknown at this point.
	size := slog.Bool("streamed", true)
	if !ctx.Response.IsBodyStream() {
		size = slog.Int("bytes", len(ctx.Response.Body()))
	}
	attrs := [9]slog.Attr{
		slog.String("method", string(ctx.Method())),
		slog.String("route", req.route.Path),
		slog.String("path", string(ctx.Path())),
		slog.Int("status", ctx.Response.StatusCode()),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		size,
		slog.String("request_id", req.requestID),
		slog.String("remote_ip", clientIP(ctx, s.trustedProxies).String()),
	}
	n := 8
	if req.Principal != nil {
		attrs[n] = slog.String("user_id", req.Principal.UserID)
		n++
	}
	s.logger.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs[:n]...)
}

// serveUnmatched responds with apiErr to a request that reached no route, and
// counts and logs it under the route "unmatched". An empty requestID means
// one is taken from the request or generated.
func (s *Server) serveUnmatched(ctx *fasthttp.RequestCtx, apiErr *Error, requestID string) {
	start := time.Now()
	req := acquireRequest(ctx, s, s.unmatched)
	if requestID == "" {
		requestID = s.ids.requestIDFor(&ctx.Request.Header)
	}
	req.requestID = requestID
	ctx.Response.Header.Set(headerRequestID, requestID)

	s.writeEnvelope(ctx, apiErr, requestID)

	elapsed := time.Since(start)
	s.metrics.observeUnmatched(ctx.Method(), ctx.Response.StatusCode(), elapsed)
	s.logAccess(req, elapsed)
	releaseRequest(req)
}

func (s *Server) handleNotFound(ctx *fasthttp.RequestCtx) {
	// A route with a larger limit raises fasthttp's, so a request that
	// reached no route is checked against server.max_body_bytes here.
	if ctx.Request.Header.ContentLength() > s.defaultMaxBody || len(ctx.Request.Body()) > s.defaultMaxBody {
		s.serveUnmatched(ctx, bodyTooLarge(s.defaultMaxBody), "")
		return
	}
	s.serveUnmatched(ctx, NotFound(fmt.Sprintf("no route matches %s %s", ctx.Method(), ctx.Path())), "")
}

// handleMethodNotAllowed responds to a path that exists for other methods. The
// router lists OPTIONS in Allow even when no route serves it, so OPTIONS is
// kept only when a route does.
func (s *Server) handleMethodNotAllowed(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Request.URI().PathOriginal())
	var allowed []string
	for method := range strings.SplitSeq(string(ctx.Response.Header.Peek("Allow")), ", ") {
		if method == fasthttp.MethodOptions {
			if handler, _ := s.router.Lookup(method, path, nil); handler == nil {
				continue
			}
		}
		allowed = append(allowed, method)
	}
	ctx.Response.Header.Set("Allow", strings.Join(allowed, ", "))

	s.serveUnmatched(ctx, methodNotAllowed(string(ctx.Method()), allowed), "")
}

// handleRouterPanic catches panics outside the route handlers, which
// recover their own, such as one in a router hook.
func (s *Server) handleRouterPanic(ctx *fasthttp.RequestCtx, v any) {
	requestID := s.ids.requestIDFor(&ctx.Request.Header)
	s.logger.Error("router panicked", "request_id", requestID,
		"panic", fmt.Sprint(v), "stack", string(debug.Stack()))

	ctx.Response.Reset()
	s.serveUnmatched(ctx, internalError(requestID), requestID)
}

// handleServerError responds to a request that fasthttp could not read, before
// any route: a body over the server's limit is 413 QUOTA_EXCEEDED, headers
// over the read buffer are 431, a read timeout is 408, anything else is
// 400. All but the 413 use VALIDATION_ERROR, the spec's code for a bad request.
func (s *Server) handleServerError(ctx *fasthttp.RequestCtx, err error) {
	var apiErr *Error
	var smallBuffer *fasthttp.ErrSmallBuffer
	var netErr net.Error

	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		apiErr = bodyTooLarge(s.srv.MaxRequestBodySize)
	case errors.As(err, &smallBuffer):
		apiErr = &Error{Status: http.StatusRequestHeaderFieldsTooLarge, Code: CodeValidation,
			Message: "request headers are too large"}
	case errors.As(err, &netErr) && netErr.Timeout():
		apiErr = &Error{Status: http.StatusRequestTimeout, Code: CodeValidation,
			Message: "request was not received in time"}
	default:
		apiErr = &Error{Status: http.StatusBadRequest, Code: CodeValidation,
			Message: "malformed HTTP request"}
	}

	s.logger.Debug("request rejected before routing", "error", err)
	s.serveUnmatched(ctx, apiErr, "")
}

// throttledLog lets one log line through per kvFailureLogInterval and
// counts the lines it suppressed in between.
type throttledLog struct {
	lastUnixNano atomic.Int64
	suppressed   atomic.Int64
}

func (t *throttledLog) allow(now time.Time) (ok bool, suppressed int64) {
	last := t.lastUnixNano.Load()
	if now.UnixNano()-last < int64(kvFailureLogInterval) || !t.lastUnixNano.CompareAndSwap(last, now.UnixNano()) {
		t.suppressed.Add(1)
		return false, 0
	}
	return true, t.suppressed.Swap(0)
}
