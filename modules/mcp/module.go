package mcp

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/storage"
)

// Name is the module's key under "modules" in the config.
const Name = "mcp"

// feature is the entitlement that every route of the module needs.
const feature = "mcp_hosting"

// maxMessageBytes is the body limit of a POST to the MCP endpoint. Routes
// are mounted before the config is decoded, so it is a constant.
const maxMessageBytes = 4 << 20

func init() {
	runtime.RegisterModule(Name, func() runtime.Module { return &Module{} })
	runtime.RegisterAccountHook(Name, deleteUser)
}

//go:embed migrations
var migrationFiles embed.FS

// Module serves the /v1/mcp routes.
type Module struct {
	opts     options
	host     *runtime.Host
	logger   *slog.Logger
	store    *store
	catalog  *catalog
	servers  *registry
	sessions *sessionTable
	metrics  *metrics

	// launcher starts plugin processes; tests in this package replace it
	// before Provision.
	launcher launcher
	// system runs the supervisors; ownSystem is set when the host had none.
	system    *actor.ActorSystem
	ownSystem bool

	// current is the registry of the running module, read by the metrics.
	current atomic.Pointer[registry]
	// workerRestarts counts the automatic restarts of plugin processes since
	// the process started, for /status.
	workerRestarts atomic.Int64

	sweepMu    sync.Mutex
	sweepTimer clock.Timer
	sweeping   bool
}

// Info names the module and its dependencies: auth for the users and
// their sessions, entitlements for the tier that grants mcp_hosting and
// the number of servers.
func (m *Module) Info() runtime.ModuleInfo {
	return runtime.ModuleInfo{Name: Name, Title: "MCP Hosting", Requires: []string{"auth", "entitlements"}}
}

// Migrations returns the module's tables: servers and their tokens.
func (m *Module) Migrations() storage.MigrationSet {
	return storage.EmbeddedMigrationSet(Name, migrationFiles)
}

// Decode reads modules.mcp strictly over the defaults.
func (m *Module) Decode(section map[string]any) error {
	opts, err := configs.DecodeModule(Name, section, defaultOptions(), options.validate)
	if err != nil {
		return err
	}
	m.opts = opts
	return nil
}

// Provision reads the manifest of every catalog plugin and builds the
// store, the session table and the registry of supervisors. A plugin that
// fails is marked unavailable and logged; the module still starts.
func (m *Module) Provision(ctx context.Context, host *runtime.Host) error {
	m.host = host
	m.logger = host.Logger.With(slog.String("module", Name))
	m.store = &store{db: host.DB}
	if m.launcher == nil {
		m.launcher = hostLauncher{}
	}

	registerer, err := runtime.Lookup[prometheus.Registerer](host.Services, runtime.ServiceMetrics)
	if err != nil {
		m.logger.Warn("no metrics registry, mcp metrics are not exported", slog.String("error", err.Error()))
		registerer = prometheus.NewRegistry()
	}
	m.metrics = newMetrics(registerer, &m.current)

	m.system = host.System
	m.ownSystem = m.system == nil
	if m.ownSystem {
		m.system = actor.NewActorSystem()
	}

	startTimeout := func(ctx context.Context) (context.Context, context.CancelFunc) {
		return context.WithTimeout(ctx, m.opts.StartTimeout)
	}
	m.catalog = loadCatalog(ctx, m.opts.Catalog, m.launcher, startTimeout, m.logger)
	m.sessions = newSessionTable(m.opts, host.Clock, m.logger, m.metrics)

	storeTimeout := host.Config.Server.StoreTimeout
	if storeTimeout <= 0 {
		storeTimeout = 5 * time.Second
	}
	deps := &supervisorDeps{
		opts:         m.opts,
		launcher:     m.launcher,
		catalog:      m.catalog,
		store:        m.store,
		masterKey:    host.MasterKey,
		clock:        host.Clock,
		logger:       m.logger,
		metrics:      m.metrics,
		storeTimeout: storeTimeout,
		restarts:     &m.workerRestarts,
		endSessions:  m.sessions.endServer,
	}
	m.servers = newRegistry(deps, m.system)
	return nil
}

// Validate has nothing to check beyond Decode: plugins that fail their
// checks are marked unavailable instead.
func (m *Module) Validate() error { return nil }

// Start arms the sweep of idle MCP sessions and lets account deletion reach
// the running servers.
func (m *Module) Start(context.Context) error {
	m.current.Store(m.servers)
	m.sweepMu.Lock()
	m.sweeping = true
	m.sweepMu.Unlock()
	m.scheduleSweep()
	activate(m)

	available := len(m.opts.Catalog) - len(m.catalog.unavailable())
	m.logger.Info("mcp hosting started", slog.Int("plugins", len(m.opts.Catalog)), slog.Int("available", available))
	return nil
}

// Stop ends every MCP session and stops every plugin process, each within
// stop_grace. It is safe after a Provision that failed and without Start.
func (m *Module) Stop(ctx context.Context) error {
	deactivate(m)
	m.sweepMu.Lock()
	m.sweeping = false
	if m.sweepTimer != nil {
		m.sweepTimer.Stop()
	}
	m.sweepMu.Unlock()

	if m.sessions != nil {
		m.sessions.endAll()
	}
	if m.servers != nil {
		m.servers.close(context.WithoutCancel(ctx))
	}
	m.current.Store(nil)
	if m.ownSystem && m.system != nil {
		m.system.Shutdown()
		m.system, m.ownSystem = nil, false
	}
	return nil
}

// Probe reports the module degraded while some servers crash-loop or some
// catalog plugins are unavailable; the other servers keep serving.
func (m *Module) Probe(context.Context) error {
	servers := m.current.Load()
	if servers == nil {
		return nil
	}

	var problems []error
	looping := 0
	for _, srv := range servers.all() {
		if srv.currentState() == stateCrashLoop {
			looping++
		}
	}
	if looping > 0 {
		problems = append(problems, fmt.Errorf("MCP servers in crash_loop: %d", looping))
	}
	for _, err := range m.catalog.unavailable() {
		problems = append(problems, err)
	}
	return errors.Join(problems...)
}

// WorkerRestarts returns the automatic restarts of plugin processes, which
// /status counts as the module's restarts.
func (m *Module) WorkerRestarts() int { return int(m.workerRestarts.Load()) }

// scheduleSweep ends idle MCP sessions every sessionSweepInterval on the clock.
func (m *Module) scheduleSweep() {
	m.sweepMu.Lock()
	defer m.sweepMu.Unlock()
	if !m.sweeping {
		return
	}
	m.sweepTimer = m.host.Clock.AfterFunc(sessionSweepInterval(m.opts.SessionIdleTimeout), func() {
		if ended := m.sessions.sweep(); ended > 0 {
			m.logger.Info("idle mcp sessions ended", slog.Int("sessions", ended))
		}
		m.scheduleSweep()
	})
}

// Routes lists the module's routes. The MCP endpoint also accepts the
// per-server tokens of POST …/tokens, which the module checks itself.
func (m *Module) Routes() []edge.Route {
	private := func(method, path, summary string, handler edge.HandlerFunc) edge.Route {
		return edge.Route{Method: method, Path: path, Module: Name, Handler: handler, Authenticated: true,
			Feature: feature, Summary: summary}
	}
	endpoint := func(method, summary string, handler edge.HandlerFunc) edge.Route {
		route := private(method, "/v1/mcp/servers/{id}/mcp", summary, handler)
		route.Credentials = m.verifyToken
		route.MaxBodyBytes = maxMessageBytes
		return route
	}
	return []edge.Route{
		private("GET", "/v1/mcp/plugins", "The catalog of MCP server plugins", m.listPlugins),
		private("POST", "/v1/mcp/servers", "Provision an MCP server", m.createServer),
		private("GET", "/v1/mcp/servers", "The caller's MCP servers", m.listServers),
		private("GET", "/v1/mcp/servers/{id}", "One MCP server with its state", m.getServer),
		private("PATCH", "/v1/mcp/servers/{id}", "Rename or reconfigure an MCP server", m.updateServer),
		private("DELETE", "/v1/mcp/servers/{id}", "Remove an MCP server", m.deleteServer),
		private("POST", "/v1/mcp/servers/{id}/restart", "Restart an MCP server", m.restartServer),
		private("GET", "/v1/mcp/servers/{id}/logs", "The tail of an MCP server's stderr", m.serverLogs),
		private("POST", "/v1/mcp/servers/{id}/tokens", "Create a token for the server's MCP endpoint", m.createToken),
		private("GET", "/v1/mcp/servers/{id}/tokens", "The tokens of an MCP server", m.listTokens),
		private("DELETE", "/v1/mcp/servers/{id}/tokens/{token_id}", "Revoke a token of an MCP server", m.revokeToken),
		endpoint("POST", "Send JSON-RPC messages to the MCP server (Streamable HTTP)", m.mcpPost),
		endpoint("GET", "The MCP server's event stream (Streamable HTTP)", m.mcpGet),
		endpoint("DELETE", "End an MCP session (Streamable HTTP)", m.mcpDelete),
	}
}

// active holds the running modules, so that account deletion, which runs
// as a hook outside any module, can stop the user's servers. A server runs
// only on the node that started it; another node stops its process when
// the server's next start finds the row gone.
var (
	activeMu sync.Mutex
	active   = map[*Module]bool{}
)

func activate(m *Module) {
	activeMu.Lock()
	defer activeMu.Unlock()
	active[m] = true
}

func deactivate(m *Module) {
	activeMu.Lock()
	defer activeMu.Unlock()
	delete(active, m)
}

// deleteUser is the account deletion hook: it stops the user's servers on
// this node and deletes their rows and tokens.
func deleteUser(ctx context.Context, db *storage.DB, userID string) error {
	activeMu.Lock()
	modules := make([]*Module, 0, len(active))
	for m := range active {
		modules = append(modules, m)
	}
	activeMu.Unlock()

	for _, m := range modules {
		if err := m.stopUserServers(ctx, userID); err != nil {
			return err
		}
	}
	return deleteUserRows(ctx, db, userID)
}

// stopUserServers stops every server of the user and ends their sessions.
func (m *Module) stopUserServers(ctx context.Context, userID string) error {
	ids, err := m.store.serverIDsOfUser(ctx, m.store.db, userID)
	if err != nil {
		return err
	}
	for _, id := range ids {
		m.removeServer(id)
	}
	return nil
}

// removeServer stops the server's process and drops the server from the
// registry, bounded by stop_grace and the kill that follows it.
func (m *Module) removeServer(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.StopGrace+2*stopKillWait)
	defer cancel()
	m.servers.remove(ctx, id)
	m.sessions.endServer(id, nil)
}
