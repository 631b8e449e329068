package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nexus-suite/nexus/plugins/host"
)

// fakeProcess is a plugin process that lives in memory.
type fakeProcess struct {
	pid       int
	exitedCh  chan struct{}
	exitOnce  sync.Once
	healthErr atomic.Pointer[error]
	stopped   atomic.Bool
	sessions  atomic.Int64
}

func newFakeProcess(pid int) *fakeProcess {
	return &fakeProcess{pid: pid, exitedCh: make(chan struct{})}
}

func (p *fakeProcess) Pid() int                { return p.pid }
func (p *fakeProcess) Exited() <-chan struct{} { return p.exitedCh }

func (p *fakeProcess) ExitErr() error {
	select {
	case <-p.exitedCh:
		if !p.stopped.Load() {
			return errors.New("signal: killed")
		}
	default:
	}
	return nil
}

func (p *fakeProcess) Health(context.Context) error {
	if err := p.healthErr.Load(); err != nil {
		return *err
	}
	return nil
}

func (p *fakeProcess) OpenSession(context.Context) (host.Session, error) {
	p.sessions.Add(1)
	return newEchoSession(), nil
}

func (p *fakeProcess) Stop(context.Context, time.Duration) error {
	p.stopped.Store(true)
	p.exit()
	return nil
}

// crash ends the process as a kill -9 would.
func (p *fakeProcess) crash() { p.exit() }

func (p *fakeProcess) exit() { p.exitOnce.Do(func() { close(p.exitedCh) }) }

func (p *fakeProcess) isGone() bool {
	select {
	case <-p.exitedCh:
		return true
	default:
		return false
	}
}

// fakeLauncher starts fakeProcesses and records each launch.
type fakeLauncher struct {
	mu        sync.Mutex
	launches  []host.Spec
	processes []*fakeProcess
	// fail, when set, is the error of every launch.
	fail error
	// block, when set, holds launches until it is closed.
	block chan struct{}
}

func (l *fakeLauncher) Launch(ctx context.Context, spec host.Spec) (process, error) {
	l.mu.Lock()
	l.launches = append(l.launches, spec)
	fail, block := l.fail, l.block
	l.mu.Unlock()

	if block != nil {
		<-block
	}
	if fail != nil {
		return nil, fail
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	proc := newFakeProcess(1000 + len(l.processes))
	l.processes = append(l.processes, proc)
	return proc, nil
}

func (l *fakeLauncher) ReadManifest(context.Context, string, []byte) (host.Manifest, error) {
	return host.Manifest{Name: "notes", Version: "1.0.0"}, nil
}

func (l *fakeLauncher) launchCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.launches)
}

func (l *fakeLauncher) lastSpec() host.Spec {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.launches[len(l.launches)-1]
}

func (l *fakeLauncher) process(i int) *fakeProcess {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.processes[i]
}

func (l *fakeLauncher) setFail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fail = err
}

// echoSession responds to every request with a result that echoes its
// method, and sends a notification before each response.
type echoSession struct {
	incoming chan []byte
	closed   chan struct{}
	once     sync.Once
}

func newEchoSession() *echoSession {
	return &echoSession{incoming: make(chan []byte, 16), closed: make(chan struct{})}
}

func (s *echoSession) Send(_ context.Context, message []byte) error {
	select {
	case <-s.closed:
		return io.EOF
	default:
	}
	head, err := decodeHead(message)
	if err != nil || !head.isRequest() {
		return nil
	}
	if head.Method == "initialize" {
		s.incoming <- []byte(`{"jsonrpc":"2.0","id":` + string(head.ID) + `,"result":{"protocolVersion":"2025-06-18"}}`)
		return nil
	}
	s.incoming <- []byte(`{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info"}}`)
	s.incoming <- []byte(`{"jsonrpc":"2.0","id":` + string(head.ID) + `,"result":{"method":"` + head.Method + `"}}`)
	return nil
}

func (s *echoSession) Recv(ctx context.Context) ([]byte, error) {
	select {
	case message := <-s.incoming:
		return message, nil
	case <-s.closed:
		return nil, io.EOF
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *echoSession) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

func decodeHead(message []byte) (messageHead, error) {
	var head messageHead
	err := json.Unmarshal(message, &head)
	return head, err
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
