package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
)

// Runner is implemented by modules with background work. The supervisor
// calls Run after Start and cancels ctx before Stop; when Run returns an
// error or panics, the supervisor restarts the module with backoff.
type Runner interface {
	Run(ctx context.Context) error
}

// Restart backoff of a module whose Run failed: it doubles from the first
// value up to the cap, and starts over once the module has run for
// restartBackoffReset without failing.
const (
	restartBackoffFirst = 100 * time.Millisecond
	restartBackoffMax   = 30 * time.Second
	restartBackoffReset = time.Minute
	probeTimeoutMax     = 5 * time.Second
)

// Messages a supervisor sends to itself.
type (
	probeTick  struct{}
	restartDue struct{}
	runExited  struct {
		generation int
		err        error
	}
)

// supervisor is the actor that watches one enabled module: it runs its
// background work, probes its health and restarts it after a failure,
// reporting each event to the manager for /status.
type supervisor struct {
	manager *Manager
	name    string
	module  Module
	logger  *slog.Logger

	generation  int
	cancelRun   context.CancelFunc
	cancelProbe func()
	backoff     time.Duration
	startedAt   time.Time
	restarting  bool
}

// Receive handles one message at a time.
func (s *supervisor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		interval := s.manager.opts.ProbeInterval
		s.cancelProbe = sendProbeTicks(ctx.ActorSystem().Root, ctx.Self(), interval)
		s.startRun(ctx)
	case *probeTick:
		s.probe()
	case *runExited:
		s.handleExit(ctx, msg)
	case *restartDue:
		s.restart(ctx)
	case *actor.Stopping:
		if s.cancelProbe != nil {
			s.cancelProbe()
		}
		if s.cancelRun != nil {
			s.cancelRun()
		}
	}
}

// sendProbeTicks sends probeTick to pid every interval until the returned
// function is called. It replaces the scheduler's SendRepeatedly, whose
// timer reads its state without synchronization. The race detector reports
// that read when a supervisor stops while a tick fires.
func sendProbeTicks(root *actor.RootContext, pid *actor.PID, interval time.Duration) func() {
	ticker := time.NewTicker(interval)
	done := make(chan struct{})
	go func() {
		defer ticker.Stop()
		for {
			select {
			case <-ticker.C:
				root.Send(pid, &probeTick{})
			case <-done:
				return
			}
		}
	}()

	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}

func (s *supervisor) startRun(ctx actor.Context) {
	s.startedAt = s.manager.opts.Host.Clock.Now()
	runner, ok := s.module.(Runner)
	if !ok {
		return
	}

	s.generation++
	generation := s.generation
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancelRun = cancel
	self := ctx.Self()
	root := ctx.ActorSystem().Root

	go func() {
		err := runGuarded(runCtx, runner)
		if runCtx.Err() != nil {
			return // the supervisor cancelled the run on purpose
		}
		root.Send(self, &runExited{generation: generation, err: err})
	}()
}

// runGuarded calls Run and turns a panic into an error with the stack.
func runGuarded(ctx context.Context, runner Runner) (err error) {
	defer func() {
		if recovered := recover(); recovered != nil {
			err = fmt.Errorf("panic: %v\n%s", recovered, debug.Stack())
		}
	}()
	return runner.Run(ctx)
}

func (s *supervisor) handleExit(ctx actor.Context, msg *runExited) {
	if msg.generation != s.generation {
		return
	}
	if msg.err == nil {
		s.logger.Info("module background work finished")
		return
	}

	s.logger.Error("module failed", slog.String("error", msg.err.Error()))
	s.manager.setState(s.name, StateFailed, msg.err.Error())
	s.manager.emit(s.name, EventFailed)
	s.scheduleRestart(ctx)
}

func (s *supervisor) scheduleRestart(ctx actor.Context) {
	now := s.manager.opts.Host.Clock.Now()
	switch {
	case s.backoff == 0 || now.Sub(s.startedAt) >= restartBackoffReset:
		s.backoff = restartBackoffFirst
	default:
		s.backoff *= 2
		if s.backoff > restartBackoffMax {
			s.backoff = restartBackoffMax
		}
	}

	s.restarting = true
	s.manager.setState(s.name, StateRestarting, "")
	s.manager.countRestart(s.name)
	s.manager.emit(s.name, EventRestarting)
	s.logger.Warn("module restarting", slog.String("backoff", s.backoff.String()))
	scheduler.NewTimerScheduler(ctx).SendOnce(s.backoff, ctx.Self(), &restartDue{})
}

func (s *supervisor) restart(ctx actor.Context) {
	stopCtx, cancel := context.WithTimeout(context.Background(), s.manager.opts.DrainTimeout)
	defer cancel()

	if err := s.module.Stop(stopCtx); err != nil {
		s.logger.Error("module stop before restart failed", slog.String("error", err.Error()))
	}
	section := s.manager.sectionOf(s.name)
	if err := s.manager.runLifecycle(stopCtx, s.module, section); err != nil {
		s.logger.Error("module restart failed", slog.String("error", err.Error()))
		s.manager.setState(s.name, StateFailed, err.Error())
		s.manager.emit(s.name, EventFailed)
		s.scheduleRestart(ctx)
		return
	}

	s.restarting = false
	s.manager.setState(s.name, StateRunning, "")
	s.manager.emit(s.name, EventStarted)
	s.logger.Info("module restarted")
	s.startRun(ctx)
}

func (s *supervisor) probe() {
	prober, ok := s.module.(HealthProber)
	if !ok || s.restarting {
		return
	}

	timeout := s.manager.opts.ProbeInterval
	if timeout > probeTimeoutMax {
		timeout = probeTimeoutMax
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	if err := prober.Probe(ctx); err != nil {
		if s.manager.state(s.name) != StateDegraded {
			s.logger.Warn("module health probe failed", slog.String("error", err.Error()))
		}
		s.manager.setState(s.name, StateDegraded, err.Error())
		return
	}
	if s.manager.state(s.name) == StateDegraded {
		s.logger.Info("module health probe recovered")
		s.manager.setState(s.name, StateRunning, "")
	}
}
