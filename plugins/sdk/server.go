package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nexus-suite/nexus/plugins/contract"
)

// Shutdown bounds and the parent watch interval.
const (
	// sessionCloseTimeout bounds the wait for open sessions to close during a
	// shutdown.
	sessionCloseTimeout = 2 * time.Second
	// callsDrainTimeout bounds the wait for unary gRPC calls in flight to
	// finish before the gRPC server stops.
	callsDrainTimeout = time.Second
	// callsDrainPoll is how often that wait checks the calls in flight.
	callsDrainPoll = 5 * time.Millisecond
	// parentCheckInterval is how often the plugin checks that its host still
	// runs, in case the parent-death signal was missed.
	parentCheckInterval = 500 * time.Millisecond
)

// pluginServer implements the contract service on top of a Backend and runs
// the plugin's life: handshake, sessions, shutdown.
type pluginServer struct {
	manifest Manifest
	backend  Backend
	logger   *slog.Logger

	// inflight counts unary calls being handled, which a shutdown lets
	// finish.
	inflight atomic.Int64

	mu         sync.Mutex
	grpcServer *grpc.Server
	configured bool
	sessions   map[*relay]struct{}

	shutdownOnce sync.Once
	shuttingDown chan struct{}
	// orphaned is set when the host died, so the plugin kills its own
	// process group on the way out.
	orphaned bool
}

func newPluginServer(manifest Manifest, backend Backend) *pluginServer {
	return &pluginServer{
		manifest:     manifest,
		backend:      backend,
		logger:       Logger().With("plugin", manifest.Name),
		sessions:     make(map[*relay]struct{}),
		shuttingDown: make(chan struct{}),
	}
}

// serve runs go-plugin's Serve until the gRPC server stops, then kills the
// plugin's process group when the host died.
func (s *pluginServer) serve() {
	go s.watchHost()

	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: contract.Handshake,
		Plugins: plugin.PluginSet{
			contract.PluginName: &contract.GRPCPlugin{Impl: s},
		},
		GRPCServer: func(options []grpc.ServerOption) *grpc.Server {
			options = append(options,
				grpc.MaxRecvMsgSize(contract.MaxMessageBytes),
				grpc.MaxSendMsgSize(contract.MaxMessageBytes),
				grpc.UnaryInterceptor(s.countCall))
			server := grpc.NewServer(options...)
			s.mu.Lock()
			s.grpcServer = server
			s.mu.Unlock()
			return server
		},
		Logger: hclogToStderr(),
	})

	s.mu.Lock()
	orphaned := s.orphaned
	s.mu.Unlock()
	if orphaned {
		removeSocketDir()
		killOwnGroup()
	}
}

// removeSocketDir removes the directory the host created for the plugin's
// Unix socket, which a dead host cannot remove any more.
func removeSocketDir() {
	if dir := os.Getenv(plugin.EnvUnixSocketDir); dir != "" {
		_ = os.RemoveAll(dir)
	}
}

// Manifest returns the manifest given to Serve.
func (s *pluginServer) Manifest(context.Context) (Manifest, error) {
	return s.manifest, nil
}

// Configure passes the config to the backend once; a later call fails.
func (s *pluginServer) Configure(ctx context.Context, config json.RawMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	if s.configured {
		return status.Error(codes.FailedPrecondition, "plugin is already configured")
	}
	if err := s.backend.Configure(ctx, config); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	s.configured = true
	return nil
}

// Session relays one session between the host's stream and the backend.
func (s *pluginServer) Session(stream contract.SessionStream) error {
	s.mu.Lock()
	configured := s.configured
	s.mu.Unlock()
	if !configured {
		return status.Error(codes.FailedPrecondition, "plugin is not configured")
	}
	select {
	case <-s.shuttingDown:
		return status.Error(codes.Unavailable, "plugin is shutting down")
	default:
	}

	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	conn, err := s.backend.Open(ctx)
	if err != nil {
		s.logger.Error("open session failed", "error", err)
		return status.Error(codes.Internal, "open session: "+err.Error())
	}

	r := &relay{stream: stream, conn: conn, cancel: cancel}
	if !s.track(r) {
		conn.Close()
		return status.Error(codes.Unavailable, "plugin is shutting down")
	}
	defer s.untrack(r)

	return r.run(ctx)
}

// Shutdown starts a graceful shutdown and returns at once: open sessions
// close, unary calls in flight get callsDrainTimeout to finish, and Serve
// returns.
func (s *pluginServer) Shutdown(context.Context) error {
	go s.shutdown("host request")
	return nil
}

func (s *pluginServer) shutdown(reason string) {
	s.shutdownOnce.Do(func() {
		s.logger.Info("plugin shutting down", "reason", reason)
		close(s.shuttingDown)

		s.closeSessions()
		s.stopGRPC()
	})
}

// closeSessions closes every open session and waits up to
// sessionCloseTimeout for them to end.
func (s *pluginServer) closeSessions() {
	s.mu.Lock()
	relays := make([]*relay, 0, len(s.sessions))
	for r := range s.sessions {
		relays = append(relays, r)
	}
	s.mu.Unlock()

	var wg sync.WaitGroup
	for _, r := range relays {
		wg.Go(r.close)
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()

	select {
	case <-done:
	case <-time.After(sessionCloseTimeout):
		s.logger.Warn("sessions did not close in time", "timeout", sessionCloseTimeout)
	}
}

// stopGRPC waits up to callsDrainTimeout for unary calls in flight, then
// stops the gRPC server, after which Serve returns.
//
// grpc.Server.GracefulStop would wait for go-plugin's own streams (stdio and
// broker), which last as long as the host's connection, so it would always
// take its whole bound.
func (s *pluginServer) stopGRPC() {
	s.mu.Lock()
	server, orphaned := s.grpcServer, s.orphaned
	s.mu.Unlock()

	// Before the handshake there is no server to stop, and go-plugin's Serve
	// has no other way out.
	if server == nil {
		if orphaned {
			removeSocketDir()
			killOwnGroup()
		}
		os.Exit(0)
	}

	deadline := time.Now().Add(callsDrainTimeout)
	for s.inflight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(callsDrainPoll)
	}
	server.Stop()
}

// countCall is the unary interceptor that counts calls in flight.
func (s *pluginServer) countCall(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	return handler(ctx, req)
}

func (s *pluginServer) track(r *relay) bool {
	s.mu.Lock()
	defer s.mu.Unlock()

	select {
	case <-s.shuttingDown:
		return false
	default:
	}
	s.sessions[r] = struct{}{}
	return true
}

func (s *pluginServer) untrack(r *relay) {
	s.mu.Lock()
	delete(s.sessions, r)
	s.mu.Unlock()
}

// watchHost shuts the plugin down when the host dies. It acts on SIGTERM,
// which the host has the kernel send at its death, and on a parent pid that
// is no longer the host's, checked every parentCheckInterval.
func (s *pluginServer) watchHost() {
	hostPID := os.Getppid()
	if value, err := strconv.Atoi(os.Getenv(contract.EnvHostPID)); err == nil {
		hostPID = value
	}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM)
	ticker := time.NewTicker(parentCheckInterval)
	defer ticker.Stop()

	for {
		if os.Getppid() != hostPID {
			s.orphan("host process exited")
			return
		}

		select {
		case <-signals:
			s.orphan("received SIGTERM")
			return
		case <-ticker.C:
		case <-s.shuttingDown:
			return
		}
	}
}

// orphan shuts down a plugin that lost its host, and marks it to kill its
// own process group once stopped.
func (s *pluginServer) orphan(reason string) {
	s.mu.Lock()
	s.orphaned = true
	s.mu.Unlock()

	s.shutdown(reason)
}

// killOwnGroup sends SIGKILL to the plugin's process group, ending the
// processes the plugin started and the plugin itself. It does nothing when
// the plugin does not lead its group, as when started by hand from a shell.
func killOwnGroup() {
	pid := os.Getpid()
	if syscall.Getpgrp() != pid {
		return
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

// errSessionClosed ends a relay closed by the plugin's shutdown.
var errSessionClosed = errors.New("session closed")

// relay copies messages between one host stream and one backend Conn.
type relay struct {
	stream contract.SessionStream
	conn   Conn
	cancel context.CancelFunc

	closeOnce sync.Once
}

// run relays until either side ends: the host closing its send side, the
// backend ending the session, or close. It returns once nothing writes to
// the stream any more, which gRPC requires of a returning handler.
func (r *relay) run(ctx context.Context) error {
	fromHost := make(chan error, 1)
	go func() {
		fromHost <- r.copyFromHost(ctx)
	}()
	toHost := make(chan error, 1)
	go func() {
		toHost <- r.copyToHost(ctx)
	}()

	var err error
	select {
	case err = <-fromHost:
		r.close()
		<-toHost
	case err = <-toHost:
		r.close()
	}

	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, errSessionClosed) || ctx.Err() != nil {
		return nil
	}
	return status.Error(codes.Internal, err.Error())
}

func (r *relay) copyFromHost(ctx context.Context) error {
	for {
		message, err := r.stream.Recv()
		if err != nil {
			return err
		}
		if err := r.conn.Write(ctx, message); err != nil {
			return err
		}
	}
}

func (r *relay) copyToHost(ctx context.Context) error {
	for {
		message, err := r.conn.Read(ctx)
		if err != nil {
			return err
		}
		if err := r.stream.Send(message); err != nil {
			return err
		}
	}
}

// close ends the backend session and the relay's context.
func (r *relay) close() {
	r.closeOnce.Do(func() {
		_ = r.conn.Close()
		r.cancel()
	})
}

// hclogToStderr returns the logger for go-plugin's own records: warnings and
// errors only, as text on the plugin's stderr.
func hclogToStderr() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "go-plugin", Level: hclog.Warn, Output: stderr{}})
}
