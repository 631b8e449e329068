package mcp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nexus-suite/nexus/plugins/host"
	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/storage"
	"github.com/nexus-suite/nexus/storage/storagetest"
)

// fixture is a registry of supervisors over SQLite, a fake clock and a
// fake launcher, with one server of user usr_1 stored.
type fixture struct {
	clock    *clock.Fake
	launcher *fakeLauncher
	registry *registry
	sessions *sessionTable
	deps     *supervisorDeps
	serverID string
}

func newFixture(t *testing.T, configure ...func(*options)) *fixture {
	t.Helper()
	db := storagetest.SQLite(t, storage.CoreMigrations, (&Module{}).Migrations())
	fake := clock.NewFake(time.Unix(1_800_000_000, 0))
	ctx := context.Background()

	opts := defaultOptions()
	opts.BackoffBase, opts.BackoffMax = time.Second, 4*time.Second
	opts.CrashLoopRestarts, opts.CrashLoopWindow = 3, time.Minute
	opts.HealthInterval, opts.HealthFailures = 10*time.Second, 2
	opts.IdleTimeout = 10 * time.Minute
	opts.StopGrace = 0
	for _, apply := range configure {
		apply(&opts)
	}

	if _, err := db.ExecContext(ctx, `INSERT INTO users (id, email, created_at) VALUES ('usr_1', 'a@example.com', 0)`); err != nil {
		t.Fatalf("insert user: %v", err)
	}
	s := &store{db: db}
	now := fake.Now()
	masterKey := make([]byte, 32)
	sealed, err := sealSecrets(masterKey, "mcs_1", map[string]string{"API_KEY": "s3cret"})
	if err != nil {
		t.Fatalf("seal: %v", err)
	}
	row := serverRow{ID: "mcs_1", UserID: "usr_1", Plugin: "notes", Name: "notes", Config: []byte(`{"title":"x"}`),
		SecretsSealed: sealed, SecretNames: []string{"API_KEY"}, CreatedAt: now, UpdatedAt: now}
	if err := s.createServer(ctx, row, 10); err != nil {
		t.Fatalf("create server: %v", err)
	}

	launcher := &fakeLauncher{}
	logger := slog.New(slog.DiscardHandler)
	m := newMetrics(prometheus.NewRegistry(), &atomic.Pointer[registry]{})
	sessions := newSessionTable(opts, fake, logger, m)
	cat := &catalog{names: []string{"notes"}, plugins: map[string]*catalogPlugin{
		"notes": {entry: catalogEntry{Name: "notes", Path: "/opt/notes"}, checksum: make([]byte, 32),
			manifest: host.Manifest{Name: "notes", Version: "1.0.0", Secrets: []host.SecretSpec{{Name: "API_KEY"}}}},
	}}
	deps := &supervisorDeps{
		opts: opts, launcher: launcher, catalog: cat, store: s, masterKey: masterKey, clock: fake,
		logger: logger, metrics: m, storeTimeout: 5 * time.Second, restarts: &atomic.Int64{},
		endSessions: sessions.endServer,
	}
	system := actor.NewActorSystem()
	reg := newRegistry(deps, system)
	t.Cleanup(func() {
		reg.close(context.Background())
		system.Shutdown()
	})
	return &fixture{clock: fake, launcher: launcher, registry: reg, sessions: sessions, deps: deps, serverID: "mcs_1"}
}

func (f *fixture) server(t *testing.T) *server {
	t.Helper()
	srv, err := f.registry.lookup(context.Background(), f.serverID)
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	return srv
}

func (f *fixture) start(t *testing.T, srv *server) process {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	proc, err := f.registry.ensureRunning(ctx, srv)
	if err != nil {
		t.Fatalf("ensureRunning: %v", err)
	}
	return proc
}

// waitState polls until the server reaches state.
func waitState(t *testing.T, srv *server, state serverState) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for srv.currentState() != state {
		if time.Now().After(deadline) {
			t.Fatalf("state = %s, want %s (last error %q)", srv.currentState(), state, srv.status().LastError)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitFor polls until check holds.
func waitFor(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestSupervisorColdStart(t *testing.T) {
	f := newFixture(t)
	srv := f.server(t)
	if got := srv.currentState(); got != stateIdle {
		t.Fatalf("state before the first request = %s, want idle", got)
	}

	f.start(t, srv)

	if got := f.launcher.launchCount(); got != 1 {
		t.Fatalf("launches = %d, want 1", got)
	}
	spec := f.launcher.lastSpec()
	if len(spec.Env) != 1 || spec.Env[0] != "API_KEY=s3cret" {
		t.Errorf("env = %q, want the decrypted secret", spec.Env)
	}
	if string(spec.Config) != `{"title":"x"}` {
		t.Errorf("config = %s, want the stored config", spec.Config)
	}
	if spec.Path != "/opt/notes" || len(spec.SHA256) != 32 {
		t.Errorf("spec path %q sha256 %x, want the catalog entry", spec.Path, spec.SHA256)
	}

	f.start(t, srv)
	if got := f.launcher.launchCount(); got != 1 {
		t.Errorf("launches after a second request = %d, want 1", got)
	}
}

func TestSupervisorRestartsWithBackoff(t *testing.T) {
	f := newFixture(t)
	srv := f.server(t)
	f.start(t, srv)

	for i, wantDelay := range []time.Duration{time.Second, 2 * time.Second} {
		f.launcher.process(i).crash()
		waitState(t, srv, stateRestarting)

		f.clock.Advance(wantDelay - time.Millisecond)
		time.Sleep(20 * time.Millisecond)
		if got := f.launcher.launchCount(); got != i+1 {
			t.Fatalf("crash %d: launches before the backoff of %s = %d, want %d", i+1, wantDelay, got, i+1)
		}
		f.clock.Advance(time.Millisecond)
		waitState(t, srv, stateRunning)
	}

	status := srv.status()
	if status.Restarts != 2 {
		t.Errorf("restarts = %d, want 2", status.Restarts)
	}
	if status.LastError == "" {
		t.Error("last error is empty after two crashes")
	}
	if got := f.deps.restarts.Load(); got != 2 {
		t.Errorf("module restarts = %d, want 2", got)
	}
}

func TestSupervisorCrashLoop(t *testing.T) {
	f := newFixture(t)
	srv := f.server(t)
	f.launcher.setFail(errors.New("plugin handshake failed: stdout noise"))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := f.registry.ensureRunning(ctx, srv); err == nil {
		t.Fatal("ensureRunning succeeded with a failing launcher")
	}
	for restart := 1; restart <= 3; restart++ {
		waitState(t, srv, stateRestarting)
		f.clock.Advance(4 * time.Second)
		waitFor(t, "the next launch", func() bool { return f.launcher.launchCount() == restart+1 })
	}
	waitState(t, srv, stateCrashLoop)

	f.clock.Advance(time.Hour)
	time.Sleep(20 * time.Millisecond)
	if got := f.launcher.launchCount(); got != 4 {
		t.Errorf("launches in crash_loop = %d, want 4: a crash-looping server must not restart by itself", got)
	}
	var unavailable *unavailableError
	if _, err := f.registry.ensureRunning(ctx, srv); !errors.As(err, &unavailable) || unavailable.state != stateCrashLoop {
		t.Errorf("ensureRunning in crash_loop = %v, want an unavailableError in crash_loop", err)
	}

	f.launcher.setFail(nil)
	if err := f.registry.ask(ctx, srv, func(reply chan error) any { return &restartServer{reply: reply} }); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if got := srv.currentState(); got != stateRunning {
		t.Errorf("state after restart = %s, want running", got)
	}
}

func TestSupervisorIdleShutdown(t *testing.T) {
	f := newFixture(t)
	srv := f.server(t)
	f.start(t, srv)
	first := f.launcher.process(0)

	f.clock.Advance(5 * time.Minute)
	srv.touch(f.clock.Now())
	f.clock.Advance(5 * time.Minute)
	time.Sleep(20 * time.Millisecond)
	if srv.currentState() != stateRunning {
		t.Fatalf("state = %s after a request 5 minutes ago, want running", srv.currentState())
	}

	f.clock.Advance(5 * time.Minute)
	waitState(t, srv, stateIdle)
	if !first.stopped.Load() {
		t.Error("the idle process was not stopped")
	}

	f.start(t, srv)
	if got := f.launcher.launchCount(); got != 2 {
		t.Errorf("launches after a cold start = %d, want 2", got)
	}
}

func TestSupervisorHealthFailuresRestart(t *testing.T) {
	f := newFixture(t)
	srv := f.server(t)
	f.start(t, srv)
	proc := f.launcher.process(0)
	unhealthy := errors.New("not serving")
	proc.healthErr.Store(&unhealthy)

	f.clock.Advance(10 * time.Second)
	waitFor(t, "the second health check to be armed", func() bool { return f.clock.Pending() >= 2 })
	f.clock.Advance(10 * time.Second)
	waitState(t, srv, stateRestarting)

	if !proc.isGone() {
		t.Error("the unhealthy process is still running")
	}
}

func TestSupervisorStopDuringLaunch(t *testing.T) {
	f := newFixture(t)
	srv := f.server(t)
	f.launcher.block = make(chan struct{})

	f.registry.system.Root.Send(srv.pid, &ensureRunning{reply: make(chan error, 1)})
	waitFor(t, "the launch to begin", func() bool { return f.launcher.launchCount() == 1 })
	done := make(chan struct{})
	go func() {
		f.registry.remove(context.Background(), srv.id)
		close(done)
	}()
	<-done
	close(f.launcher.block)

	waitFor(t, "the late process to be stopped", func() bool {
		f.launcher.mu.Lock()
		defer f.launcher.mu.Unlock()
		return len(f.launcher.processes) == 1 && f.launcher.processes[0].isGone()
	})
}

func TestSupervisorCrashEndsSessions(t *testing.T) {
	f := newFixture(t)
	srv := f.server(t)
	proc := f.start(t, srv)
	stream, _ := proc.OpenSession(context.Background())
	sess, err := f.sessions.open(srv, proc, stream)
	if err != nil {
		t.Fatalf("open session: %v", err)
	}

	f.launcher.process(0).crash()

	select {
	case <-sess.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the session outlived its process")
	}
	if f.sessions.get(sess.id) != nil {
		t.Error("the ended session is still in the table")
	}
	if _, err := stream.Recv(context.Background()); !errors.Is(err, io.EOF) {
		t.Errorf("Recv on the ended stream = %v, want io.EOF", err)
	}
}

func TestBackoffDoublesToLimit(t *testing.T) {
	cases := []struct {
		restart int
		want    time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {4, 8 * time.Second}, {10, 8 * time.Second}}
	for _, tc := range cases {
		if got := backoff(time.Second, 8*time.Second, tc.restart); got != tc.want {
			t.Errorf("backoff of restart %d = %s, want %s", tc.restart, got, tc.want)
		}
	}
}
