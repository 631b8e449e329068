// Package host launches one MCP server plugin process and talks to it: the
// checksum check, the go-plugin handshake, the manifest, health checks, MCP
// sessions relayed as gRPC streams, and a stop that leaves nothing of the
// plugin running.
//
// A Plugin is one process. It runs in its own process group, so Stop and an
// unexpected exit can kill everything it started. It gets only a small
// allowlist of the host's environment plus Spec.Env, so the host's own
// settings never reach a plugin. The host parses no MCP, because a session
// carries opaque JSON-RPC messages both ways.
//
// Supervision (restarts, backoff, idle shutdown) is the caller's job.
package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/nexus-suite/nexus/plugins/contract"
)

// Manifest describes a plugin: name, version, description, the JSON Schema
// of its config and the secrets it reads from its environment.
type Manifest = contract.Manifest

// SecretSpec is one secret a plugin reads from its environment.
type SecretSpec = contract.SecretSpec

// Defaults for a zero Spec field or a manifest read.
const (
	// DefaultStartTimeout bounds the handshake and Configure when
	// Spec.StartTimeout is zero.
	DefaultStartTimeout = 10 * time.Second
	// manifestStopGrace bounds the graceful stop after ReadManifest.
	manifestStopGrace = 2 * time.Second
	// killWaitTimeout bounds the wait for the process to be gone after its
	// process group was sent SIGKILL.
	killWaitTimeout = 5 * time.Second
	// cleanupTimeout bounds the release of go-plugin's connection and socket
	// directory after the process is gone.
	cleanupTimeout = 5 * time.Second
)

// Errors a caller can tell apart with errors.Is.
var (
	// ErrChecksum is returned when the binary does not match Spec.SHA256.
	ErrChecksum = errors.New("plugin binary does not match its configured sha256")
	// ErrHandshake is returned when the process started but did not complete
	// the go-plugin handshake: it exited, timed out, wrote something else to
	// stdout first, or spoke another protocol version.
	ErrHandshake = errors.New("plugin handshake failed")
	// ErrConfigure is returned when the plugin rejected its config.
	ErrConfigure = errors.New("plugin rejected its config")
	// ErrExited is returned by calls made after the process is gone.
	ErrExited = errors.New("plugin process exited")
)

// Spec describes one plugin process to start.
type Spec struct {
	// Path is the plugin binary.
	Path string
	// SHA256 is the expected digest of the binary, checked before every start
	// with go-plugin's SecureConfig. A mismatch fails with ErrChecksum.
	SHA256 []byte
	// Args are extra command-line arguments.
	Args []string
	// Env is extra environment as NAME=value, such as the server's secrets.
	// It is never logged. It cannot override the go-plugin protocol's own
	// variables.
	Env []string
	// Config is the server's validated config, passed to the plugin's
	// Configure before Launch returns. Nil passes an empty object.
	Config json.RawMessage
	// Stderr receives the plugin's stderr and anything it writes to stdout
	// after the handshake, one complete line per Write call ending in '\n'.
	// Calls are serialized. Nil discards the output.
	Stderr io.Writer
	// StartTimeout bounds the handshake and Configure; DefaultStartTimeout
	// when zero.
	StartTimeout time.Duration
	// Logger receives the host's own records about this plugin; slog.Default
	// when nil. Plugin output never goes to it.
	Logger *slog.Logger
}

// Plugin is one running plugin process.
type Plugin struct {
	path   string
	logger *slog.Logger
	proc   *process
	client *plugin.Client
	conn   *grpc.ClientConn
	rpc    *contract.Client
	output *outputLines
	// started is proc for the goroutine that kills a start cancelled by its
	// context, which runs while go-plugin may still be creating proc.
	started atomic.Pointer[process]

	// sessionsCtx is the parent of every session stream, cancelled when the
	// process is gone so that no session outlives it.
	sessionsCtx    context.Context
	cancelSessions context.CancelFunc

	// socketDir is the directory go-plugin created for the plugin's Unix
	// socket, removed by cleanup.
	socketDir string

	stopOnce sync.Once
	stopErr  error
	cleaned  chan struct{}
}

// Launch verifies the binary's checksum, starts it in its own process group,
// runs the go-plugin handshake over gRPC and passes Spec.Config to the
// plugin. It returns when the plugin is ready to open sessions, or an error
// wrapping ErrChecksum, ErrHandshake or ErrConfigure. After an error nothing
// of the plugin is left running. ctx bounds the start only, not the plugin's
// life.
func Launch(ctx context.Context, spec Spec) (*Plugin, error) {
	config := spec.Config
	if config == nil {
		config = json.RawMessage("{}")
	}
	return launch(ctx, spec, config)
}

// ReadManifest starts the plugin binary just far enough to read its
// manifest, then stops it. It verifies the checksum like Launch and does not
// configure the plugin.
func ReadManifest(ctx context.Context, path string, sha256 []byte) (Manifest, error) {
	p, err := launch(ctx, Spec{Path: path, SHA256: sha256}, nil)
	if err != nil {
		return Manifest{}, err
	}
	defer p.Stop(context.WithoutCancel(ctx), manifestStopGrace)

	return p.Manifest(ctx)
}

// launch starts the plugin and configures it when config is not nil.
func launch(ctx context.Context, spec Spec, config json.RawMessage) (*Plugin, error) {
	startTimeout := spec.StartTimeout
	if startTimeout <= 0 {
		startTimeout = DefaultStartTimeout
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < startTimeout {
		startTimeout = max(time.Until(deadline), time.Millisecond)
	}
	logger := spec.Logger
	if logger == nil {
		logger = slog.Default()
	}
	// An absolute path keeps exec from looking a bare name up in PATH, which
	// would run another file than the one whose checksum was verified.
	path, err := filepath.Abs(spec.Path)
	if err != nil {
		return nil, fmt.Errorf("resolve plugin path %s: %w", spec.Path, err)
	}
	spec.Path = path
	logger = logger.With("plugin_path", spec.Path)

	if err := verifyChecksum(spec.Path, spec.SHA256); err != nil {
		return nil, err
	}

	p := &Plugin{
		path:    spec.Path,
		logger:  logger,
		output:  newOutputLines(spec.Stderr),
		cleaned: make(chan struct{}),
	}
	p.sessionsCtx, p.cancelSessions = context.WithCancel(context.Background())
	p.client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  contract.Handshake,
		Plugins:          plugin.PluginSet{contract.PluginName: &contract.GRPCPlugin{}},
		RunnerFunc:       p.newRunner(spec),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		StartTimeout:     startTimeout,
		Stderr:           p.output.writer(),
		SyncStderr:       p.output.writer(),
		SyncStdout:       p.output.writer(),
		SkipHostEnv:      true,
		// go-plugin's own records repeat the plugin's stderr, which may contain
		// the plugin's secrets, so they are dropped. The host logs the events
		// that matter itself.
		Logger: hclog.NewNullLogger(),
		// NOTE: AutoMTLS is off. The gRPC connection runs over a Unix socket
		// in a directory only the host's user can enter.
	})

	// Cancelling ctx kills the process group, which ends a pending handshake.
	stopWatch := context.AfterFunc(ctx, func() {
		if proc := p.started.Load(); proc != nil {
			proc.kill()
		}
	})
	err = p.connect(ctx, config, startTimeout)
	stopWatch()
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("%w: %s: %w", ErrHandshake, p.path, ctx.Err())
	}
	if err != nil {
		p.abort()
		return nil, err
	}

	go p.watchExit()
	logger.Debug("plugin started", "pid", p.Pid())
	return p, nil
}

// connect runs the handshake and, when config is not nil, Configure.
func (p *Plugin) connect(ctx context.Context, config json.RawMessage, timeout time.Duration) error {
	protocol, err := p.client.Client()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %s: %w", ErrHandshake, p.path, ctx.Err())
		}
		return fmt.Errorf("%w: %s: %w", ErrHandshake, p.path, err)
	}
	grpcClient, ok := protocol.(*plugin.GRPCClient)
	if !ok {
		return fmt.Errorf("%w: %s: plugin does not speak gRPC", ErrHandshake, p.path)
	}
	p.conn = grpcClient.Conn

	dispensed, err := protocol.Dispense(contract.PluginName)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrHandshake, p.path, err)
	}
	p.rpc = dispensed.(*contract.Client)

	if config == nil {
		return nil
	}
	configureCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := p.rpc.Configure(configureCtx, config); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrConfigure, p.path, rpcError(err))
	}
	return nil
}

// abort tears down a plugin whose start failed.
func (p *Plugin) abort() {
	if p.proc != nil {
		p.proc.kill()
	}
	p.cancelSessions()
	p.cleanup()
	if p.proc != nil {
		<-p.proc.exited
	}
}

// verifyChecksum compares the binary with want through go-plugin's
// SecureConfig, and names the actual digest when they differ.
//
// NOTE: the file is read here and executed a moment later, so a binary
// replaced in between runs unchecked. Keep plugin binaries in a directory
// only the operator can write.
func verifyChecksum(path string, want []byte) error {
	if len(want) != sha256.Size {
		return fmt.Errorf("%w: %s: expected a %d-byte sha256, got %d bytes", ErrChecksum, path, sha256.Size, len(want))
	}

	secure := &plugin.SecureConfig{Checksum: want, Hash: sha256.New()}
	ok, err := secure.Check(path)
	if err != nil {
		return fmt.Errorf("verify plugin checksum %s: %w", path, err)
	}
	if ok {
		return nil
	}

	got, err := FileSHA256(path)
	if err != nil {
		return fmt.Errorf("%w: %s: expected %x", ErrChecksum, path, want)
	}
	return fmt.Errorf("%w: %s: expected %x, got %x", ErrChecksum, path, want, got)
}

// FileSHA256 returns the sha256 digest of a file, as `sha256sum` prints it in
// hex.
func FileSHA256(path string) ([]byte, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()

	digest := sha256.New()
	if _, err := io.Copy(digest, file); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return digest.Sum(nil), nil
}

// ParseSHA256 decodes a sha256 digest written in hex, as in a catalog entry.
func ParseSHA256(text string) ([]byte, error) {
	digest, err := hex.DecodeString(text)
	if err != nil || len(digest) != sha256.Size {
		return nil, fmt.Errorf("invalid sha256 %q: expected %d hex digits", text, 2*sha256.Size)
	}
	return digest, nil
}

// newRunner returns the go-plugin RunnerFunc that builds the command: the
// binary with Spec.Args, its own process group, and an environment of the
// allowlisted host variables, Spec.Env and then go-plugin's variables, so
// that Spec.Env cannot override the protocol.
func (p *Plugin) newRunner(spec Spec) func(hclog.Logger, *exec.Cmd, string) (runner.Runner, error) {
	return func(_ hclog.Logger, protocolCmd *exec.Cmd, socketDir string) (runner.Runner, error) {
		p.socketDir = socketDir
		cmd := exec.Command(spec.Path, spec.Args...)
		cmd.Env = pluginEnv(spec.Env, protocolCmd.Env)
		cmd.Stdin = nil

		proc, err := newProcess(cmd, p.path)
		if err != nil {
			return nil, err
		}
		p.proc = proc
		p.started.Store(proc)
		return proc, nil
	}
}

// Pid returns the plugin's process id, which is also its process group id.
func (p *Plugin) Pid() int {
	if p.proc == nil {
		return 0
	}
	return p.proc.pid
}

// Exited returns a channel closed when the process is gone. By then every
// process left in its process group has been sent SIGKILL.
func (p *Plugin) Exited() <-chan struct{} {
	return p.proc.exited
}

// ExitErr returns why the process exited, once Exited is closed: nil for a
// clean exit, an *exec.ExitError for an exit status or a signal. Before that
// it returns nil.
func (p *Plugin) ExitErr() error {
	select {
	case <-p.proc.exited:
		return p.proc.exitErr
	default:
		return nil
	}
}

// Manifest reads the plugin's manifest.
func (p *Plugin) Manifest(ctx context.Context) (Manifest, error) {
	manifest, err := p.rpc.Manifest(ctx)
	if err != nil {
		return Manifest{}, fmt.Errorf("read manifest of %s: %w", p.path, p.callError(err))
	}
	return manifest, nil
}

// Health checks the plugin through the gRPC health service. It returns nil
// when the plugin reports SERVING, ErrExited when the process is gone, and
// another error otherwise.
func (p *Plugin) Health(ctx context.Context) error {
	select {
	case <-p.proc.exited:
		return ErrExited
	default:
	}

	resp, err := grpc_health_v1.NewHealthClient(p.conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{
		Service: contract.HealthService,
	})
	if err != nil {
		return fmt.Errorf("plugin health check: %w", p.callError(err))
	}
	if resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
		return fmt.Errorf("plugin health check: status %s", resp.GetStatus())
	}
	return nil
}

// OpenSession opens one MCP session on the plugin: a bidirectional stream of
// JSON-RPC messages. ctx bounds the open only; the session lasts until
// Close, the plugin ends it, or the process is gone.
func (p *Plugin) OpenSession(ctx context.Context) (Session, error) {
	select {
	case <-p.proc.exited:
		return nil, ErrExited
	case <-ctx.Done():
		return nil, ctx.Err()
	default:
	}

	streamCtx, cancel := context.WithCancel(p.sessionsCtx)
	stream, err := p.rpc.Session(streamCtx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("open plugin session: %w", p.callError(err))
	}
	return newSession(stream, cancel, p.proc.exited), nil
}

// Stop requests a graceful shutdown from the plugin, waits up to grace for the
// process to exit, then sends SIGKILL to its whole process group, and waits
// for the process to be gone. ctx cuts the graceful wait short. Calls after
// the first wait for the first and return its result.
func (p *Plugin) Stop(ctx context.Context, grace time.Duration) error {
	p.stopOnce.Do(func() {
		p.stopErr = p.stop(ctx, grace)
	})
	if p.stopErr != nil {
		return p.stopErr
	}

	// The process is gone, and cleanup ends within cleanupTimeout.
	<-p.cleaned
	return nil
}

func (p *Plugin) stop(ctx context.Context, grace time.Duration) error {
	graceCtx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()

	select {
	case <-p.proc.exited:
		return nil
	default:
	}

	if err := p.rpc.Shutdown(graceCtx); err != nil && graceCtx.Err() == nil {
		p.logger.Debug("plugin shutdown call failed; waiting for the process to exit", "pid", p.Pid(), "error", err)
	}
	select {
	case <-p.proc.exited:
		p.logger.Debug("plugin stopped", "pid", p.Pid())
		return nil
	case <-graceCtx.Done():
	}

	p.logger.Warn("plugin did not exit within its grace period; killing its process group", "pid", p.Pid(), "grace", grace)
	p.proc.kill()
	select {
	case <-p.proc.exited:
		return nil
	case <-time.After(killWaitTimeout):
		return fmt.Errorf("stop plugin %s (pid %d): still running %s after SIGKILL", p.path, p.Pid(), killWaitTimeout)
	}
}

// watchExit waits for the process to be gone, then ends the sessions and
// releases go-plugin's resources.
func (p *Plugin) watchExit() {
	<-p.proc.exited

	p.cancelSessions()
	if err := p.proc.exitErr; err != nil {
		p.logger.Debug("plugin process exited", "pid", p.Pid(), "error", err)
	} else {
		p.logger.Debug("plugin process exited", "pid", p.Pid())
	}
	p.cleanup()
}

// cleanup releases go-plugin's client, which closes the gRPC connection and
// removes the socket directory once the process is gone. It closes
// p.cleaned when done or after cleanupTimeout, because go-plugin waits for
// the plugin's stdout and stderr to close, which a process that left the
// group can hold open.
func (p *Plugin) cleanup() {
	done := make(chan struct{})
	go func() {
		p.client.Kill()
		close(done)
	}()

	select {
	case <-done:
	case <-time.After(cleanupTimeout):
		p.logger.Warn("plugin output still open after exit; a process outside its process group may hold it", "pid", p.Pid())
	}
	// go-plugin removes the directory itself only for a process that started.
	if p.socketDir != "" {
		_ = os.RemoveAll(p.socketDir)
	}
	p.output.flush()
	close(p.cleaned)
}

// callError names the exit when a call failed because the process is gone.
func (p *Plugin) callError(err error) error {
	select {
	case <-p.proc.exited:
		return fmt.Errorf("%w: %w", ErrExited, rpcError(err))
	default:
		return rpcError(err)
	}
}
