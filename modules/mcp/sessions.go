package mcp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nexus-suite/nexus/plugins/host"
	"github.com/nexus-suite/nexus/runtime/clock"
)

// outboxSize is the number of messages from a plugin, other than responses,
// that wait for a client stream; beyond it the oldest is dropped.
const outboxSize = 64

// sessionIDBytes is the entropy of an Mcp-Session-Id: 256 bits.
const sessionIDBytes = 32

// mcpSession is one MCP session of the Streamable HTTP endpoint, relayed to
// one session stream on the plugin process of its server. It is bound to
// the user who initialized it and to its server.
type mcpSession struct {
	id       string
	serverID string
	userID   string
	proc     process
	stream   host.Session

	// version is the protocol version that initialize negotiated.
	version atomic.Value

	mu sync.Mutex
	// pending maps the key of a request id to the channel of the POST that
	// waits for its response.
	pending map[string]chan []byte

	// outbox holds the plugin's requests and notifications until a client
	// stream takes them; each goes to exactly one stream.
	outbox chan []byte
	done   chan struct{}
	once   sync.Once

	lastUsed atomic.Int64
	// stream ends the current GET stream when a newer one replaces it.
	getStream atomic.Pointer[chan struct{}]
	eventSeq  atomic.Uint64
	dropped   atomic.Int64
}

func (s *mcpSession) protocolVersion() string {
	version, _ := s.version.Load().(string)
	return version
}

// register adds the ids of a POST's requests to pending, whose responses
// arrive on responses. It fails, adding none, when an id is already pending.
func (s *mcpSession) register(keys []string, responses chan []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, key := range keys {
		if _, ok := s.pending[key]; ok {
			return fmt.Errorf("request id %s is already in flight in this session", key)
		}
	}
	for _, key := range keys {
		s.pending[key] = responses
	}
	return nil
}

// unregister removes ids that got no response.
func (s *mcpSession) unregister(keys []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, key := range keys {
		delete(s.pending, key)
	}
}

// deliver routes one message from the plugin: a response to the POST that
// waits for it, anything else to the outbox.
func (s *mcpSession) deliver(message []byte, logger *slog.Logger) {
	var head messageHead
	if err := json.Unmarshal(message, &head); err != nil {
		logger.Warn("mcp plugin sent a message that is not JSON-RPC; dropped", slog.String("session_server", s.serverID))
		return
	}

	if head.isResponse() {
		key := idKey(head.ID)
		s.mu.Lock()
		responses, ok := s.pending[key]
		delete(s.pending, key)
		s.mu.Unlock()
		if ok {
			responses <- message
		}
		return
	}

	for {
		select {
		case s.outbox <- message:
			return
		default:
		}
		select {
		case <-s.outbox:
			if s.dropped.Add(1) == 1 {
				logger.Warn("mcp session outbox full, dropping the oldest message; no client stream reads it",
					slog.String("server_id", s.serverID))
			}
		default:
		}
	}
}

func (s *mcpSession) nextEventID() string {
	return s.id[:8] + "-" + strconv.FormatUint(s.eventSeq.Add(1), 10)
}

// messageHead is the part of a JSON-RPC message that routing reads.
type messageHead struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Result  json.RawMessage `json:"result"`
	Error   json.RawMessage `json:"error"`
}

func (h messageHead) hasID() bool {
	return len(h.ID) > 0 && !bytes.Equal(h.ID, []byte("null"))
}

// isRequest reports whether the message expects a response.
func (h messageHead) isRequest() bool { return h.Method != "" && h.hasID() }

// isResponse reports whether the message is the response to a request.
func (h messageHead) isResponse() bool { return h.Method == "" && h.hasID() }

// idKey returns the canonical form of a request id, so "1" and " 1 " match.
func idKey(id json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, id); err != nil {
		return string(id)
	}
	return buf.String()
}

// sessionTable holds the live MCP sessions of the module.
type sessionTable struct {
	opts    options
	clock   clock.Clock
	logger  *slog.Logger
	metrics *metrics

	mu       sync.Mutex
	byID     map[string]*mcpSession
	byServer map[string]map[string]*mcpSession
}

func newSessionTable(opts options, clk clock.Clock, logger *slog.Logger, m *metrics) *sessionTable {
	return &sessionTable{
		opts: opts, clock: clk, logger: logger, metrics: m,
		byID: map[string]*mcpSession{}, byServer: map[string]map[string]*mcpSession{},
	}
}

// open creates a session on stream and starts relaying the plugin's
// messages. When the server already holds max_sessions_per_server
// sessions, the least recently used one ends; its client gets 404 and
// initializes again.
func (t *sessionTable) open(srv *server, proc process, stream host.Session) (*mcpSession, error) {
	raw := make([]byte, sessionIDBytes)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("read random bytes: %w", err)
	}
	sess := &mcpSession{
		id:       base64.RawURLEncoding.EncodeToString(raw),
		serverID: srv.id,
		userID:   srv.userID,
		proc:     proc,
		stream:   stream,
		pending:  map[string]chan []byte{},
		outbox:   make(chan []byte, outboxSize),
		done:     make(chan struct{}),
	}
	sess.lastUsed.Store(t.clock.Now().UnixNano())

	t.mu.Lock()
	sessions := t.byServer[srv.id]
	if sessions == nil {
		sessions = map[string]*mcpSession{}
		t.byServer[srv.id] = sessions
	}
	var evicted *mcpSession
	if len(sessions) >= t.opts.MaxSessions {
		for _, candidate := range sessions {
			if evicted == nil || candidate.lastUsed.Load() < evicted.lastUsed.Load() {
				evicted = candidate
			}
		}
	}
	sessions[sess.id] = sess
	t.byID[sess.id] = sess
	t.mu.Unlock()

	if evicted != nil {
		t.logger.Info("mcp session ended to make room for a new one", slog.String("server_id", srv.id),
			slog.Int("max_sessions_per_server", t.opts.MaxSessions))
		t.end(evicted)
	}
	t.metrics.sessions.WithLabelValues(srv.plugin).Inc()

	go t.relay(sess)
	return sess, nil
}

// relay reads the plugin's messages until the session stream ends.
func (t *sessionTable) relay(sess *mcpSession) {
	for {
		message, err := sess.stream.Recv(context.Background())
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				t.logger.Debug("mcp session stream ended", slog.String("server_id", sess.serverID), slog.String("error", err.Error()))
			}
			t.end(sess)
			return
		}
		sess.deliver(message, t.logger)
	}
}

// get returns the live session with id, or nil.
func (t *sessionTable) get(id string) *mcpSession {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byID[id]
}

// end removes the session, closes its stream and wakes what waits on it.
func (t *sessionTable) end(sess *mcpSession) {
	t.mu.Lock()
	if t.byID[sess.id] == sess {
		delete(t.byID, sess.id)
		if sessions := t.byServer[sess.serverID]; sessions != nil {
			delete(sessions, sess.id)
			if len(sessions) == 0 {
				delete(t.byServer, sess.serverID)
			}
		}
	}
	t.mu.Unlock()

	sess.once.Do(func() {
		close(sess.done)
		_ = sess.stream.Close()
	})
}

// endServer ends the server's sessions on proc, or all of them when proc is nil.
func (t *sessionTable) endServer(serverID string, proc process) {
	t.mu.Lock()
	var ending []*mcpSession
	for _, sess := range t.byServer[serverID] {
		if proc == nil || sess.proc == proc {
			ending = append(ending, sess)
		}
	}
	t.mu.Unlock()

	for _, sess := range ending {
		t.end(sess)
	}
}

// endAll ends every session.
func (t *sessionTable) endAll() {
	t.mu.Lock()
	ending := make([]*mcpSession, 0, len(t.byID))
	for _, sess := range t.byID {
		ending = append(ending, sess)
	}
	t.mu.Unlock()

	for _, sess := range ending {
		t.end(sess)
	}
}

// sweep ends the sessions that got no request for session_idle_timeout.
func (t *sessionTable) sweep() int {
	cutoff := t.clock.Now().Add(-t.opts.SessionIdleTimeout).UnixNano()
	t.mu.Lock()
	var idle []*mcpSession
	for _, sess := range t.byID {
		if sess.lastUsed.Load() <= cutoff {
			idle = append(idle, sess)
		}
	}
	t.mu.Unlock()

	for _, sess := range idle {
		t.end(sess)
	}
	return len(idle)
}

// count returns the number of live sessions.
func (t *sessionTable) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}

// sessionSweepInterval bounds how long an idle session outlives its
// timeout: at most a quarter of session_idle_timeout, and at most a minute.
func sessionSweepInterval(timeout time.Duration) time.Duration {
	return min(timeout/4, time.Minute)
}
