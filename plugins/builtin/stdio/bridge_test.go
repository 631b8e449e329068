package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nexus-suite/nexus/plugins/host"
	"github.com/nexus-suite/nexus/plugins/plugintest"
)

// stopGrace is the graceful stop bound in tests.
const stopGrace = 5 * time.Second

func launchBridge(t *testing.T, bridge plugintest.Binary, config any) *host.Plugin {
	t.Helper()

	raw, err := json.Marshal(config)
	if err != nil {
		t.Fatalf("encode config: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := host.Launch(ctx, host.Spec{Path: bridge.Path, SHA256: bridge.SHA256, Config: raw, Stderr: io.Discard})
	if err != nil {
		t.Fatalf("launch stdio bridge: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Stop(context.Background(), stopGrace); err != nil {
			t.Errorf("stop stdio bridge: %v", err)
		}
	})
	return p
}

// groupMembers returns the pids of the running processes in process group
// pgid, read from /proc.
func groupMembers(t *testing.T, pgid int) []int {
	t.Helper()

	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("read /proc: %v", err)
	}
	var members []int
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", entry.Name(), "stat"))
		if err != nil {
			continue
		}
		// After the command name in parentheses: state, ppid, pgrp.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) < 3 || fields[0] == "Z" {
			continue
		}
		if group, _ := strconv.Atoi(fields[2]); group == pgid {
			members = append(members, pid)
		}
	}
	return members
}

func TestBridgeNPMServer(t *testing.T) {
	server := plugintest.NPMStdioServer(t)
	bridge := plugintest.Build(t, plugintest.StdioBridgePackage)
	p := launchBridge(t, bridge, server.Config())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sessions := make([]*mcp.ClientSession, 2)
	for i := range sessions {
		session, err := p.OpenSession(ctx)
		if err != nil {
			t.Fatalf("open session: %v", err)
		}
		client := mcp.NewClient(&mcp.Implementation{Name: "bridge-test", Version: "1.0.0"}, nil)
		sessions[i], err = client.Connect(ctx, plugintest.SessionTransport{Session: session}, nil)
		if err != nil {
			t.Fatalf("initialize session %d through the bridge: %v", i, err)
		}
	}

	if name := sessions[0].InitializeResult().ServerInfo.Name; name != "memory-server" {
		t.Errorf("server name = %q; want the npm package's memory-server", name)
	}
	listed, err := sessions[0].ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("list tools: %v", err)
	}
	var names []string
	for _, tool := range listed.Tools {
		names = append(names, tool.Name)
	}
	if !slices.Contains(names, "create_entities") || !slices.Contains(names, "read_graph") {
		t.Errorf("tools = %v; want create_entities and read_graph", names)
	}

	created, err := sessions[0].CallTool(ctx, &mcp.CallToolParams{Name: "create_entities", Arguments: map[string]any{
		"entities": []map[string]any{{"name": "nexus", "entityType": "project", "observations": []string{"hosts MCP servers"}}},
	}})
	if err != nil || created.IsError {
		t.Fatalf("create_entities = %+v, %v", created, err)
	}
	// The second session runs its own command, which shares the memory file.
	graph, err := sessions[1].CallTool(ctx, &mcp.CallToolParams{Name: "read_graph", Arguments: map[string]any{}})
	if err != nil || graph.IsError {
		t.Fatalf("read_graph = %+v, %v", graph, err)
	}
	encoded, _ := json.Marshal(graph)
	if !strings.Contains(string(encoded), "hosts MCP servers") {
		t.Errorf("read_graph = %s; want the entity created by the other session", encoded)
	}

	if members := groupMembers(t, p.Pid()); len(members) < 3 {
		t.Errorf("process group %d has %v; want the bridge and one node process per session", p.Pid(), members)
	}
	for _, session := range sessions {
		session.Close()
	}
	if err := p.Stop(context.Background(), stopGrace); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if members := groupMembers(t, p.Pid()); len(members) > 0 {
		t.Errorf("processes %v of the bridge's group still run after stop", members)
	}
}

func TestBridgeRejectsConfig(t *testing.T) {
	bridge := plugintest.Build(t, plugintest.StdioBridgePackage)

	tests := []struct {
		name   string
		config string
		want   string
	}{
		{name: "MissingCommand", config: `{"args": ["x"]}`, want: "missing command"},
		{name: "UnknownField", config: `{"command": "cat", "cmd": "cat"}`, want: "unknown field"},
		{name: "CommandNotFound", config: `{"command": "no-such-mcp-server-command"}`, want: "not found"},
		{name: "ReservedEnv", config: `{"command": "cat", "env": {"NEXUS_MCP_PLUGIN": "x"}}`, want: "reserved"},
		{name: "MissingDir", config: `{"command": "cat", "dir": "/no/such/dir"}`, want: "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := host.Launch(context.Background(), host.Spec{
				Path:   bridge.Path,
				SHA256: bridge.SHA256,
				Config: json.RawMessage(tt.config),
			})
			if !errors.Is(err, host.ErrConfigure) {
				t.Fatalf("launch = %v; want ErrConfigure", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestBridgeRelaysLines(t *testing.T) {
	bridge := plugintest.Build(t, plugintest.StdioBridgePackage)
	// cat echoes each line, after a line that is not JSON, which the bridge
	// skips.
	p := launchBridge(t, bridge, map[string]any{"command": "sh", "args": []string{"-c", "echo not json; exec cat"}})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	session, err := p.OpenSession(ctx)
	if err != nil {
		t.Fatalf("open session: %v", err)
	}
	defer session.Close()

	multiline := "{\n  \"jsonrpc\": \"2.0\",\n  \"method\": \"notifications/message\",\n  \"params\": {\"text\": \"a\\nb\"}\n}"
	if err := session.Send(ctx, []byte(multiline)); err != nil {
		t.Fatalf("send: %v", err)
	}
	got, err := session.Recv(ctx)
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	want := `{"jsonrpc":"2.0","method":"notifications/message","params":{"text":"a\nb"}}`
	if string(got) != want {
		t.Errorf("relayed message = %s; want the message compacted to one line %s", got, want)
	}

	if err := session.Send(ctx, []byte("not json")); err != nil {
		t.Fatalf("send invalid JSON: %v", err)
	}
	if _, err := session.Recv(ctx); !errors.Is(err, io.EOF) {
		t.Errorf("recv after invalid JSON = %v; want the session ended", err)
	}
}

func TestBridgeSessionEndsWithCommand(t *testing.T) {
	bridge := plugintest.Build(t, plugintest.StdioBridgePackage)
	p := launchBridge(t, bridge, map[string]any{"command": "true"})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	session, err := p.OpenSession(ctx)
	if err != nil {
		t.Fatalf("open session: %v", err)
	}
	defer session.Close()

	if _, err := session.Recv(ctx); !errors.Is(err, io.EOF) {
		t.Errorf("recv after the command exited = %v; want io.EOF", err)
	}
	if err := p.Health(ctx); err != nil {
		t.Errorf("bridge health after a session's command exited: %v", err)
	}
}

func TestCommandEnv(t *testing.T) {
	base := []string{"PATH=/bin", "NEXUS_MCP_PLUGIN=cookie", "PLUGIN_MIN_PORT=1", "NEXUS_PLUGIN_HOST_PID=1", "TOKEN=secret"}
	got := commandEnv(base, map[string]string{"DEBUG": "1"})

	want := []string{"PATH=/bin", "TOKEN=secret", "DEBUG=1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("commandEnv = %v; want %v", got, want)
	}
}

func TestMain(m *testing.M) { os.Exit(plugintest.Main(m)) }
