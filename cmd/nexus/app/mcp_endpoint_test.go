package app_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/plugins/plugintest"
)

func TestMCPNotesThroughEndpoint(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startMCPServer(t, e)
		m := s.studioMember(t)
		server := s.createMCPServer(t, m, "my notes", "notes", `{"title":"Work"}`)

		session := s.mustConnectMCP(t, server.ID, s.memberToken(m))

		if names := toolNames(t, session); !slices.Contains(names, "add_note") || !slices.Contains(names, "search_notes") {
			t.Fatalf("tools = %v, want add_note and search_notes", names)
		}
		if _, err := callTool(t, session, "add_note", map[string]any{"title": "Buy milk", "body": "two litres"}); err != nil {
			t.Fatalf("add_note: %v", err)
		}
		found, err := callTool(t, session, "search_notes", map[string]any{"query": "milk"})
		if err != nil {
			t.Fatalf("search_notes: %v", err)
		}
		if !strings.Contains(found, "Buy milk") {
			t.Errorf("search_notes = %s, want the note", found)
		}
		if view := s.mcpServer(t, m, server.ID); view.State != "running" {
			t.Errorf("state = %s, want running", view.State)
		}
	})
}

func TestMCPStdioBridgeRunsNPMServer(t *testing.T) {
	npmServer := plugintest.NPMStdioServer(t)
	binaries := mcpPluginBinaries(t)
	bridge := binaries["stdio"].catalogEntry("memory")
	bridge["config"] = npmServer.Config()
	s := startMCPServer(t, engineSQLite, addCatalog(bridge))
	m := s.studioMember(t)
	server := s.createMCPServer(t, m, "memory", "memory", `{}`)

	session := s.mustConnectMCP(t, server.ID, s.memberToken(m))

	names := toolNames(t, session)
	if !slices.Contains(names, "create_entities") || !slices.Contains(names, "read_graph") {
		t.Fatalf("tools of the npm memory server = %v, want create_entities and read_graph", names)
	}
	_, err := callTool(t, session, "create_entities", map[string]any{"entities": []any{
		map[string]any{"name": "nexus", "entityType": "project", "observations": []any{"hosts MCP servers"}},
	}})
	if err != nil {
		t.Fatalf("create_entities: %v", err)
	}
	graph, err := callTool(t, session, "read_graph", map[string]any{})
	if err != nil {
		t.Fatalf("read_graph: %v", err)
	}
	if !strings.Contains(graph, "hosts MCP servers") {
		t.Errorf("read_graph = %s, want the new entity", graph)
	}
}

func TestMCPSessionEndsAfterDelete(t *testing.T) {
	s := startMCPServer(t, engineSQLite)
	m := s.studioMember(t)
	server := s.createMCPServer(t, m, "notes", "notes", `{}`)

	res := s.mcpRawRequest(t, m, "POST", server.ID, initializeBody, "Accept", "application/json")
	if res.status != http.StatusOK {
		t.Fatalf("initialize = %d %s", res.status, res.body)
	}
	sessionID := res.header.Get("Mcp-Session-Id")
	if sessionID == "" {
		t.Fatal("initialize answered without Mcp-Session-Id")
	}
	if !strings.Contains(string(res.body), `"protocolVersion":"2025-06-18"`) {
		t.Errorf("initialize result = %s, want protocol version 2025-06-18", res.body)
	}

	res = s.mcpRawRequest(t, m, "POST", server.ID, `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		"Mcp-Session-Id", sessionID, "MCP-Protocol-Version", "2025-06-18")
	if res.status != http.StatusAccepted {
		t.Fatalf("initialized notification = %d %s, want 202", res.status, res.body)
	}

	res = s.mcpRawRequest(t, m, "POST", server.ID, `{"jsonrpc":"2.0","id":"list","method":"tools/list"}`,
		"Mcp-Session-Id", sessionID, "Accept", "application/json")
	if res.status != http.StatusOK || !strings.Contains(string(res.body), `"id":"list"`) {
		t.Fatalf("tools/list as JSON = %d %s", res.status, res.body)
	}

	res = s.mcpRawRequest(t, m, "DELETE", server.ID, "", "Mcp-Session-Id", sessionID)
	if res.status != http.StatusNoContent {
		t.Fatalf("DELETE session = %d %s, want 204", res.status, res.body)
	}
	res = s.mcpRawRequest(t, m, "POST", server.ID, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, "Mcp-Session-Id", sessionID)
	if res.status != http.StatusNotFound {
		t.Errorf("request in the ended session = %d %s, want 404", res.status, res.body)
	}
}

func TestMCPEventStreamResponses(t *testing.T) {
	s := startMCPServer(t, engineSQLite)
	m := s.studioMember(t)
	server := s.createMCPServer(t, m, "notes", "notes", `{}`)
	res := s.mcpRawRequest(t, m, "POST", server.ID, initializeBody, "Accept", "application/json, text/event-stream")
	if res.status != http.StatusOK || !strings.HasPrefix(res.header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("initialize = %d %q %s, want an event stream", res.status, res.header.Get("Content-Type"), res.body)
	}
	if !strings.Contains(string(res.body), "event: message\ndata: {") {
		t.Errorf("event stream = %q, want a message event", res.body)
	}
	sessionID := res.header.Get("Mcp-Session-Id")

	stream := openEventStream(t, s, m, server.ID, sessionID)
	if first := stream.next(t); !strings.HasPrefix(first, "id: ") {
		t.Errorf("first event of the GET stream = %q, want a priming event with an id", first)
	}

	res = s.mcpRawRequest(t, m, "DELETE", server.ID, "", "Mcp-Session-Id", sessionID)
	if res.status != http.StatusNoContent {
		t.Fatalf("DELETE session = %d", res.status)
	}
	stream.waitEnd(t)
}

// eventStream reads a GET event stream event by event.
type eventStream struct {
	events chan string
	done   chan struct{}
}

func openEventStream(t *testing.T, s *testServer, m member, serverID, sessionID string) *eventStream {
	t.Helper()
	req, err := http.NewRequest("GET", s.url+"/v1/mcp/servers/"+serverID+"/mcp", nil)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+s.memberToken(m)())
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", sessionID)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET event stream: %v", err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET event stream = %d", res.StatusCode)
	}

	stream := &eventStream{events: make(chan string, 16), done: make(chan struct{})}
	go func() {
		defer close(stream.done)
		scanner := bufio.NewScanner(res.Body)
		var event strings.Builder
		for scanner.Scan() {
			if scanner.Text() == "" {
				stream.events <- event.String()
				event.Reset()
				continue
			}
			event.WriteString(scanner.Text() + "\n")
		}
	}()
	return stream
}

func (e *eventStream) next(t *testing.T) string {
	t.Helper()
	select {
	case event := <-e.events:
		return event
	case <-time.After(5 * time.Second):
		t.Fatal("no event on the stream within 5 s")
		return ""
	}
}

func (e *eventStream) waitEnd(t *testing.T) {
	t.Helper()
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the event stream did not end within 5 s of its session")
	}
}

func TestMCPSessionOfAnotherUserIs404(t *testing.T) {
	s := startMCPServer(t, engineSQLite)
	owner, other := s.studioMember(t), s.studioMember(t)
	ownerServer := s.createMCPServer(t, owner, "notes", "notes", `{}`)
	otherServer := s.createMCPServer(t, other, "notes", "notes", `{}`)
	session := s.mustConnectMCP(t, ownerServer.ID, s.memberToken(owner))
	sessionID := session.ID()

	list := `{"jsonrpc":"2.0","id":5,"method":"tools/list"}`
	if res := s.mcpRawRequest(t, other, "POST", otherServer.ID, list, "Mcp-Session-Id", sessionID); res.status != http.StatusNotFound {
		t.Errorf("another user's session on the user's own server = %d %s, want 404", res.status, res.body)
	}
	if res := s.mcpRawRequest(t, other, "POST", ownerServer.ID, list, "Mcp-Session-Id", sessionID); res.status != http.StatusNotFound {
		t.Errorf("another user's session on its own server = %d %s, want 404", res.status, res.body)
	}
	if res := s.mcpRawRequest(t, other, "POST", ownerServer.ID, initializeBody); res.status != http.StatusNotFound {
		t.Errorf("initialize on another user's server = %d %s, want 404", res.status, res.body)
	}
	if _, err := callTool(t, session, "search_notes", map[string]any{}); err != nil {
		t.Errorf("the owner's session stopped working: %v", err)
	}
}

func TestMCPEndpointChecksHeaders(t *testing.T) {
	s := startMCPServer(t, engineSQLite, func(section map[string]any) {
		section["allowed_origins"] = []any{"https://app.example.com"}
	})
	m := s.studioMember(t)
	server := s.createMCPServer(t, m, "notes", "notes", `{}`)

	res := s.mcpRawRequest(t, m, "POST", server.ID, initializeBody, "Origin", "https://evil.example.com")
	if res.status != http.StatusForbidden || res.envelopeError(t).Code != "FORBIDDEN" {
		t.Errorf("initialize from a foreign origin = %d %s, want 403 FORBIDDEN", res.status, res.body)
	}
	res = s.mcpRawRequest(t, m, "POST", server.ID, initializeBody, "Origin", "https://app.example.com", "Accept", "application/json")
	if res.status != http.StatusOK {
		t.Fatalf("initialize from an allowed origin = %d %s", res.status, res.body)
	}
	sessionID := res.header.Get("Mcp-Session-Id")

	list := `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`
	res = s.mcpRawRequest(t, m, "POST", server.ID, list, "Mcp-Session-Id", sessionID, "MCP-Protocol-Version", "2025-03-26")
	if res.status != http.StatusBadRequest {
		t.Errorf("request with another protocol version = %d %s, want 400", res.status, res.body)
	}
	res = s.mcpRawRequest(t, m, "POST", server.ID, list)
	if res.status != http.StatusBadRequest || res.envelopeError(t).Details["field"] != "Mcp-Session-Id" {
		t.Errorf("request without a session = %d %s, want 400 on Mcp-Session-Id", res.status, res.body)
	}
	res = s.mcpRawRequest(t, m, "POST", server.ID, `{"jsonrpc":"2.0","id":9,"method":"server/discover"}`,
		"MCP-Protocol-Version", "2026-07-28")
	var rpcError struct {
		Error struct {
			Code int `json:"code"`
			Data struct {
				Supported []string `json:"supported"`
			} `json:"data"`
		} `json:"error"`
	}
	if res.status != http.StatusBadRequest || json.Unmarshal(res.body, &rpcError) != nil || rpcError.Error.Code != -32022 ||
		!slices.Contains(rpcError.Error.Data.Supported, "2025-11-25") {
		t.Errorf("server/discover = %d %s, want 400 with JSON-RPC error -32022 listing 2025-11-25", res.status, res.body)
	}
	res = s.mcpRawRequest(t, m, "POST", server.ID, `{"id":1,"method":"tools/list"}`, "Mcp-Session-Id", sessionID)
	if res.status != http.StatusBadRequest {
		t.Errorf("message without jsonrpc 2.0 = %d %s, want 400", res.status, res.body)
	}
}

func TestMCPPerServerTokens(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startMCPServer(t, e)
		m := s.studioMember(t)
		server := s.createMCPServer(t, m, "notes", "notes", `{}`)
		second := s.createMCPServer(t, m, "second", "notes", `{}`)

		res := s.as(t, m, "POST", "/v1/mcp/servers/"+server.ID+"/tokens", `{"name":"laptop"}`)
		if res.status != http.StatusCreated {
			t.Fatalf("create token = %d %s", res.status, res.body)
		}
		var created struct {
			ID    string `json:"id"`
			Token string `json:"token"`
		}
		res.data(t, &created)
		token := func() string { return created.Token }

		session := s.mustConnectMCP(t, server.ID, token)
		if _, err := callTool(t, session, "search_notes", map[string]any{}); err != nil {
			t.Fatalf("tool call with the server token: %v", err)
		}
		if n := s.count(t, `SELECT COUNT(*) FROM mcp_tokens WHERE token_hash = $1`, created.Token); n != 0 {
			t.Error("the token is stored in plain text")
		}

		listed := s.as(t, m, "GET", "/v1/mcp/servers/"+server.ID+"/tokens", "")
		if listed.status != http.StatusOK || strings.Contains(string(listed.body), created.Token) {
			t.Errorf("token list = %d %s, want 200 without the token", listed.status, listed.body)
		}
		if _, err := s.connectMCP(t, second.ID, token); err == nil {
			t.Error("the token of one server opened a session on another")
		}
		res = s.do(t, "GET", "/v1/mcp/servers/"+server.ID, "", "Authorization", "Bearer "+created.Token)
		if res.status != http.StatusUnauthorized {
			t.Errorf("provisioning route with a server token = %d, want 401", res.status)
		}

		res = s.as(t, m, "DELETE", "/v1/mcp/servers/"+server.ID+"/tokens/"+created.ID, "")
		if res.status != http.StatusOK {
			t.Fatalf("revoke token = %d %s", res.status, res.body)
		}
		if _, err := callTool(t, session, "search_notes", map[string]any{}); err == nil {
			t.Error("a request with the revoked token succeeded")
		}
	})
}

func TestMCPIdleSessionEnds(t *testing.T) {
	s := startMCPServer(t, engineSQLite, func(section map[string]any) {
		section["idle_timeout"] = "0s"
		section["session_idle_timeout"] = "2m"
	})
	m := s.studioMember(t)
	server := s.createMCPServer(t, m, "notes", "notes", `{}`)
	res := s.mcpRawRequest(t, m, "POST", server.ID, initializeBody, "Accept", "application/json")
	if res.status != http.StatusOK {
		t.Fatalf("initialize = %d %s", res.status, res.body)
	}
	sessionID := res.header.Get("Mcp-Session-Id")
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`

	s.clock.Advance(90 * time.Second)
	if res := s.mcpRawRequest(t, m, "POST", server.ID, list, "Mcp-Session-Id", sessionID, "Accept", "application/json"); res.status != http.StatusOK {
		t.Fatalf("request 90 s into the session = %d %s, want 200", res.status, res.body)
	}
	s.clock.Advance(90 * time.Second)
	if res := s.mcpRawRequest(t, m, "POST", server.ID, list, "Mcp-Session-Id", sessionID); res.status != http.StatusOK {
		t.Fatalf("request 90 s after the last one = %d %s, want 200", res.status, res.body)
	}

	s.clock.Advance(150 * time.Second)
	if res := s.mcpRawRequest(t, m, "POST", server.ID, list, "Mcp-Session-Id", sessionID); res.status != http.StatusNotFound {
		t.Errorf("request after 150 s without one = %d %s, want 404", res.status, res.body)
	}
	if view := s.mcpServer(t, m, server.ID); view.State != "running" {
		t.Errorf("server state = %s, want running: an idle session does not stop its server", view.State)
	}
}

func TestMCPBatchUnderOldProtocol(t *testing.T) {
	s := startMCPServer(t, engineSQLite)
	m := s.studioMember(t)
	server := s.createMCPServer(t, m, "notes", "notes", `{}`)
	initialize := strings.Replace(initializeBody, "2025-06-18", "2025-03-26", 1)
	res := s.mcpRawRequest(t, m, "POST", server.ID, initialize, "Accept", "application/json")
	if res.status != http.StatusOK || !strings.Contains(string(res.body), `"protocolVersion":"2025-03-26"`) {
		t.Fatalf("initialize under 2025-03-26 = %d %s", res.status, res.body)
	}
	sessionID := res.header.Get("Mcp-Session-Id")

	batch := `[{"jsonrpc":"2.0","id":2,"method":"tools/list"},{"jsonrpc":"2.0","id":3,"method":"ping"}]`
	res = s.mcpRawRequest(t, m, "POST", server.ID, batch, "Mcp-Session-Id", sessionID, "Accept", "application/json")
	var responses []struct {
		ID     int             `json:"id"`
		Result json.RawMessage `json:"result"`
	}
	if res.status != http.StatusOK || json.Unmarshal(res.body, &responses) != nil || len(responses) != 2 {
		t.Fatalf("batch = %d %s, want two responses", res.status, res.body)
	}
	ids := []int{responses[0].ID, responses[1].ID}
	slices.Sort(ids)
	if ids[0] != 2 || ids[1] != 3 {
		t.Errorf("response ids = %v, want 2 and 3", ids)
	}
}
