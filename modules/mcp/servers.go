package mcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/nexus-suite/nexus/plugins/host"
	"github.com/nexus-suite/nexus/runtime/clock"
)

// server is the in-memory record of one hosted server on this node: its
// supervisor and the state that handlers read without asking it.
type server struct {
	id, userID, plugin string
	pid                *actor.PID
	logs               *logRing
	// done is closed when the supervisor has stopped.
	done chan struct{}

	mu        sync.Mutex
	state     serverState
	restarts  int
	lastError string
	startedAt time.Time
	retryAt   time.Time
	proc      process

	// lastActivity is the clock time of the latest MCP request, in unix nanoseconds.
	lastActivity atomic.Int64
}

// serverStatus is a snapshot of a server's supervision.
type serverStatus struct {
	State     serverState
	Restarts  int
	LastError string
	StartedAt time.Time
}

func (s *server) status() serverStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return serverStatus{State: s.state, Restarts: s.restarts, LastError: s.lastError, StartedAt: s.startedAt}
}

func (s *server) currentState() serverState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// view returns what ensureRunning needs.
func (s *server) view() (serverState, string, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, s.lastError, s.retryAt
}

// setState sets the state and, when lastError is not empty, the last error.
func (s *server) setState(state serverState, lastError string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state = state
	if lastError != "" {
		s.lastError = lastError
	}
}

func (s *server) setRunning(proc process, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state, s.proc, s.startedAt = stateRunning, proc, now
}

func (s *server) setRestarting(reason string, retryAt time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state, s.lastError, s.retryAt = stateRestarting, reason, retryAt
	s.restarts++
}

func (s *server) clearProcess() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proc = nil
}

// process returns the running process, or nil.
func (s *server) process() process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

func (s *server) touch(now time.Time) { s.lastActivity.Store(now.UnixNano()) }

func (s *server) lastActive() time.Time { return time.Unix(0, s.lastActivity.Load()) }

// supervisorDeps is what every supervisor of the module shares.
type supervisorDeps struct {
	opts         options
	launcher     launcher
	catalog      *catalog
	store        *store
	masterKey    []byte
	clock        clock.Clock
	logger       *slog.Logger
	metrics      *metrics
	storeTimeout time.Duration
	// restarts counts the automatic restarts of every server of the module.
	restarts *atomic.Int64
	// endSessions ends the MCP sessions of a server that were opened on
	// proc, or all of them when proc is nil.
	endSessions func(serverID string, proc process)
}

// start loads the server's config and secrets and launches its plugin.
func (d *supervisorDeps) start(ctx context.Context, srv *server) (process, error) {
	storeCtx, cancel := context.WithTimeout(ctx, d.storeTimeout)
	row, err := d.store.serverByID(storeCtx, srv.id)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("load server %s: %w", srv.id, err)
	}

	plugin := d.catalog.plugin(row.Plugin)
	switch {
	case plugin == nil:
		return nil, fmt.Errorf("plugin %s is not in the catalog", row.Plugin)
	case plugin.err != nil:
		return nil, fmt.Errorf("plugin %s is unavailable: %w", row.Plugin, plugin.err)
	}
	config, err := plugin.resolveConfig(row.Config)
	if err != nil {
		return nil, fmt.Errorf("config of server %s: %w", srv.id, err)
	}
	secrets, err := openSecrets(d.masterKey, srv.id, row.SecretsSealed)
	if err != nil {
		return nil, err
	}

	return d.launcher.Launch(ctx, host.Spec{
		Path:         plugin.entry.Path,
		SHA256:       plugin.checksum,
		Args:         plugin.entry.Args,
		Env:          secretEnv(secrets),
		Config:       config,
		Stderr:       srv.logs,
		StartTimeout: d.opts.StartTimeout,
		Logger:       d.logger.With(slog.String("server_id", srv.id), slog.String("plugin", row.Plugin)),
	})
}

// stopProcess stops proc within stop_grace and logs a failure.
func (d *supervisorDeps) stopProcess(proc process, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), d.opts.StopGrace+stopKillWait)
	defer cancel()
	if err := proc.Stop(ctx, d.opts.StopGrace); err != nil {
		logger.Error("stop mcp server process failed", slog.Int("pid", proc.Pid()), slog.String("error", err.Error()))
	}
}

// stopKillWait bounds the wait for a killed process group after stop_grace.
const stopKillWait = 5 * time.Second

// registry holds the servers that this node has touched, each with its
// supervisor, keyed by server id. Servers load on first use, so a node does
// not start every user's plugin when it boots.
//
// NOTE: supervisors and MCP sessions are local to a node. With several
// nodes, each node that gets a request for a server runs a process of its
// own, and a client must reach the node that holds its session, for
// example through a load balancer keyed on Mcp-Session-Id.
type registry struct {
	deps   *supervisorDeps
	system *actor.ActorSystem

	mu     sync.Mutex
	byID   map[string]*server
	closed bool
}

func newRegistry(deps *supervisorDeps, system *actor.ActorSystem) *registry {
	return &registry{deps: deps, system: system, byID: map[string]*server{}}
}

var errRegistryClosed = errors.New("mcp hosting is stopping")

// lookup returns the server with its supervisor, loading its owner and
// plugin from the store when this node has not seen it yet.
func (r *registry) lookup(ctx context.Context, id string) (*server, error) {
	r.mu.Lock()
	srv, ok := r.byID[id]
	closed := r.closed
	r.mu.Unlock()
	if ok {
		return srv, nil
	}
	if closed {
		return nil, errRegistryClosed
	}

	row, err := r.deps.store.serverByID(ctx, id)
	if err != nil {
		return nil, err
	}
	return r.add(row.ID, row.UserID, row.Plugin)
}

// known returns the server if this node has it in memory.
func (r *registry) known(id string) *server {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byID[id]
}

// add returns the server, spawning its supervisor unless it has one.
func (r *registry) add(id, userID, plugin string) (*server, error) {
	r.mu.Lock()
	defer r.mu.Unlock()

	if r.closed {
		return nil, errRegistryClosed
	}
	if srv, ok := r.byID[id]; ok {
		return srv, nil
	}
	srv := &server{
		id: id, userID: userID, plugin: plugin,
		logs:  newLogRing(r.deps.opts.LogLines, r.deps.clock),
		done:  make(chan struct{}),
		state: stateIdle,
	}
	logger := r.deps.logger.With(slog.String("server_id", id), slog.String("user_id", userID), slog.String("plugin", plugin))
	props := actor.PropsFromProducer(func() actor.Actor {
		return &supervisor{deps: r.deps, server: srv, logger: logger}
	})
	srv.pid = r.system.Root.SpawnPrefix(props, "mcp-server-")
	r.byID[id] = srv
	return srv, nil
}

// all returns every server in memory.
func (r *registry) all() []*server {
	r.mu.Lock()
	defer r.mu.Unlock()
	list := make([]*server, 0, len(r.byID))
	for _, srv := range r.byID {
		list = append(list, srv)
	}
	return list
}

// ask sends a message with a reply channel to the server's supervisor and
// waits for the reply, the supervisor's end or ctx.
func (r *registry) ask(ctx context.Context, srv *server, build func(reply chan error) any) error {
	reply := make(chan error, 1)
	r.system.Root.Send(srv.pid, build(reply))
	select {
	case err := <-reply:
		return err
	case <-srv.done:
		return errServerStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ensureRunning starts the server unless it runs, and waits until it does.
func (r *registry) ensureRunning(ctx context.Context, srv *server) (process, error) {
	if proc := srv.process(); proc != nil && srv.currentState() == stateRunning && !hasExited(proc) {
		return proc, nil
	}
	err := r.ask(ctx, srv, func(reply chan error) any { return &ensureRunning{reply: reply} })
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, errStartTimeout
	}
	if err != nil {
		return nil, err
	}
	proc := srv.process()
	if proc == nil {
		return nil, errServerStopped
	}
	return proc, nil
}

func hasExited(proc process) bool {
	select {
	case <-proc.Exited():
		return true
	default:
		return false
	}
}

// remove stops the server's supervisor and process and drops the server from the registry.
func (r *registry) remove(ctx context.Context, id string) {
	r.mu.Lock()
	srv, ok := r.byID[id]
	delete(r.byID, id)
	r.mu.Unlock()
	if !ok {
		return
	}
	r.stop(ctx, srv)
}

func (r *registry) stop(ctx context.Context, srv *server) {
	err := r.ask(ctx, srv, func(reply chan error) any { return &stopServer{reply: reply} })
	if err != nil && !errors.Is(err, errServerStopped) {
		r.deps.logger.Error("stop mcp server failed", slog.String("server_id", srv.id), slog.String("error", err.Error()))
	}
}

// close stops every server at once and refuses new ones.
func (r *registry) close(ctx context.Context) {
	r.mu.Lock()
	r.closed = true
	servers := make([]*server, 0, len(r.byID))
	for _, srv := range r.byID {
		servers = append(servers, srv)
	}
	r.byID = map[string]*server{}
	r.mu.Unlock()

	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.stop(ctx, srv)
		}()
	}
	wg.Wait()
}
