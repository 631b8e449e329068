package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nexus-suite/nexus/plugins/contract"
)

// Session is one MCP session on a plugin: a bidirectional stream of JSON-RPC
// messages, each one JSON-RPC message encoded as JSON. Send, Recv and Close
// are safe for concurrent use.
type Session interface {
	// Send passes one message to the plugin. It returns io.EOF after Close or
	// once the session ended.
	//
	// NOTE: ctx is checked before the send but does not interrupt one that
	// waits for gRPC flow control.
	Send(ctx context.Context, message []byte) error
	// Recv returns the next message from the plugin. It returns io.EOF when
	// the session was closed or the plugin ended it, and ctx's error when ctx
	// ends first. When the process died it returns an error wrapping both
	// ErrExited and io.EOF, and when the stream broke otherwise, one wrapping
	// io.EOF with the cause.
	Recv(ctx context.Context) ([]byte, error)
	// Close ends the session: the plugin reads the end of its input and the
	// stream is cancelled. It returns nil, also when called again.
	Close() error
}

// session relays one contract session stream. A single goroutine reads the
// stream into incoming, so Recv can honor its context.
type session struct {
	stream *contract.ClientSessionStream
	cancel context.CancelFunc
	// exited is the plugin's Exited channel. It separates a stream cancelled
	// because the process died from one the host closed.
	exited <-chan struct{}

	sendMu sync.Mutex

	incoming chan []byte
	// done is closed when the reader stops; recvErr is set before.
	done    chan struct{}
	recvErr error

	closeOnce sync.Once
	closed    chan struct{}
}

func newSession(stream *contract.ClientSessionStream, cancel context.CancelFunc, exited <-chan struct{}) *session {
	s := &session{
		stream:   stream,
		cancel:   cancel,
		exited:   exited,
		incoming: make(chan []byte),
		done:     make(chan struct{}),
		closed:   make(chan struct{}),
	}
	go s.read()
	return s
}

func (s *session) read() {
	defer close(s.done)

	for {
		message, err := s.stream.Recv()
		if err != nil {
			s.recvErr = s.endError(err)
			return
		}

		select {
		case s.incoming <- message:
		case <-s.closed:
			s.recvErr = io.EOF
			return
		}
	}
}

func (s *session) Send(ctx context.Context, message []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-s.closed:
		return io.EOF
	case <-s.done:
		return io.EOF
	default:
	}

	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if err := s.stream.Send(message); err != nil {
		// gRPC reports io.EOF from a send when the stream ended, and Recv
		// returns the cause.
		return io.EOF
	}
	return nil
}

func (s *session) Recv(ctx context.Context) ([]byte, error) {
	select {
	case message := <-s.incoming:
		return message, nil
	case <-s.done:
		return nil, s.recvErr
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *session) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)

		// CloseSend lets the plugin read the end of its input, but it must
		// not run beside a Send. A Send blocked on flow control ends when
		// the stream is cancelled instead.
		if s.sendMu.TryLock() {
			_ = s.stream.CloseSend()
			s.sendMu.Unlock()
		}
		s.cancel()
	})
	return nil
}

// endError maps the error that ended the session stream: io.EOF for a
// session the plugin ended or the host closed, ErrExited wrapped with io.EOF
// when the process died, and otherwise the cause wrapped with io.EOF.
func (s *session) endError(err error) error {
	exitedErr := fmt.Errorf("plugin session ended: %w: %w", ErrExited, io.EOF)
	select {
	case <-s.exited:
		return exitedErr
	default:
	}
	if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
		return io.EOF
	}

	// A broken connection usually means the process is dying, which the host
	// notices a moment later.
	select {
	case <-s.exited:
		return exitedErr
	case <-time.After(exitNoticeWait):
		return fmt.Errorf("plugin session ended: %w: %w", rpcError(err), io.EOF)
	}
}

// exitNoticeWait bounds how long a broken session stream waits for the
// process exit to be noticed, so that Recv can report ErrExited.
const exitNoticeWait = 500 * time.Millisecond

// rpcError turns a gRPC status error into an error with the plugin's message
// and the status code name.
func rpcError(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	return fmt.Errorf("%s (%s)", st.Message(), st.Code())
}
