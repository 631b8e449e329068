package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Stop timeouts of child processes. A server gets SIGTERM and then
// stopTimeout to shut down gracefully before it is killed.
const (
	stopTimeout   = 20 * time.Second
	cancelTimeout = 5 * time.Second
)

// child is one process that the benchmark started.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	// err is the result of Wait, set before done is closed.
	err error
}

// children tracks every process the benchmark started, so that none
// outlives it: stopAll runs on every return path of run, and a cancelled
// context sends SIGTERM to each. On Linux a child is also killed when the
// benchmark process dies (see setParentDeathSignal).
type children struct {
	mu   sync.Mutex
	list []*child
}

// start runs path with args as a child process. The child gets SIGTERM when
// ctx is cancelled and is killed cancelTimeout later if it is still running.
// env nil means this process's environment.
func (c *children) start(ctx context.Context, name, path string, args, env []string, stdout, stderr io.Writer) (*child, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = cancelTimeout
	setParentDeathSignal(cmd)

	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	ch := &child{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		ch.err = cmd.Wait()
		close(ch.done)
	}()

	c.mu.Lock()
	c.list = append(c.list, ch)
	c.mu.Unlock()
	return ch, nil
}

// exited reports whether the child has exited, without waiting.
func (ch *child) exited() bool {
	select {
	case <-ch.done:
		return true
	default:
		return false
	}
}

// wait waits for the child to exit and returns its error; an exit status
// other than 0 is an error.
func (ch *child) wait() error {
	<-ch.done
	if ch.err != nil {
		return fmt.Errorf("%s: %w", ch.name, ch.err)
	}
	return nil
}

// cpuTime returns the user and system CPU time that the exited child used.
func (ch *child) cpuTime() time.Duration {
	<-ch.done
	state := ch.cmd.ProcessState
	if state == nil {
		return 0
	}
	return state.UserTime() + state.SystemTime()
}

// stop sends SIGTERM, waits up to stopTimeout and then kills the child. It
// returns the child's exit error, so a server that failed to shut down
// cleanly is reported. Stopping a child that already exited returns its
// exit error.
func (ch *child) stop() error {
	if ch.exited() {
		return ch.wait()
	}
	if err := ch.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		slog.Warn("SIGTERM failed; killing the process", slog.String("process", ch.name), slog.String("error", err.Error()))
		_ = ch.cmd.Process.Kill()
	}

	select {
	case <-ch.done:
		return ch.wait()
	case <-time.After(stopTimeout):
		_ = ch.cmd.Process.Kill()
		<-ch.done
		return fmt.Errorf("%s did not stop within %s after SIGTERM and was killed", ch.name, stopTimeout)
	}
}

// stopAll stops every child still running, in reverse start order.
func (c *children) stopAll() {
	c.mu.Lock()
	list := c.list
	c.list = nil
	c.mu.Unlock()

	for i := len(list) - 1; i >= 0; i-- {
		if list[i].exited() {
			continue
		}
		// A child stopped through its cancelled context reports the
		// cancellation, which the caller already returns.
		if err := list[i].stop(); err != nil && !errors.Is(err, context.Canceled) {
			slog.Warn("stop child process", slog.String("process", list[i].name), slog.String("error", err.Error()))
		}
	}
}

// childEnv returns this process's environment without NEXUS_* variables,
// so the server runs on the benchmark's config file alone.
func childEnv() []string {
	var env []string
	for _, entry := range os.Environ() {
		if !strings.HasPrefix(entry, "NEXUS_") {
			env = append(env, entry)
		}
	}
	return env
}
