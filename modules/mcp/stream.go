package mcp

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/nexus-suite/nexus/edge"
)

// fallbackWriteTimeout bounds one write of an event stream when
// server.write_timeout is zero.
const fallbackWriteTimeout = 30 * time.Second

// eventStream is the content of one text/event-stream response.
type eventStream struct {
	sess *mcpSession
	// first are messages written at once, such as the initialize response.
	first [][]byte
	// keys are the request ids of a POST whose responses end the stream,
	// which arrive on responses.
	keys      []string
	responses chan []byte
	// stop, set for the GET stream, ends it when closed; the GET stream
	// lasts until then, its session ends or the server shuts down.
	stop chan struct{}
}

// streamEvents responds with an event stream through fasthttp's body stream
// writer, which runs after the handler returned and the edge recycled the
// request. It therefore captures what it needs here, never touches r
// again, and stops at the first write error, because fasthttp does not
// tell a handler that the client went away.
func (m *Module) streamEvents(r *edge.Request, stream eventStream) {
	r.Ctx.SetStatusCode(http.StatusOK)
	r.Ctx.Response.Header.SetContentType("text/event-stream")
	r.Ctx.Response.Header.Set("Cache-Control", "no-cache")

	writer := &eventWriter{conn: r.Ctx.Conn(), timeout: m.host.Config.Server.WriteTimeout}
	if writer.timeout <= 0 {
		writer.timeout = fallbackWriteTimeout
	}
	shutdown := r.Ctx.Done()
	logger := r.Logger()
	waitCtx, cancelWait := m.requestContext()

	r.Ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer cancelWait()
		writer.w = w
		keepAlive := time.NewTicker(keepAliveInterval)
		defer keepAlive.Stop()

		for _, message := range stream.first {
			if writer.event("", message) != nil {
				return
			}
		}
		if stream.stop != nil {
			m.streamOutbox(writer, stream, keepAlive, shutdown)
			return
		}
		if len(stream.keys) == 0 {
			return
		}

		responded := map[string]bool{}
		for len(responded) < len(stream.keys) {
			var err error
			select {
			case response := <-stream.responses:
				var head messageHead
				_ = json.Unmarshal(response, &head)
				responded[idKey(head.ID)] = true
				err = writer.event("", response)
			case message := <-stream.sess.outbox:
				err = writer.event("", message)
			case <-keepAlive.C:
				err = writer.comment("keepalive")
			case <-stream.sess.done:
				m.writeAbandoned(writer, stream, responded, "the MCP server session ended before it responded")
				return
			case <-waitCtx.Done():
				m.writeAbandoned(writer, stream, responded, "the MCP server did not respond within the request timeout")
				return
			case <-shutdown:
				m.writeAbandoned(writer, stream, responded, "nexus is shutting down")
				return
			}
			if err != nil {
				logger.Debug("mcp event stream closed by the client", slog.String("server_id", stream.sess.serverID))
				m.abandon(stream.sess, stream.keys, responded, "the client closed the response stream")
				return
			}
		}
	})
}

// streamOutbox writes the plugin's requests and notifications to the GET
// stream. A priming event with an id comes first, so a client that
// reconnects after a dropped connection counts that as progress.
func (m *Module) streamOutbox(writer *eventWriter, stream eventStream, keepAlive *time.Ticker, shutdown <-chan struct{}) {
	if writer.event(stream.sess.nextEventID(), nil) != nil {
		return
	}
	for {
		var err error
		select {
		case message := <-stream.sess.outbox:
			err = writer.event(stream.sess.nextEventID(), message)
		case <-keepAlive.C:
			err = writer.comment("keepalive")
		case <-stream.stop:
			return
		case <-stream.sess.done:
			return
		case <-shutdown:
			return
		}
		if err != nil {
			return
		}
	}
}

// writeAbandoned writes the responses that arrived together with the end
// of the wait, then an error response for every request still without one.
func (m *Module) writeAbandoned(writer *eventWriter, stream eventStream, responded map[string]bool, reason string) {
	for ready := true; ready; {
		select {
		case response := <-stream.responses:
			var head messageHead
			_ = json.Unmarshal(response, &head)
			responded[idKey(head.ID)] = true
			if writer.event("", response) != nil {
				m.abandon(stream.sess, stream.keys, responded, "the client closed the response stream")
				return
			}
		default:
			ready = false
		}
	}
	for _, response := range m.abandon(stream.sess, stream.keys, responded, reason) {
		if writer.event("", response) != nil {
			return
		}
	}
}

// eventWriter writes server-sent events and extends the connection's write
// deadline before each flush, so a stream may outlive
// server.write_timeout while each write stays bounded by it.
type eventWriter struct {
	w       *bufio.Writer
	conn    net.Conn
	timeout time.Duration
}

// event writes one message event; a nil data writes an event with only an id.
func (e *eventWriter) event(id string, data []byte) error {
	if id != "" {
		_, _ = e.w.WriteString("id: " + id + "\n")
	}
	if data != nil {
		_, _ = e.w.WriteString("event: message\n")
	}
	_, _ = e.w.WriteString("data: ")
	if bytes.ContainsAny(data, "\r\n") {
		// An event's data is one line; JSON keeps newlines only as
		// whitespace outside strings, which compacting removes.
		var compact bytes.Buffer
		if json.Compact(&compact, data) == nil {
			data = compact.Bytes()
		}
	}
	_, _ = e.w.Write(data)
	_, _ = e.w.WriteString("\n\n")
	return e.flush()
}

func (e *eventWriter) comment(text string) error {
	_, _ = e.w.WriteString(": " + text + "\n\n")
	return e.flush()
}

func (e *eventWriter) flush() error {
	if e.conn != nil {
		_ = e.conn.SetWriteDeadline(time.Now().Add(e.timeout))
	}
	return e.w.Flush()
}
