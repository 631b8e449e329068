// Package app wires the nexus server together: storage, the key-value
// store, the signing keys, the actor runtime, the modules and the edge. The
// nexus command and the integration tests both start the server through it.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/edge/bearer"
	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/runtime/keyring"
	"github.com/nexus-suite/nexus/storage"
	"github.com/nexus-suite/nexus/storage/kv"

	// The API sections register themselves as modules.
	_ "github.com/nexus-suite/nexus/modules/auth"
	_ "github.com/nexus-suite/nexus/modules/billing"
	_ "github.com/nexus-suite/nexus/modules/entitlements"
	_ "github.com/nexus-suite/nexus/modules/mcp"
	_ "github.com/nexus-suite/nexus/modules/skills"
	_ "github.com/nexus-suite/nexus/modules/sync"
)

// Options configure a new App.
type Options struct {
	Config *configs.Config
	// ConfigPath is the file Reload reads again; empty means defaults and environment only.
	ConfigPath string
	// Environ is the environment Reload layers over the file, usually os.Environ().
	Environ []string
	Logger  *slog.Logger
	// Clock defaults to the system clock; tests pass a fake one.
	Clock clock.Clock
	// Routes are extra routes mounted beside the modules' routes; tests use
	// them, the nexus command mounts none.
	Routes []edge.Route
	// ProbeInterval is how often each module's health is probed for
	// /status; zero means the runtime's default of 10s. Tests shorten it.
	ProbeInterval time.Duration
}

// App is one running nexus server.
type App struct {
	cfg    *configs.Config
	opts   Options
	logger *slog.Logger
	clock  clock.Clock
	db     *storage.DB
	kv     kv.Store
	keys   *keyring.Keyring
	// masterKey seals secrets at rest; modules get it through the host.
	masterKey []byte
	system    *actor.ActorSystem
	users     *runtime.Users
	gates     *runtime.Gates
	manager   *runtime.Manager
	server    *edge.Server
	metrics   *edge.Metrics

	reloadMu sync.Mutex
	listener net.Listener
	closers  []func()
}

// New opens storage, applies migrations when configured, loads the keys,
// starts the runtime and every enabled module, and mounts the routes. It
// does not listen yet; Serve does. On error everything opened is closed.
func New(ctx context.Context, opts Options) (app *App, err error) {
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	a := &App{cfg: opts.Config, opts: opts, logger: opts.Logger, clock: opts.Clock, gates: &runtime.Gates{}}
	defer func() {
		if err != nil {
			a.closeAll()
		}
	}()

	if err := a.openStorage(ctx); err != nil {
		return nil, err
	}
	if err := a.openKeys(ctx); err != nil {
		return nil, err
	}
	if err := a.startRuntime(); err != nil {
		return nil, err
	}
	if err := a.buildEdge(); err != nil {
		return nil, err
	}
	if err := a.manager.Apply(ctx, a.cfg); err != nil {
		return nil, fmt.Errorf("start modules: %w", err)
	}
	return a, nil
}

func (a *App) openStorage(ctx context.Context) error {
	db, err := storage.Open(ctx, a.cfg.Database, a.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	a.db = db
	a.closers = append(a.closers, func() { _ = db.Close() })
	a.logger.Info("database opened", slog.String("engine", string(db.Dialect)), slog.String("database", db.Redacted()))

	if a.cfg.Database.MigrateOnStart {
		if err := storage.Migrate(ctx, db, MigrationSets()...); err != nil {
			return fmt.Errorf("migrate database: %w", err)
		}
	}

	if a.cfg.Redis.URL == "" {
		memory := kv.NewMemory(a.clock, a.cfg.Redis.Prefix)
		a.kv = memory
		a.logger.Info("key-value store: in-process stand-in")
	} else {
		redis, err := kv.NewRedis(ctx, a.cfg.Redis.URL, a.cfg.Redis.Prefix, a.clock)
		if err != nil {
			return fmt.Errorf("connect to redis: %w", err)
		}
		a.kv = redis
		a.logger.Info("key-value store: redis", slog.String("redis", storage.RedactURL(a.cfg.Redis.URL)))
	}
	store := a.kv
	a.closers = append(a.closers, func() { _ = store.Close() })
	return nil
}

func (a *App) openKeys(ctx context.Context) error {
	masterKey, err := keyring.LoadMasterKey(a.cfg.Security, a.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("load master key: %w", err)
	}
	a.masterKey = masterKey
	a.keys = keyring.New(a.db, masterKey, a.clock, a.logger)
	if err := a.keys.Ensure(ctx); err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}

	stop := make(chan struct{})
	done := make(chan struct{})
	go a.reloadKeys(stop, done)
	a.closers = append(a.closers, func() { close(stop); <-done })
	return nil
}

// keyReloadInterval is how often a server reads the signing keys again, so
// a rotation by `nexus keys rotate` or another node reaches it.
const keyReloadInterval = time.Minute

func (a *App) reloadKeys(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	ticker := time.NewTicker(keyReloadInterval)
	defer ticker.Stop()

	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
			ctx, cancel := context.WithTimeout(context.Background(), a.cfg.Database.ReadyTimeout*4)
			if err := a.keys.Reload(ctx); err != nil {
				a.logger.Error("reload signing keys failed", slog.String("error", err.Error()))
			}
			cancel()
		}
	}
}

func (a *App) startRuntime() error {
	actorLogger := slog.New(levelFloor{Handler: a.logger.Handler(), min: slog.LevelWarn}).With(slog.String("component", "actors"))
	a.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return actorLogger }))
	a.closers = append(a.closers, a.system.Shutdown)

	a.users = runtime.NewUsers(runtime.UsersOptions{
		System:                 a.system,
		Sessions:               sessionSource{storage.NewSessions(a.db)},
		Resolver:               runtime.DefaultResolver{Tiers: a.cfg.Tiers},
		Clock:                  a.clock,
		Logger:                 a.logger,
		IdleTimeout:            a.cfg.Actors.UserIdleTimeout,
		SessionRecheckInterval: a.cfg.Actors.SessionRecheckInterval,
		AdmissionTimeout:       a.cfg.Actors.AdmissionTimeout,
	})
	a.closers = append(a.closers, a.users.Stop)
	detach, err := a.users.AttachBus(context.Background(), a.kv)
	if err != nil {
		return fmt.Errorf("attach user events: %w", err)
	}
	a.closers = append(a.closers, detach)

	a.metrics = edge.NewMetrics()
	events := newModuleEventMetrics(a.metrics, runtime.RegisteredModules())
	services := runtime.NewServices()
	runtime.Provide[prometheus.Registerer](services, runtime.ServiceMetrics, a.metrics.Registry())
	host := &runtime.Host{
		Config: a.cfg, Logger: a.logger, DB: a.db, KV: a.kv, Clock: a.clock, Users: a.users,
		Keys: a.keys, MasterKey: a.masterKey, Services: services, System: a.system,
	}
	manager, err := runtime.NewManager(runtime.ManagerOptions{
		System:        a.system,
		Host:          host,
		Gates:         a.gates,
		Logger:        a.logger,
		DrainTimeout:  a.cfg.Server.ShutdownTimeout,
		ProbeInterval: a.opts.ProbeInterval,
		OnEvent:       events.observe,
	})
	if err != nil {
		return fmt.Errorf("create module manager: %w", err)
	}
	a.manager = manager
	a.closers = append(a.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.Server.ShutdownTimeout)
		defer cancel()
		manager.Stop(ctx)
	})
	registerRuntimeMetrics(a.metrics, a.db, a.users)
	return nil
}

func (a *App) buildEdge() error {
	verifier := bearer.New(bearer.Options{
		Keys:         a.keys,
		Issuer:       a.cfg.Tokens.Issuer,
		Audience:     a.cfg.Tokens.Audience,
		Leeway:       a.cfg.Tokens.Leeway,
		Clock:        a.clock,
		CacheEntries: a.cfg.Tokens.CacheEntries,
	})
	a.server = edge.New(edge.Options{
		Config:   a.cfg,
		Logger:   a.logger,
		Verifier: verifier,
		Admitter: a.users,
		KV:       a.kv,
		Clock:    a.clock,
		Gates:    a.gates,
		Metrics:  a.metrics,
	})

	routes := a.systemRoutes()
	for _, name := range a.manager.Names() {
		module, _ := a.manager.Module(name)
		// Decoding first lets a module take route options, such as a body
		// limit, from its config section. Apply decodes again and reports
		// an invalid section, so the error is not handled here.
		if a.cfg.ModuleEnabled(name) {
			_ = module.Decode(a.cfg.ModuleSection(name))
		}
		if provider, ok := module.(interface{ Routes() []edge.Route }); ok {
			routes = append(routes, provider.Routes()...)
		}
	}
	routes = append(routes, a.opts.Routes...)
	if err := a.server.Mount(routes...); err != nil {
		return fmt.Errorf("mount routes: %w", err)
	}
	return nil
}

// Serve accepts connections on ln until ctx is done, then shuts down
// gracefully: it stops accepting, lets in-flight requests finish within
// server.shutdown_timeout, stops the modules and closes storage.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	a.listener = ln
	a.logger.Info("listening", slog.String("address", ln.Addr().String()))

	served := make(chan error, 1)
	go func() { served <- a.server.Serve(ln) }()

	select {
	case err := <-served:
		a.closeAll()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	a.logger.Info("shutting down", slog.String("timeout", a.cfg.Server.ShutdownTimeout.String()))
	shutdownCtx, cancel := context.WithTimeout(context.Background(), a.cfg.Server.ShutdownTimeout)
	defer cancel()
	err := a.server.Shutdown(shutdownCtx)
	if err != nil {
		a.logger.Warn("in-flight requests did not finish in time", slog.String("error", err.Error()))
	}
	// fasthttp's Shutdown closes only the listeners that Serve has already
	// taken. When ctx ends before the goroutine above reaches Serve, Serve
	// would then accept on ln forever; closing ln here makes it return.
	if closeErr := ln.Close(); closeErr != nil && !errors.Is(closeErr, net.ErrClosed) {
		a.logger.Warn("close listener", slog.String("error", closeErr.Error()))
	}
	if serveErr := <-served; serveErr != nil && !errors.Is(serveErr, net.ErrClosed) {
		a.logger.Warn("listener closed with an error", slog.String("error", serveErr.Error()))
	}
	a.closeAll()
	a.logger.Info("stopped")
	if errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// Reload reads the config file again and applies a changed module set.
// A config that fails to load or validate is rejected and the running one
// stays in force. Options outside "modules" need a restart; a change to them
// is logged and otherwise ignored.
func (a *App) Reload(ctx context.Context) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()

	next, err := configs.Load(a.opts.ConfigPath, a.opts.Environ)
	if err != nil {
		return fmt.Errorf("load config: %w", err)
	}
	if err := a.manager.CheckConfig(next); err != nil {
		return fmt.Errorf("check modules: %w", err)
	}
	for _, key := range restartOnlyChanges(a.cfg, next) {
		a.logger.Warn("config change needs a restart to take effect", slog.String("key", key))
	}

	applied := *a.cfg
	applied.Modules = next.Modules
	if err := a.manager.Apply(ctx, &applied); err != nil {
		return fmt.Errorf("apply modules: %w", err)
	}
	a.cfg = &applied
	return nil
}

// Users returns the per-user actors, for tests and benchmarks.
func (a *App) Users() *runtime.Users { return a.users }

// Keys returns the keyring, for tests and tools that mint tokens.
func (a *App) Keys() *keyring.Keyring { return a.keys }

// DB returns the database pool.
func (a *App) DB() *storage.DB { return a.db }

// Manager returns the module manager.
func (a *App) Manager() *runtime.Manager { return a.manager }

// Routes returns every mounted route.
func (a *App) Routes() []edge.Route { return a.server.Routes() }

// Close stops everything without serving; it is for an App that never served.
func (a *App) Close() { a.closeAll() }

func (a *App) closeAll() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// levelFloor drops records below min; it quiets the actor system's info logs.
type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (h levelFloor) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= h.min && h.Handler.Enabled(ctx, level)
}

func (h levelFloor) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelFloor{Handler: h.Handler.WithAttrs(attrs), min: h.min}
}

func (h levelFloor) WithGroup(name string) slog.Handler {
	return levelFloor{Handler: h.Handler.WithGroup(name), min: h.min}
}

// sessionSource adapts the sessions table to the runtime's SessionSource.
type sessionSource struct{ sessions *storage.Sessions }

func (s sessionSource) LookupSession(ctx context.Context, id string) (runtime.SessionState, error) {
	record, err := s.sessions.Lookup(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return runtime.SessionState{}, runtime.ErrSessionNotFound
	}
	if err != nil {
		return runtime.SessionState{}, err
	}
	return runtime.SessionState{UserID: record.UserID, ExpiresAt: record.ExpiresAt, Revoked: record.RevokedAt != nil}, nil
}
