package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mcpComponent returns the MCP Hosting component of /status.
func (s *testServer) mcpComponent(t *testing.T) statusComponentView {
	t.Helper()
	res, err := http.Get(s.url + "/status")
	if err != nil {
		t.Fatalf("GET /status: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read /status: %v", err)
	}
	var page struct {
		Components []statusComponentView `json:"components"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatalf("decode /status %s: %v", body, err)
	}
	for _, component := range page.Components {
		if component.ID == "mcp" {
			return component
		}
	}
	t.Fatalf("/status has no mcp component: %s", body)
	return statusComponentView{}
}

type statusComponentView struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Restarts int    `json:"restarts"`
}

func countLines(lines []string, text string) int {
	n := 0
	for _, line := range lines {
		if strings.Contains(line, text) {
			n++
		}
	}
	return n
}

func TestMCPPluginKilledRestarts(t *testing.T) {
	requireProcFS(t)
	s := startMCPServer(t, engineSQLite)
	m := s.studioMember(t)
	server := s.createMCPServer(t, m, "notes", "notes", `{}`)
	session := s.mustConnectMCP(t, server.ID, s.memberToken(m))
	if _, err := callTool(t, session, "add_note", map[string]any{"title": "before the crash"}); err != nil {
		t.Fatalf("add_note: %v", err)
	}
	pid := s.mcpPluginPID(t, m, server.ID)

	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
	view := s.waitMCPState(t, m, server.ID, "restarting")
	if !strings.Contains(view.lastError(), "killed") {
		t.Errorf("last error = %q, want the kill", view.lastError())
	}
	if _, err := callTool(t, session, "search_notes", map[string]any{}); err == nil {
		t.Error("the session of the killed process still answered")
	}

	s.clock.Advance(time.Second)
	s.waitMCPState(t, m, server.ID, "running")
	again := s.mustConnectMCP(t, server.ID, s.memberToken(m))
	if _, err := callTool(t, again, "search_notes", map[string]any{}); err != nil {
		t.Fatalf("search_notes after re-initializing: %v", err)
	}
	if newPID := s.mcpPluginPID(t, m, server.ID); newPID == pid || processGone(newPID) {
		t.Errorf("plugin pid after the restart = %d, want a new live process (the killed one was %d)", newPID, pid)
	}

	if view := s.mcpServer(t, m, server.ID); view.Restarts != 1 {
		t.Errorf("server restarts = %d, want 1", view.Restarts)
	}
	if component := s.mcpComponent(t); component.Restarts != 1 {
		t.Errorf("/status mcp restarts = %d, want 1", component.Restarts)
	}
	if got := s.metric(t, `nexus_mcp_restarts_total{plugin="notes"}`); got != 1 {
		t.Errorf("nexus_mcp_restarts_total = %v, want 1", got)
	}
	if got := s.metric(t, `nexus_mcp_plugin_processes`); got != 1 {
		t.Errorf("nexus_mcp_plugin_processes = %v, want 1", got)
	}
	if got := s.metric(t, `nexus_mcp_servers{state="running"}`); got != 1 {
		t.Errorf(`nexus_mcp_servers{state="running"} = %v, want 1`, got)
	}
}

func TestMCPStdoutNoiseBacksOff(t *testing.T) {
	binaries := mcpPluginBinaries(t)
	s := startMCPServer(t, engineSQLite, addCatalog(binaries["test"].catalogEntry("noisy", "-stdout-noise")))
	m := s.studioMember(t)
	healthy := s.createMCPServer(t, m, "healthy", "notes", `{}`)
	noisy := s.createMCPServer(t, m, "noisy", "noisy", `{}`)

	view := s.waitMCPState(t, m, noisy.ID, "restarting")
	if !strings.Contains(view.lastError(), "handshake") {
		t.Errorf("last error = %q, want the failed handshake", view.lastError())
	}
	time.Sleep(300 * time.Millisecond)
	if starts := countLines(s.mcpLogLines(t, m, noisy.ID), "supervisor: starting"); starts != 1 {
		t.Fatalf("starts before the backoff passed = %d, want 1: no restart may come before its backoff", starts)
	}
	res := s.mcpRawRequest(t, m, "POST", noisy.ID, initializeBody)
	if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") == "" {
		t.Errorf("initialize while restarting = %d %s, want 503 with Retry-After", res.status, res.body)
	}

	s.clock.Advance(time.Second)
	waitFor(t, "the second start", func() bool {
		return countLines(s.mcpLogLines(t, m, noisy.ID), "supervisor: restarting in 2s") == 1
	})
	s.clock.Advance(2 * time.Second)
	s.waitMCPState(t, m, noisy.ID, "crash_loop")
	waitFor(t, "/status to show MCP hosting degraded", func() bool {
		return s.mcpComponent(t).Status == "degraded_performance"
	})

	session := s.mustConnectMCP(t, healthy.ID, s.memberToken(m))
	if _, err := callTool(t, session, "search_notes", map[string]any{}); err != nil {
		t.Errorf("the healthy server stopped serving while another crash-loops: %v", err)
	}
	s.clock.Advance(time.Hour)
	time.Sleep(100 * time.Millisecond)
	if starts := countLines(s.mcpLogLines(t, m, noisy.ID), "supervisor: starting"); starts != 3 {
		t.Errorf("starts = %d, want 3: a crash-looping server must wait for its owner", starts)
	}

	if res := s.as(t, m, "DELETE", "/v1/mcp/servers/"+noisy.ID, ""); res.status != http.StatusOK {
		t.Fatalf("DELETE noisy server = %d %s", res.status, res.body)
	}
	waitFor(t, "/status to recover", func() bool { return s.mcpComponent(t).Status == "operational" })
}

func TestMCPDeleteStopsChildProcess(t *testing.T) {
	requireProcFS(t)
	binaries := mcpPluginBinaries(t)
	s := startMCPServer(t, engineSQLite, addCatalog(binaries["test"].catalogEntry("spawner", "-spawn-child")))
	m := s.studioMember(t)
	server := s.createMCPServer(t, m, "spawner", "spawner", `{}`)
	session := s.mustConnectMCP(t, server.ID, s.memberToken(m))

	text, err := callTool(t, session, "child_pid", map[string]any{})
	if err != nil {
		t.Fatalf("child_pid: %v", err)
	}
	var child struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(text), &child); err != nil || child.PID == 0 {
		t.Fatalf("child_pid = %q: %v", text, err)
	}
	if processGone(child.PID) {
		t.Fatalf("the child %d is not running before DELETE", child.PID)
	}
	pluginPID := s.mcpPluginPID(t, m, server.ID)

	if res := s.as(t, m, "DELETE", "/v1/mcp/servers/"+server.ID, ""); res.status != http.StatusOK {
		t.Fatalf("DELETE = %d %s", res.status, res.body)
	}
	waitFor(t, "the plugin's child sleep 600 to be gone", func() bool { return processGone(child.PID) })
	if !processGone(pluginPID) {
		t.Errorf("plugin process %d still runs after DELETE", pluginPID)
	}
}

func TestMCPWrongChecksumRefused(t *testing.T) {
	binaries := mcpPluginBinaries(t)
	broken := binaries["notes"].catalogEntry("broken")
	broken["sha256"] = binaries["test"].sha256
	s := startMCPServer(t, engineSQLite, addCatalog(broken))
	m := s.studioMember(t)

	res := s.as(t, m, "GET", "/v1/mcp/plugins", "")
	var plugins []struct {
		Name      string  `json:"name"`
		Available bool    `json:"available"`
		Reason    *string `json:"unavailable_reason"`
	}
	res.data(t, &plugins)
	index := slices.IndexFunc(plugins, func(p struct {
		Name      string  `json:"name"`
		Available bool    `json:"available"`
		Reason    *string `json:"unavailable_reason"`
	}) bool {
		return p.Name == "broken"
	})
	if index < 0 || plugins[index].Available || plugins[index].Reason == nil || !strings.Contains(*plugins[index].Reason, "sha256") {
		t.Fatalf("plugins = %s, want broken unavailable for its sha256", res.body)
	}
	if !strings.Contains(s.logs.String(), "does not match its configured sha256") {
		t.Error("the log does not name the checksum mismatch")
	}

	res = s.as(t, m, "POST", "/v1/mcp/servers", `{"name":"b","plugin":"broken"}`)
	if res.status != http.StatusBadRequest || !strings.Contains(res.envelopeError(t).Message, "sha256") {
		t.Errorf("create of a broken plugin = %d %s, want 400 naming the sha256", res.status, res.body)
	}
	waitFor(t, "/status to show MCP hosting degraded", func() bool {
		return s.mcpComponent(t).Status == "degraded_performance"
	})

	notes := s.createMCPServer(t, m, "notes", "notes", `{}`)
	session := s.mustConnectMCP(t, notes.ID, s.memberToken(m))
	if _, err := callTool(t, session, "search_notes", map[string]any{}); err != nil {
		t.Errorf("the notes plugin stopped working beside a broken one: %v", err)
	}
}

func TestMCPChecksumCheckedAtEveryStart(t *testing.T) {
	binaries := mcpPluginBinaries(t)
	copyPath := filepath.Join(t.TempDir(), "notes-copy")
	data, err := os.ReadFile(binaries["notes"].path)
	if err != nil {
		t.Fatalf("read notes binary: %v", err)
	}
	if err := os.WriteFile(copyPath, data, 0o755); err != nil {
		t.Fatalf("copy notes binary: %v", err)
	}
	entry := mcpBinary{path: copyPath, sha256: binaries["notes"].sha256}.catalogEntry("copy")
	s := startMCPServer(t, engineSQLite, addCatalog(entry))
	m := s.studioMember(t)
	server := s.createMCPServer(t, m, "copy", "copy", `{}`)
	s.waitMCPState(t, m, server.ID, "running")

	// The running process keeps the old file; the next start reads the new one.
	tampered := copyPath + ".new"
	if err := os.WriteFile(tampered, append(data, "tampered"...), 0o755); err != nil {
		t.Fatalf("write tampered binary: %v", err)
	}
	if err := os.Rename(tampered, copyPath); err != nil {
		t.Fatalf("replace binary: %v", err)
	}

	res := s.as(t, m, "POST", "/v1/mcp/servers/"+server.ID+"/restart", "")
	if res.status != http.StatusOK {
		t.Fatalf("restart = %d %s", res.status, res.body)
	}
	var view mcpServerView
	res.data(t, &view)
	if view.State != "restarting" || !strings.Contains(view.lastError(), "sha256") {
		t.Errorf("after tampering: state %s, last error %q; want restarting for the sha256", view.State, view.lastError())
	}
}

func TestMCPIdleShutdownThenColdStart(t *testing.T) {
	requireProcFS(t)
	s := startMCPServer(t, engineSQLite, func(section map[string]any) { section["idle_timeout"] = "1m" })
	m := s.studioMember(t)
	server := s.createMCPServer(t, m, "notes", "notes", `{}`)
	session := s.mustConnectMCP(t, server.ID, s.memberToken(m))
	if _, err := callTool(t, session, "search_notes", map[string]any{}); err != nil {
		t.Fatalf("search_notes: %v", err)
	}
	pid := s.mcpPluginPID(t, m, server.ID)

	s.clock.Advance(time.Minute)
	s.waitMCPState(t, m, server.ID, "idle")
	waitFor(t, "the idle process to exit", func() bool { return processGone(pid) })
	if _, err := callTool(t, session, "search_notes", map[string]any{}); err == nil {
		t.Error("the session of the stopped process still answered")
	}

	again := s.mustConnectMCP(t, server.ID, s.memberToken(m))
	if _, err := callTool(t, again, "search_notes", map[string]any{}); err != nil {
		t.Fatalf("search_notes after the cold start: %v", err)
	}
	if view := s.mcpServer(t, m, server.ID); view.State != "running" || view.Restarts != 0 {
		t.Errorf("after the cold start: state %s, restarts %d; want running with no restart", view.State, view.Restarts)
	}
	if newPID := s.mcpPluginPID(t, m, server.ID); newPID == pid {
		t.Errorf("the cold start reused pid %d", pid)
	}
}

func TestMCPShutdownStopsPlugins(t *testing.T) {
	requireProcFS(t)
	s := startMCPServer(t, engineSQLite)
	m := s.studioMember(t)
	server := s.createMCPServer(t, m, "notes", "notes", `{}`)
	s.waitMCPState(t, m, server.ID, "running")
	pid := s.mcpPluginPID(t, m, server.ID)

	s.stop()

	if !processGone(pid) {
		t.Errorf("plugin process %d still runs after nexus stopped", pid)
	}
}
