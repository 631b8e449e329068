package mcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/nexus-suite/nexus/runtime/clock"
)

// serverState is the state of a hosted server on this node.
type serverState string

// The states of a server. A server that no request has touched since the
// module started is idle: the next MCP request starts it.
const (
	stateIdle       serverState = "idle"
	stateStarting   serverState = "starting"
	stateRunning    serverState = "running"
	stateRestarting serverState = "restarting"
	stateCrashLoop  serverState = "crash_loop"
	stateStopped    serverState = "stopped"
)

// allStates lists the states in the order that metrics report them.
var allStates = []serverState{stateIdle, stateStarting, stateRunning, stateRestarting, stateCrashLoop, stateStopped}

// Errors that ensureRunning returns besides a failed start.
var (
	errServerStopped = errors.New("the MCP server is stopped")
	errStartTimeout  = errors.New("the MCP server did not start in time")
)

// unavailableError is returned to an MCP request while its server cannot
// serve: it is waiting to restart after a crash, or it crash-loops.
type unavailableError struct {
	state     serverState
	lastError string
	// retryAfter is the wait until the next restart; zero in crash_loop.
	retryAfter time.Duration
}

func (e *unavailableError) Error() string {
	switch e.state {
	case stateCrashLoop:
		return fmt.Sprintf("the MCP server is in crash_loop after repeated failures (last error: %s); fix its config or plugin and restart it", e.lastError)
	default:
		return fmt.Sprintf("the MCP server is restarting after a failure (last error: %s)", e.lastError)
	}
}

// Messages to a supervisor. Replies go through buffered channels, so the
// actor never blocks on a caller. The supervisor starts its server's
// process itself, on its own node, so these messages stay in one process.
type (
	// ensureRunning requests that the server run; reply receives nil once it runs.
	ensureRunning struct{ reply chan error }
	// startServer starts an idle server without waiting for it; reply
	// receives nil once the start has begun.
	startServer struct{ reply chan error }
	// restartServer starts the server again with its stored config and
	// clears its crash history; reply gets the result of the start.
	restartServer struct{ reply chan error }
	// reconfigure restarts a server that runs or tries to, so it reads its
	// changed config; an idle server reads it at its next start. reply
	// receives nil once the old process is gone.
	reconfigure struct{ reply chan error }
	// stopServer stops the process and then the supervisor for good.
	stopServer struct{ reply chan error }

	launched struct {
		generation int
		proc       process
		err        error
	}
	exited struct {
		generation int
		proc       process
	}
	healthDue     struct{ generation int }
	healthChecked struct {
		generation int
		err        error
	}
	restartDue struct{ generation int }
	idleDue    struct{ generation int }
)

// supervisor is the actor that owns one server's plugin process. It starts
// the process, checks its health and restarts it after a crash with capped
// exponential backoff. After too many restarts in a window it puts the
// server in crash_loop. It stops the process after an idle period, and for
// good when the server is deleted. Its timers run on the injected clock.
type supervisor struct {
	deps   *supervisorDeps
	server *server
	logger *slog.Logger

	// generation identifies the current launch; a message about an older
	// one is stale.
	generation int
	proc       process
	attempt    *launchAttempt
	waiters    []chan error
	// restarts holds the times of the automatic restarts within the crash-loop window.
	restarts       []time.Time
	healthFailures int

	healthTimer, idleTimer, restartTimer clock.Timer
}

// launchAttempt hands a started process from the launching goroutine to
// the actor. When the actor abandons the attempt first, the goroutine stops
// the process itself, so no process outlives a stopped supervisor.
type launchAttempt struct {
	cancel context.CancelFunc

	mu        sync.Mutex
	abandoned bool
	proc      process
}

// deliver records proc as started and reports whether the actor still wants it.
func (a *launchAttempt) deliver(proc process) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.abandoned {
		return false
	}
	a.proc = proc
	return true
}

// abandon cancels the attempt and returns a process it already started.
func (a *launchAttempt) abandon() process {
	a.mu.Lock()
	a.abandoned = true
	proc := a.proc
	a.mu.Unlock()
	a.cancel()
	return proc
}

// Receive handles one message at a time.
func (s *supervisor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *ensureRunning:
		s.ensureRunning(ctx, msg.reply)
	case *startServer:
		if s.server.currentState() == stateIdle {
			s.launch(ctx)
		}
		msg.reply <- nil
	case *restartServer:
		s.restarts = nil
		s.restartNow(ctx, "restart requested")
		s.waiters = append(s.waiters, msg.reply)
	case *reconfigure:
		switch s.server.currentState() {
		case stateRunning, stateStarting, stateRestarting, stateCrashLoop:
			s.restarts = nil
			s.restartNow(ctx, "config changed")
		}
		msg.reply <- nil
	case *stopServer:
		s.stop(stateStopped, "")
		s.replyToWaiters(errServerStopped)
		s.server.logs.record("stopped")
		msg.reply <- nil
		ctx.Stop(ctx.Self())
	case *launched:
		s.handleLaunched(ctx, msg)
	case *exited:
		s.handleExited(ctx, msg)
	case *healthDue:
		s.checkHealth(ctx, msg.generation)
	case *healthChecked:
		s.handleHealth(ctx, msg)
	case *restartDue:
		if msg.generation == s.generation && s.server.currentState() == stateRestarting {
			s.launch(ctx)
		}
	case *idleDue:
		s.handleIdle(ctx, msg.generation)
	case *actor.Stopped:
		s.stop(stateStopped, "")
		s.replyToWaiters(errServerStopped)
		close(s.server.done)
	}
}

func (s *supervisor) ensureRunning(ctx actor.Context, reply chan error) {
	state, lastError, retryAt := s.server.view()
	switch state {
	case stateRunning:
		reply <- nil
	case stateStarting:
		s.waiters = append(s.waiters, reply)
	case stateIdle:
		s.waiters = append(s.waiters, reply)
		s.launch(ctx)
	case stateRestarting:
		reply <- &unavailableError{state: state, lastError: lastError, retryAfter: max(retryAt.Sub(s.deps.clock.Now()), 0)}
	case stateCrashLoop:
		reply <- &unavailableError{state: state, lastError: lastError}
	default:
		reply <- errServerStopped
	}
}

// launch starts a process in the background; launched reports the result.
func (s *supervisor) launch(ctx actor.Context) {
	s.generation++
	generation := s.generation
	s.cancelTimers()
	s.server.setState(stateStarting, "")
	s.server.logs.record("starting")

	launchCtx, cancel := context.WithTimeout(context.Background(), s.deps.opts.StartTimeout+s.deps.storeTimeout)
	attempt := &launchAttempt{cancel: cancel}
	s.attempt = attempt
	self, root := ctx.Self(), ctx.ActorSystem().Root
	go func() {
		defer cancel()
		proc, err := s.deps.start(launchCtx, s.server)
		if proc != nil && !attempt.deliver(proc) {
			s.deps.stopProcess(proc, s.logger)
			return
		}
		root.Send(self, &launched{generation: generation, proc: proc, err: err})
	}()
}

func (s *supervisor) handleLaunched(ctx actor.Context, msg *launched) {
	if msg.generation != s.generation {
		if msg.proc != nil {
			go s.deps.stopProcess(msg.proc, s.logger)
		}
		return
	}
	s.attempt = nil

	if msg.err != nil {
		s.logger.Error("mcp server failed to start", slog.String("error", msg.err.Error()))
		s.server.logs.record("start failed: " + msg.err.Error())
		s.crashed(ctx, msg.err.Error())
		s.replyToWaiters(msg.err)
		return
	}

	s.proc = msg.proc
	s.healthFailures = 0
	generation := s.generation
	self, root := ctx.Self(), ctx.ActorSystem().Root
	proc := msg.proc
	go func() {
		<-proc.Exited()
		root.Send(self, &exited{generation: generation, proc: proc})
	}()
	s.healthTimer = s.after(ctx, s.deps.opts.HealthInterval, &healthDue{generation: generation})
	if s.deps.opts.IdleTimeout > 0 {
		s.idleTimer = s.after(ctx, s.deps.opts.IdleTimeout, &idleDue{generation: generation})
	}

	s.server.touch(s.deps.clock.Now())
	s.server.setRunning(msg.proc, s.deps.clock.Now())
	s.logger.Info("mcp server started", slog.Int("pid", msg.proc.Pid()))
	s.server.logs.record(fmt.Sprintf("started, pid %d", msg.proc.Pid()))
	s.replyToWaiters(nil)
}

func (s *supervisor) handleExited(ctx actor.Context, msg *exited) {
	if msg.generation != s.generation || s.proc != msg.proc {
		return
	}
	reason := "process exited"
	if err := msg.proc.ExitErr(); err != nil {
		reason = "process exited: " + err.Error()
	}
	s.logger.Warn("mcp server process exited unexpectedly", slog.Int("pid", msg.proc.Pid()), slog.String("reason", reason))
	s.server.logs.record(reason)

	s.dropProcess()
	s.crashed(ctx, reason)
}

// crashed schedules the next start with backoff, or puts the server in
// crash_loop when it restarted crash_loop_restarts times within the window.
func (s *supervisor) crashed(ctx actor.Context, reason string) {
	now := s.deps.clock.Now()
	opts := s.deps.opts
	recent := s.restarts[:0]
	for _, at := range s.restarts {
		if now.Sub(at) < opts.CrashLoopWindow {
			recent = append(recent, at)
		}
	}
	s.restarts = recent

	if len(s.restarts) >= opts.CrashLoopRestarts {
		s.server.setState(stateCrashLoop, reason)
		s.logger.Error("mcp server is crash-looping; it stays stopped until it is restarted or reconfigured",
			slog.Int("restarts", len(s.restarts)), slog.String("window", opts.CrashLoopWindow.String()))
		s.server.logs.record(fmt.Sprintf("crash_loop after %d restarts within %s; restart the server to try again",
			len(s.restarts), opts.CrashLoopWindow))
		return
	}

	s.restarts = append(s.restarts, now)
	delay := backoff(opts.BackoffBase, opts.BackoffMax, len(s.restarts))
	// The timer is armed before the state shows restarting, so a test that
	// reads that state can move a fake clock past the backoff.
	s.restartTimer = s.after(ctx, delay, &restartDue{generation: s.generation})
	s.server.setRestarting(reason, now.Add(delay))
	s.deps.metrics.restarts.WithLabelValues(s.server.plugin).Inc()
	s.deps.restarts.Add(1)
	s.logger.Warn("mcp server restarting", slog.String("backoff", delay.String()), slog.String("reason", reason))
	s.server.logs.record("restarting in " + delay.String())
}

// backoff returns base doubled for each restart after the first, up to limit.
func backoff(base, limit time.Duration, restart int) time.Duration {
	delay := base
	for i := 1; i < restart && delay < limit; i++ {
		delay *= 2
	}
	return min(delay, limit)
}

func (s *supervisor) checkHealth(ctx actor.Context, generation int) {
	if generation != s.generation || s.proc == nil {
		return
	}
	proc := s.proc
	timeout := s.deps.opts.HealthTimeout
	self, root := ctx.Self(), ctx.ActorSystem().Root
	go func() {
		checkCtx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		root.Send(self, &healthChecked{generation: generation, err: proc.Health(checkCtx)})
	}()
}

func (s *supervisor) handleHealth(ctx actor.Context, msg *healthChecked) {
	if msg.generation != s.generation || s.proc == nil {
		return
	}
	if msg.err == nil {
		s.healthFailures = 0
		s.healthTimer = s.after(ctx, s.deps.opts.HealthInterval, &healthDue{generation: s.generation})
		return
	}

	s.healthFailures++
	s.logger.Warn("mcp server health check failed", slog.Int("failures", s.healthFailures), slog.String("error", msg.err.Error()))
	if s.healthFailures < s.deps.opts.HealthFailures {
		s.healthTimer = s.after(ctx, s.deps.opts.HealthInterval, &healthDue{generation: s.generation})
		return
	}

	reason := fmt.Sprintf("%d health checks failed in a row: %s", s.healthFailures, msg.err)
	s.server.logs.record(reason + "; stopping the process")
	s.stopProcess()
	s.crashed(ctx, reason)
}

func (s *supervisor) handleIdle(ctx actor.Context, generation int) {
	if generation != s.generation || s.proc == nil {
		return
	}
	idle := s.deps.clock.Now().Sub(s.server.lastActive())
	if left := s.deps.opts.IdleTimeout - idle; left > 0 {
		s.idleTimer = s.after(ctx, left, &idleDue{generation: generation})
		return
	}

	s.logger.Info("mcp server idle, stopping it until its next request", slog.String("idle", idle.String()))
	s.server.logs.record("stopped after " + s.deps.opts.IdleTimeout.String() + " without a request")
	s.stop(stateIdle, "")
}

// restartNow stops the process, if any, and launches a new one at once.
// Requests that wait for a start keep waiting for the new one.
func (s *supervisor) restartNow(ctx actor.Context, reason string) {
	s.logger.Info("mcp server restarting", slog.String("reason", reason))
	s.server.logs.record(reason)
	s.stop(stateIdle, "")
	s.launch(ctx)
}

// stop ends everything that runs for the server, an attempt to start it
// included, and leaves it in state. It waits for the process to exit, at
// most stop_grace plus the kill.
func (s *supervisor) stop(state serverState, lastError string) {
	s.generation++
	s.cancelTimers()
	if s.attempt != nil {
		if proc := s.attempt.abandon(); proc != nil {
			s.deps.stopProcess(proc, s.logger)
		}
		s.attempt = nil
	}
	s.stopProcess()
	s.server.setState(state, lastError)
}

// stopProcess stops the current process and waits for it.
func (s *supervisor) stopProcess() {
	proc := s.proc
	if proc == nil {
		return
	}
	s.dropProcess()
	s.deps.stopProcess(proc, s.logger)
}

// dropProcess clears the current process and ends the MCP sessions on it.
func (s *supervisor) dropProcess() {
	proc := s.proc
	s.proc = nil
	s.server.clearProcess()
	s.deps.endSessions(s.server.id, proc)
}

func (s *supervisor) replyToWaiters(err error) {
	for _, reply := range s.waiters {
		reply <- err
	}
	s.waiters = nil
}

// after sends msg to the actor once d has passed on the clock.
func (s *supervisor) after(ctx actor.Context, d time.Duration, msg any) clock.Timer {
	self, root := ctx.Self(), ctx.ActorSystem().Root
	return s.deps.clock.AfterFunc(d, func() { root.Send(self, msg) })
}

func (s *supervisor) cancelTimers() {
	for _, timer := range []*clock.Timer{&s.healthTimer, &s.idleTimer, &s.restartTimer} {
		if *timer != nil {
			(*timer).Stop()
			*timer = nil
		}
	}
}
