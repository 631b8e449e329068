package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/plugins/host"
)

// Headers of the Streamable HTTP transport.
const (
	headerSessionID       = "Mcp-Session-Id"
	headerProtocolVersion = "Mcp-Protocol-Version"
	headerLastEventID     = "Last-Event-ID"
)

// supportedVersions are the MCP protocol versions whose Streamable HTTP
// transport the endpoint speaks, oldest first. Versions from 2026-07-28 on
// drop sessions, which this endpoint is built on, so a request for one gets
// a JSON-RPC error that lists these, and clients fall back to initialize.
var supportedVersions = []string{"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"}

// batchesEndVersion is the first protocol version without JSON-RPC batches.
const batchesEndVersion = "2025-06-18"

// JSON-RPC error codes that the endpoint itself returns.
const (
	codeInternalError = -32603
	// codeUnsupportedProtocolVersion is the code that MCP clients read to
	// fall back to an older protocol version.
	codeUnsupportedProtocolVersion = -32022
)

// keepAliveInterval is the time between two comments on an idle event
// stream, which tell a dead client from a quiet one by the write error.
const keepAliveInterval = 15 * time.Second

// mcpPost serves POST …/mcp: one JSON-RPC message or a batch from the
// client. Initialize opens a session; anything else needs its Mcp-Session-Id.
func (m *Module) mcpPost(r *edge.Request) error {
	srv, err := m.endpointServer(r)
	if err != nil {
		return err
	}
	if err := checkJSONBody(r); err != nil {
		return err
	}
	body := bytes.Clone(r.Ctx.Request.Body())
	messages, batch, err := parseMessages(body)
	if err != nil {
		return err
	}

	headerVersion := string(r.Ctx.Request.Header.Peek(headerProtocolVersion))
	sessionID := string(r.Ctx.Request.Header.Peek(headerSessionID))
	if sessionID == "" {
		return m.startSession(r, srv, messages, batch, headerVersion)
	}

	sess := m.sessions.get(sessionID)
	if sess == nil || sess.userID != r.Principal.UserID || sess.serverID != srv.id {
		return sessionNotFound()
	}
	version := sess.protocolVersion()
	if headerVersion != "" && headerVersion != version {
		return unsupportedVersion(r, messages, headerVersion)
	}
	if batch && version >= batchesEndVersion {
		return edge.Validation("body", "JSON-RPC batches are not part of protocol version "+version)
	}

	now := m.host.Clock.Now()
	srv.touch(now)
	sess.lastUsed.Store(now.UnixNano())
	return m.relay(r, sess, messages, batch)
}

// startSession handles a POST without a session: an initialize request
// opens a session, and anything else is rejected.
func (m *Module) startSession(r *edge.Request, srv *server, messages []rpcMessage, batch bool, headerVersion string) error {
	if len(messages) != 1 || batch || messages[0].head.Method != "initialize" || !messages[0].head.isRequest() {
		for _, message := range messages {
			if message.head.Method == "server/discover" || headerVersion >= "2026" {
				return unsupportedVersion(r, messages, max(headerVersion, "2026-07-28"))
			}
		}
		return edge.Validation(headerSessionID,
			"the Mcp-Session-Id header is missing; start a session with a single initialize request")
	}
	if headerVersion != "" && !slices.Contains(supportedVersions, headerVersion) {
		return unsupportedVersion(r, messages, headerVersion)
	}

	waitCtx, cancel := m.requestContext()
	defer cancel()
	srv.touch(m.host.Clock.Now())
	proc, stream, err := m.openPluginSession(waitCtx, srv)
	if err != nil {
		return m.startFailed(r, srv, err)
	}
	sess, err := m.sessions.open(srv, proc, stream)
	if err != nil {
		_ = stream.Close()
		return err
	}

	initialize := messages[0]
	responses := make(chan []byte, 1)
	key := idKey(initialize.head.ID)
	if err := sess.register([]string{key}, responses); err != nil {
		m.sessions.end(sess)
		return err
	}
	if err := sess.stream.Send(waitCtx, initialize.raw); err != nil {
		m.sessions.end(sess)
		return m.startFailed(r, srv, fmt.Errorf("send initialize to the plugin: %w", err))
	}

	var response []byte
	select {
	case response = <-responses:
	case <-sess.done:
		return m.startFailed(r, srv, errors.New("the plugin ended the session during initialize"))
	case <-waitCtx.Done():
		m.sessions.end(sess)
		return m.startFailed(r, srv, errors.New("timed out waiting for the plugin's initialize response"))
	}

	version, ok := negotiatedVersion(response)
	if !ok {
		// The plugin rejected initialize: the client gets its error, and no session.
		m.sessions.end(sess)
		return writeMessages(r, [][]byte{response}, false)
	}
	sess.version.Store(version)
	r.Ctx.Response.Header.Set(headerSessionID, sess.id)
	r.Logger().Info("mcp session opened", slog.String("server_id", srv.id), slog.String("protocol_version", version))

	if acceptsEventStream(r) {
		m.streamEvents(r, eventStream{sess: sess, first: [][]byte{response}})
		return nil
	}
	return writeMessages(r, [][]byte{response}, false)
}

// openPluginSession starts the server unless it runs and opens a session
// stream on its process. A process that exits between the two steps, as
// one stopped for being idle does, is started again once.
func (m *Module) openPluginSession(ctx context.Context, srv *server) (process, host.Session, error) {
	for attempt := 0; ; attempt++ {
		proc, err := m.servers.ensureRunning(ctx, srv)
		if err != nil {
			return nil, nil, err
		}
		stream, err := proc.OpenSession(ctx)
		if errors.Is(err, host.ErrExited) && attempt == 0 {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("open a session on the plugin: %w", err)
		}
		return proc, stream, nil
	}
}

// relay sends the client's messages to the plugin and returns the
// responses to its requests, as JSON or as an event stream. Messages
// without a request get 202.
func (m *Module) relay(r *edge.Request, sess *mcpSession, messages []rpcMessage, batch bool) error {
	var keys []string
	for _, message := range messages {
		if message.head.isRequest() {
			keys = append(keys, idKey(message.head.ID))
		}
	}
	responses := make(chan []byte, len(keys))
	if err := sess.register(keys, responses); err != nil {
		return edge.Validation("id", err.Error())
	}

	sendCtx, cancelSend := m.requestContext()
	defer cancelSend()
	for _, message := range messages {
		if err := sess.stream.Send(sendCtx, message.raw); err != nil {
			sess.unregister(keys)
			m.sessions.end(sess)
			return sessionNotFound()
		}
	}

	if len(keys) == 0 {
		r.Ctx.SetStatusCode(http.StatusAccepted)
		return nil
	}
	if acceptsEventStream(r) {
		m.streamEvents(r, eventStream{sess: sess, keys: keys, responses: responses})
		return nil
	}

	waitCtx, cancel := m.requestContext()
	defer cancel()
	collected := m.collect(waitCtx, r.Ctx.Done(), sess, keys, responses)
	return writeMessages(r, collected, batch)
}

// collect waits for the responses to keys and fills in an error response
// for each request that got no response before ctx ended, the session
// ended or the server began to shut down.
func (m *Module) collect(ctx context.Context, shutdown <-chan struct{}, sess *mcpSession, keys []string, responses chan []byte) [][]byte {
	responded := map[string]bool{}
	var collected [][]byte
	take := func(response []byte) {
		var head messageHead
		_ = json.Unmarshal(response, &head)
		responded[idKey(head.ID)] = true
		collected = append(collected, response)
	}
	// giveUp keeps the responses that arrived together with the end of the
	// wait, and returns errors for the rest.
	giveUp := func(reason string) [][]byte {
		for {
			select {
			case response := <-responses:
				take(response)
				continue
			default:
			}
			return append(collected, m.abandon(sess, keys, responded, reason)...)
		}
	}

	for len(responded) < len(keys) {
		select {
		case response := <-responses:
			take(response)
		case <-sess.done:
			return giveUp("the MCP server session ended before it responded")
		case <-ctx.Done():
			return giveUp("the MCP server did not respond within the request timeout")
		case <-shutdown:
			return giveUp("nexus is shutting down")
		}
	}
	return collected
}

// abandon stops waiting for the requests without a response. It sends the
// plugin a cancellation of each and returns an error response for each.
func (m *Module) abandon(sess *mcpSession, keys []string, responded map[string]bool, reason string) [][]byte {
	var open []string
	for _, key := range keys {
		if !responded[key] {
			open = append(open, key)
		}
	}
	sess.unregister(open)

	errorsOut := make([][]byte, 0, len(open))
	for _, key := range open {
		cancelled, _ := json.Marshal(map[string]any{
			"jsonrpc": "2.0", "method": "notifications/cancelled",
			"params": map[string]any{"requestId": json.RawMessage(key), "reason": reason},
		})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = sess.stream.Send(ctx, cancelled)
		cancel()
		errorsOut = append(errorsOut, rpcErrorResponse(json.RawMessage(key), codeInternalError, reason, nil))
	}
	return errorsOut
}

// mcpGet serves GET …/mcp: the event stream of the plugin's requests and
// notifications that belong to no request of the client. A newer GET stream of
// the same session replaces the older one.
func (m *Module) mcpGet(r *edge.Request) error {
	srv, err := m.endpointServer(r)
	if err != nil {
		return err
	}
	sess, err := m.requestSession(r, srv)
	if err != nil {
		return err
	}
	if !acceptsEventStream(r) {
		return edge.Validation("Accept", "GET on an MCP endpoint needs Accept: text/event-stream")
	}

	sess.lastUsed.Store(m.host.Clock.Now().UnixNano())
	stop := make(chan struct{})
	if previous := sess.getStream.Swap(&stop); previous != nil {
		close(*previous)
	}
	m.streamEvents(r, eventStream{sess: sess, stop: stop})
	return nil
}

// mcpDelete serves DELETE …/mcp: the client ends its session.
func (m *Module) mcpDelete(r *edge.Request) error {
	srv, err := m.endpointServer(r)
	if err != nil {
		return err
	}
	sess, err := m.requestSession(r, srv)
	if err != nil {
		return err
	}

	m.sessions.end(sess)
	r.Logger().Info("mcp session closed by the client", slog.String("server_id", srv.id))
	r.Ctx.SetStatusCode(http.StatusNoContent)
	return nil
}

// endpointServer checks the Origin and returns the caller's server of the
// route; another user's server is 404, as one that does not exist.
func (m *Module) endpointServer(r *edge.Request) (*server, error) {
	origin := string(r.Ctx.Request.Header.Peek("Origin"))
	if !m.opts.allowsOrigin(origin) {
		return nil, edge.Forbidden(fmt.Sprintf("origin %s may not call this MCP endpoint; operators allow origins in modules.mcp.allowed_origins", origin))
	}

	srv, err := m.servers.lookup(r.Context(), r.Param("id"))
	if errors.Is(err, errNotFound) || (err == nil && srv.userID != r.Principal.UserID) {
		return nil, serverNotFound()
	}
	if err != nil {
		return nil, err
	}
	return srv, nil
}

// requestSession returns the session of the Mcp-Session-Id header, which
// must belong to the caller and the server.
func (m *Module) requestSession(r *edge.Request, srv *server) (*mcpSession, error) {
	sessionID := string(r.Ctx.Request.Header.Peek(headerSessionID))
	if sessionID == "" {
		return nil, edge.Validation(headerSessionID, "the Mcp-Session-Id header is missing")
	}
	sess := m.sessions.get(sessionID)
	if sess == nil || sess.userID != r.Principal.UserID || sess.serverID != srv.id {
		return nil, sessionNotFound()
	}
	if version := string(r.Ctx.Request.Header.Peek(headerProtocolVersion)); version != "" && version != sess.protocolVersion() {
		return nil, edge.Validation(headerProtocolVersion, fmt.Sprintf(
			"MCP-Protocol-Version %q does not match the session's protocol version %s", version, sess.protocolVersion()))
	}
	return sess, nil
}

// requestContext bounds a wait for the plugin by request_timeout on the
// module's clock.
func (m *Module) requestContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	timer := m.host.Clock.AfterFunc(m.opts.RequestTimeout, cancel)
	return ctx, func() {
		timer.Stop()
		cancel()
	}
}

// startFailed turns a failure to reach the server's process into 503.
func (m *Module) startFailed(r *edge.Request, srv *server, err error) error {
	var unavailable *unavailableError
	details := map[string]any{"server_id": srv.id, "state": string(srv.currentState())}
	if errors.As(err, &unavailable) && unavailable.retryAfter > 0 {
		seconds := int((unavailable.retryAfter + time.Second - 1) / time.Second)
		r.Ctx.Response.Header.Set("Retry-After", strconv.Itoa(seconds))
		details["retry_after"] = seconds
	}
	r.Logger().Warn("mcp server unavailable", slog.String("server_id", srv.id), slog.String("error", err.Error()))
	return &edge.Error{Status: http.StatusServiceUnavailable, Code: edge.CodeInternal,
		Message: "MCP server " + srv.id + " is unavailable: " + err.Error(), Details: details}
}

func sessionNotFound() *edge.Error {
	return edge.NotFound("MCP session not found or ended; initialize a new session")
}

func serverNotFound() *edge.Error {
	return edge.NotFound("MCP server not found")
}

// unsupportedVersion responds 400 with a JSON-RPC error that lists the
// supported versions, in the form that MCP clients read to fall back.
func unsupportedVersion(r *edge.Request, messages []rpcMessage, requested string) error {
	var id json.RawMessage
	for _, message := range messages {
		if message.head.isRequest() {
			id = message.head.ID
			break
		}
	}
	data := map[string]any{"supported": supportedVersions, "requested": requested}
	body := rpcErrorResponse(id, codeUnsupportedProtocolVersion,
		fmt.Sprintf("protocol version %q is not supported by this endpoint; use one of %s",
			requested, strings.Join(supportedVersions, ", ")), data)
	r.Raw(http.StatusBadRequest, "application/json", body)
	return nil
}

// rpcErrorResponse encodes a JSON-RPC error response; a nil id is null.
func rpcErrorResponse(id json.RawMessage, code int, message string, data any) []byte {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	errorBody := map[string]any{"code": code, "message": message}
	if data != nil {
		errorBody["data"] = data
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "error": errorBody})
	return body
}

// negotiatedVersion reads the protocol version from an initialize result;
// ok is false for an error response.
func negotiatedVersion(response []byte) (string, bool) {
	var result struct {
		Result *struct {
			ProtocolVersion string `json:"protocolVersion"`
		} `json:"result"`
	}
	if err := json.Unmarshal(response, &result); err != nil || result.Result == nil || result.Result.ProtocolVersion == "" {
		return "", false
	}
	return result.Result.ProtocolVersion, true
}

// writeMessages writes the responses as one JSON value: an array for a
// batch, else the single response.
func writeMessages(r *edge.Request, messages [][]byte, batch bool) error {
	var body []byte
	if batch {
		body = append(body, '[')
		body = append(body, bytes.Join(messages, []byte(","))...)
		body = append(body, ']')
	} else {
		body = messages[0]
	}
	r.Raw(http.StatusOK, "application/json", body)
	return nil
}

// rpcMessage is one JSON-RPC message of a POST body.
type rpcMessage struct {
	raw  []byte
	head messageHead
}

// parseMessages splits a POST body into its JSON-RPC messages and checks
// that each is a request, a notification or a response.
func parseMessages(body []byte) ([]rpcMessage, bool, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, false, edge.Validation("body", "request body is empty, expected a JSON-RPC message")
	}

	raws := []json.RawMessage{trimmed}
	batch := trimmed[0] == '['
	if batch {
		raws = nil
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, false, edge.Validation("body", "request body is not a valid JSON-RPC batch: "+err.Error())
		}
		if len(raws) == 0 {
			return nil, false, edge.Validation("body", "JSON-RPC batch is empty")
		}
	}

	messages := make([]rpcMessage, 0, len(raws))
	for i, raw := range raws {
		var head messageHead
		if err := json.Unmarshal(raw, &head); err != nil {
			return nil, false, edge.Validation("body", fmt.Sprintf("message %d is not a JSON-RPC object: %v", i, err))
		}
		valid := head.JSONRPC == "2.0" && (head.Method != "" || (head.hasID() && (head.Result != nil || head.Error != nil)))
		if !valid {
			return nil, false, edge.Validation("body", fmt.Sprintf(
				"message %d is not a JSON-RPC 2.0 request, notification or response", i))
		}
		messages = append(messages, rpcMessage{raw: raw, head: head})
	}
	return messages, batch, nil
}

// checkJSONBody requires Content-Type application/json.
func checkJSONBody(r *edge.Request) error {
	contentType := string(r.Ctx.Request.Header.ContentType())
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil || mediaType != "application/json" {
		return edge.Validation("Content-Type", fmt.Sprintf("Content-Type %q is not supported, expected application/json", contentType))
	}
	return nil
}

// acceptsEventStream reports whether the client listed text/event-stream
// in Accept; it then gets responses as an event stream.
func acceptsEventStream(r *edge.Request) bool {
	for part := range strings.SplitSeq(string(r.Ctx.Request.Header.Peek("Accept")), ",") {
		mediaType, _, _ := strings.Cut(part, ";")
		if strings.EqualFold(strings.TrimSpace(mediaType), "text/event-stream") {
			return true
		}
	}
	return false
}
