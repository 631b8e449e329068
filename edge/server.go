// Package edge is the HTTP edge of nexus on fasthttp: routing, the
// {"data"}/{"error"} envelope and the API's error codes, request ids, body
// limits, the per-IP rate limit, bearer-token authentication, admission
// through the user's actor with its rate-limit headers, access logs and
// metrics. Modules declare Routes and write HandlerFuncs; they never see
// fasthttp's server.
package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/edge/bearer"
	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/runtime/gcra"
	"github.com/nexus-suite/nexus/storage/kv"
)

// Fallbacks for config values left at zero, as in a Config built by hand in tests.
const (
	fallbackMaxBodyBytes = 1 << 20
	fallbackStoreTimeout = 5 * time.Second
)

// TokenVerifier checks an access token and returns its claims;
// *bearer.Verifier implements it. Any error rejects the request with 401.
// A *bearer.UnknownKeyError is also logged at warn with its kid, because it
// can mean a stale key set or a forged token.
type TokenVerifier interface {
	Verify(token string) (bearer.Claims, error)
}

// Admitter checks with the user's actor whether a request may proceed.
// runtime.Users implements it. It returns runtime.ErrSessionEnded (401) or
// runtime.ErrRateLimited (429, with the Admission filled for the headers)
// when the actor rejects the request. Admit bounds its own wait for the
// actor (actors.admission_timeout); the edge passes no deadline.
type Admitter interface {
	Admit(ctx context.Context, userID, sessionID string) (runtime.Admission, error)
}

// Route is one endpoint of a module.
type Route struct {
	Method string
	// Path is the router pattern, such as /v1/skills/{id}. It is also the
	// route label of metrics and access logs.
	Path string
	// Module is the module that owns the route. Its gate must be open for
	// the route to serve requests. An empty Module is never gated.
	Module  string
	Handler HandlerFunc
	// Authenticated routes need a bearer token and an admission from the
	// user's actor, and their responses carry the user's rate-limit headers.
	Authenticated bool
	// IPLimited routes count against the per-IP rate limit.
	IPLimited bool
	// Feature, when set, is the feature the caller's entitlements must
	// grant, such as "sync". The edge checks it after admission and
	// responds with 403 TIER_REQUIRED before the handler runs. Only
	// Authenticated routes may set it.
	Feature string
	// MaxBodyBytes is the request body limit; zero means server.max_body_bytes.
	MaxBodyBytes int
	// Credentials, when set on an Authenticated route, checks bearer tokens
	// that the route's module issued itself, such as the per-server tokens
	// of MCP hosting, before the edge tries the token as an access token. A
	// request that it accepts is admitted through the user's actor without
	// a session, so the user's rate limit and Feature still apply.
	Credentials CredentialVerifier
	// Summary is a one-line description for route listings.
	Summary string
}

// CredentialVerifier checks a bearer token that a module issued for its
// own routes and returns the id of the user that the token acts for. It
// returns an error wrapping ErrNotCredential when the token is not in the
// module's format, and the edge then verifies it as an access token. Any
// other error rejects the request with 401.
type CredentialVerifier func(r *Request, token string) (userID string, err error)

// ErrNotCredential is returned by a CredentialVerifier for a token that is
// not one of its module's credentials.
var ErrNotCredential = errors.New("not a module credential")

// CredentialAdmitter admits a request whose credential belongs to no
// session. runtime.Users implements it. The Admitter of a server must
// implement it to mount routes with Credentials.
type CredentialAdmitter interface {
	AdmitCredential(ctx context.Context, userID string) (runtime.Admission, error)
}

// Options are the dependencies of a Server. Config is required. Verifier
// and Admitter are required to mount Authenticated routes, and KV to mount
// IPLimited routes while rate_limit.ip_per_minute is above zero. Logger,
// Clock and Metrics default to a discarding logger, the system clock and
// NewMetrics(). A nil Gates gates no route.
type Options struct {
	Config   *configs.Config
	Logger   *slog.Logger
	Verifier TokenVerifier
	Admitter Admitter
	KV       kv.Store
	Clock    clock.Clock
	Gates    *runtime.Gates
	Metrics  *Metrics
}

// Server is the HTTP server of nexus.
type Server struct {
	logger   *slog.Logger
	verifier TokenVerifier
	admitter Admitter
	kv       kv.Store
	clock    clock.Clock
	gates    *runtime.Gates
	metrics  *Metrics

	router *router.Router
	srv    *fasthttp.Server

	routes    []Route
	tiers     configs.Tiers
	unmatched *route
	serving   atomic.Bool
	configErr error

	ids            *requestIDs
	trustedProxies []netip.Prefix
	ipLimit        gcra.Limit
	defaultMaxBody int
	storeTimeout   time.Duration
	accessLog      bool
	kvFailures     throttledLog
}

// route is a mounted Route with what its requests need at hand.
type route struct {
	Route
	maxBodyBytes int
	gate         *runtime.Gate
	metrics      *routeMetrics
	// requiredTier is the lowest-ranked catalog tier that grants Feature,
	// empty when Feature is empty or no tier grants it.
	requiredTier string
}

// New returns a server for opts. An invalid server.trusted_proxies entry is
// reported by Mount and Serve.
func New(opts Options) *Server {
	cfg := opts.Config
	s := &Server{
		logger:         opts.Logger,
		verifier:       opts.Verifier,
		admitter:       opts.Admitter,
		kv:             opts.KV,
		clock:          opts.Clock,
		gates:          opts.Gates,
		metrics:        opts.Metrics,
		tiers:          cfg.Tiers,
		ids:            newRequestIDs(),
		unmatched:      &route{Route: Route{Path: unmatchedRoute}},
		defaultMaxBody: positiveOr(cfg.Server.MaxBodyBytes, fallbackMaxBodyBytes),
		storeTimeout:   positiveOr(cfg.Server.StoreTimeout, fallbackStoreTimeout),
		accessLog:      cfg.Log.Access,
		ipLimit: gcra.Limit{
			Rate:   cfg.RateLimit.IPPerMinute,
			Period: time.Minute,
			Burst:  max(1, cfg.RateLimit.IPBurst),
		},
	}
	if s.logger == nil {
		s.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.clock == nil {
		s.clock = clock.System{}
	}
	if s.metrics == nil {
		s.metrics = NewMetrics()
	}

	trusted, err := parseTrustedProxies(cfg.Server.TrustedProxies)
	if err != nil {
		s.configErr = fmt.Errorf("parse server.trusted_proxies: %w", err)
	}
	s.trustedProxies = trusted

	s.router = router.New()
	s.router.RedirectTrailingSlash = false
	s.router.RedirectFixedPath = false
	s.router.HandleMethodNotAllowed = true
	s.router.HandleOPTIONS = false
	s.router.NotFound = s.handleNotFound
	s.router.MethodNotAllowed = s.handleMethodNotAllowed
	s.router.PanicHandler = s.handleRouterPanic

	s.srv = &fasthttp.Server{
		Handler:                      s.router.Handler,
		ErrorHandler:                 s.handleServerError,
		Logger:                       fasthttpLogger{logger: s.logger},
		ReadTimeout:                  cfg.Server.ReadTimeout,
		WriteTimeout:                 cfg.Server.WriteTimeout,
		IdleTimeout:                  cfg.Server.IdleTimeout,
		MaxRequestBodySize:           s.defaultMaxBody,
		NoDefaultServerHeader:        true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
	}
	return s
}

func positiveOr[T int | time.Duration](value, fallback T) T {
	if value > 0 {
		return value
	}
	return fallback
}

// Mount adds routes. It must be called before Serve. It returns an error,
// and mounts none of routes, for a duplicate method and path, a route
// without method, path or handler, a negative MaxBodyBytes or a dependency
// that Options lacks. A pattern that the router rejects is an error too,
// but the routes before it in the same call stay mounted.
func (s *Server) Mount(routes ...Route) error {
	if s.configErr != nil {
		return s.configErr
	}
	if s.serving.Load() {
		return errors.New("mount routes: the server is already serving")
	}
	if err := s.checkRoutes(routes); err != nil {
		return err
	}

	for _, r := range routes {
		if err := s.mount(r); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) checkRoutes(routes []Route) error {
	seen := make(map[string]bool, len(s.routes)+len(routes))
	for _, r := range s.routes {
		seen[r.Method+" "+r.Path] = true
	}

	for _, r := range routes {
		key := r.Method + " " + r.Path
		switch {
		case r.Method == "" || !strings.HasPrefix(r.Path, "/"):
			return fmt.Errorf("mount route %q: method and a path starting with / are required", key)
		case r.Handler == nil:
			return fmt.Errorf("mount route %s: handler is nil", key)
		case r.MaxBodyBytes < 0:
			return fmt.Errorf("mount route %s: max body bytes %d is negative", key, r.MaxBodyBytes)
		case seen[key]:
			return fmt.Errorf("mount route %s: mounted twice", key)
		case r.Authenticated && (s.verifier == nil || s.admitter == nil):
			return fmt.Errorf("mount route %s: authenticated routes need Options.Verifier and Options.Admitter", key)
		case r.IPLimited && s.ipLimit.Rate > 0 && s.kv == nil:
			return fmt.Errorf("mount route %s: IP-limited routes need Options.KV", key)
		case r.Feature != "" && !r.Authenticated:
			return fmt.Errorf("mount route %s: feature %q needs an authenticated route", key, r.Feature)
		case r.Credentials != nil && !r.Authenticated:
			return fmt.Errorf("mount route %s: credentials need an authenticated route", key)
		case r.Credentials != nil && !implementsCredentialAdmitter(s.admitter):
			return fmt.Errorf("mount route %s: credentials need an Options.Admitter that implements CredentialAdmitter", key)
		}
		seen[key] = true
	}
	return nil
}

func (s *Server) mount(r Route) (err error) {
	rt := &route{
		Route:        r,
		maxBodyBytes: positiveOr(r.MaxBodyBytes, s.defaultMaxBody),
		metrics:      s.metrics.forRoute(r.Method, r.Path),
		requiredTier: lowestTierWith(s.tiers, r.Feature),
	}
	if r.Module != "" && s.gates != nil {
		rt.gate = s.gates.Get(r.Module)
	}

	// The router panics on a pattern it cannot add, such as a parameter
	// whose name differs from one already mounted at the same position.
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("mount route %s %s: %v", r.Method, r.Path, v)
		}
	}()
	s.router.Handle(r.Method, r.Path, func(ctx *fasthttp.RequestCtx) { s.serveRoute(ctx, rt) })

	s.routes = append(s.routes, r)
	s.srv.MaxRequestBodySize = max(s.srv.MaxRequestBodySize, rt.maxBodyBytes)
	return nil
}

func implementsCredentialAdmitter(admitter Admitter) bool {
	_, ok := admitter.(CredentialAdmitter)
	return ok
}

// lowestTierWith returns the id of the lowest-ranked catalog tier that
// grants feature, or "" when feature is empty or no tier grants it. Equal
// ranks are broken by tier id, so the result does not depend on map order.
func lowestTierWith(tiers configs.Tiers, feature string) string {
	if feature == "" {
		return ""
	}
	best := ""
	for id, tier := range tiers.Catalog {
		if !slices.Contains(tier.Features, feature) {
			continue
		}
		if best == "" || tier.Rank < tiers.Catalog[best].Rank || (tier.Rank == tiers.Catalog[best].Rank && id < best) {
			best = id
		}
	}
	return best
}

// Routes returns a copy of the mounted routes in the order they were mounted.
func (s *Server) Routes() []Route { return slices.Clone(s.routes) }

// Handler returns the request handler with every route and hook, without
// the fasthttp.Server around it, so the server's body limit and
// ErrorHandler do not apply. It is meant for tests and benchmarks.
func (s *Server) Handler() fasthttp.RequestHandler { return s.router.Handler }

// Serve serves requests on ln until Shutdown is called. It returns nil after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if s.configErr != nil {
		return s.configErr
	}

	s.serving.Store(true)
	s.logger.Info("http server started", "address", ln.Addr().String(),
		"routes", len(s.routes), "max_body_bytes", s.srv.MaxRequestBodySize)
	if err := s.srv.Serve(ln); err != nil {
		return fmt.Errorf("serve http on %s: %w", ln.Addr(), err)
	}
	return nil
}

// Shutdown stops accepting connections and waits for in-flight requests
// to finish, until ctx is done. Idle keep-alive connections are closed.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.srv.ShutdownWithContext(ctx); err != nil {
		return fmt.Errorf("shut down http server: %w", err)
	}
	s.logger.Info("http server stopped")
	return nil
}

// Metrics returns the server's metrics.
func (s *Server) Metrics() *Metrics { return s.metrics }

// fasthttpLogger writes fasthttp's own messages, such as connection
// errors, to slog at warn.
type fasthttpLogger struct{ logger *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.logger.Warn(fmt.Sprintf(format, args...), "component", "fasthttp")
}
