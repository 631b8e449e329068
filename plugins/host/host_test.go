package host_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nexus-suite/nexus/plugins/host"
	"github.com/nexus-suite/nexus/plugins/plugintest"
)

// stopGrace is the graceful stop bound in tests.
const stopGrace = 3 * time.Second

// lines collects the lines a plugin writes to stderr.
type lines struct {
	mu   sync.Mutex
	text bytes.Buffer
}

func (l *lines) Write(data []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.text.Write(data)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.text.String()
}

// launch starts a plugin and stops it at cleanup.
func launch(t *testing.T, spec host.Spec) *host.Plugin {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := host.Launch(ctx, spec)
	if err != nil {
		t.Fatalf("launch %s: %v", spec.Path, err)
	}
	t.Cleanup(func() {
		if err := p.Stop(context.Background(), stopGrace); err != nil {
			t.Errorf("stop plugin: %v", err)
		}
	})
	return p
}

// connect opens a session and initializes an MCP client on it.
func connect(t *testing.T, p *host.Plugin) *mcp.ClientSession {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	session, err := p.OpenSession(ctx)
	if err != nil {
		t.Fatalf("open session: %v", err)
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "host-test", Version: "1.0.0"}, nil)
	cs, err := client.Connect(ctx, plugintest.SessionTransport{Session: session}, nil)
	if err != nil {
		t.Fatalf("initialize MCP session: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// callTool calls a tool and decodes its structured content into out.
func callTool(t *testing.T, cs *mcp.ClientSession, name string, args any, out any) {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	result, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	if result.IsError {
		t.Fatalf("call %s: tool error: %s", name, toolText(result))
	}
	data, err := json.Marshal(result.StructuredContent)
	if err != nil {
		t.Fatalf("encode %s result: %v", name, err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("decode %s result %s: %v", name, data, err)
	}
}

func toolText(result *mcp.CallToolResult) string {
	var parts []string
	for _, content := range result.Content {
		if text, ok := content.(*mcp.TextContent); ok {
			parts = append(parts, text.Text)
		}
	}
	return strings.Join(parts, " ")
}

func toolNames(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	listed, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("list tools: %v", err)
	}
	names := make([]string, 0, len(listed.Tools))
	for _, tool := range listed.Tools {
		names = append(names, tool.Name)
	}
	return names
}

func waitExited(t *testing.T, p *host.Plugin, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.Exited():
	case <-time.After(timeout):
		t.Fatalf("plugin pid %d still running after %s", p.Pid(), timeout)
	}
}

func TestNotesPlugin(t *testing.T) {
	notes := plugintest.Build(t, plugintest.NotesPackage)
	stderr := &lines{}
	p := launch(t, host.Spec{
		Path:   notes.Path,
		SHA256: notes.SHA256,
		Config: json.RawMessage(`{"title": "Test notebook", "max_notes": 2}`),
		Stderr: stderr,
	})

	t.Run("Health", func(t *testing.T) {
		if err := p.Health(context.Background()); err != nil {
			t.Fatalf("health: %v", err)
		}
	})

	t.Run("Manifest", func(t *testing.T) {
		manifest, err := p.Manifest(context.Background())
		if err != nil {
			t.Fatalf("manifest: %v", err)
		}
		if manifest.Name != "notes" || manifest.Version == "" {
			t.Errorf("manifest name, version = %q, %q; want notes and a version", manifest.Name, manifest.Version)
		}
		if !json.Valid(manifest.ConfigSchema) || !bytes.Contains(manifest.ConfigSchema, []byte("max_notes")) {
			t.Errorf("config schema = %s; want a JSON Schema with max_notes", manifest.ConfigSchema)
		}
	})

	t.Run("ToolsAndResources", func(t *testing.T) {
		first := connect(t, p)
		second := connect(t, p)

		if got := first.InitializeResult().ServerInfo.Title; got != "Test notebook" {
			t.Errorf("server title = %q; want the configured title", got)
		}
		names := toolNames(t, first)
		for _, want := range []string{"add_note", "search_notes", "delete_note"} {
			if !strings.Contains(strings.Join(names, ","), want) {
				t.Errorf("tools %v lack %s", names, want)
			}
		}

		var added struct {
			ID  int    `json:"id"`
			URI string `json:"uri"`
		}
		callTool(t, first, "add_note", map[string]any{"title": "Groceries", "body": "milk, eggs"}, &added)
		if added.ID != 1 || added.URI != "note://1" {
			t.Errorf("add_note = %+v; want id 1 at note://1", added)
		}

		// The second session reads the first one's note, because sessions
		// share the plugin process.
		var found struct {
			Notes []struct {
				Title string `json:"title"`
			} `json:"notes"`
		}
		callTool(t, second, "search_notes", map[string]any{"query": "EGGS"}, &found)
		if len(found.Notes) != 1 || found.Notes[0].Title != "Groceries" {
			t.Errorf("search_notes = %+v; want the Groceries note", found)
		}

		read, err := second.ReadResource(context.Background(), &mcp.ReadResourceParams{URI: "note://1"})
		if err != nil {
			t.Fatalf("read note://1: %v", err)
		}
		if len(read.Contents) != 1 || !strings.Contains(read.Contents[0].Text, "# Groceries") {
			t.Errorf("note://1 contents = %+v; want the note as Markdown", read.Contents)
		}

		callTool(t, first, "add_note", map[string]any{"title": "Second"}, &added)
		result, err := first.CallTool(context.Background(), &mcp.CallToolParams{Name: "add_note", Arguments: map[string]any{"title": "Third"}})
		if err != nil {
			t.Fatalf("call add_note over max_notes: %v", err)
		}
		if !result.IsError || !strings.Contains(toolText(result), "at most 2 notes") {
			t.Errorf("add_note over max_notes = %q (error %v); want a tool error naming the limit", toolText(result), result.IsError)
		}
	})

	t.Run("SessionClose", func(t *testing.T) {
		session, err := p.OpenSession(context.Background())
		if err != nil {
			t.Fatalf("open session: %v", err)
		}
		if err := session.Close(); err != nil {
			t.Fatalf("close session: %v", err)
		}
		if _, err := session.Recv(context.Background()); !errors.Is(err, io.EOF) {
			t.Errorf("recv after close = %v; want io.EOF", err)
		}
		if err := session.Send(context.Background(), []byte(`{"jsonrpc":"2.0","method":"ping","id":1}`)); !errors.Is(err, io.EOF) {
			t.Errorf("send after close = %v; want io.EOF", err)
		}
		if err := p.Health(context.Background()); err != nil {
			t.Errorf("health after a session closed: %v", err)
		}
	})

	t.Run("RecvHonorsContext", func(t *testing.T) {
		session, err := p.OpenSession(context.Background())
		if err != nil {
			t.Fatalf("open session: %v", err)
		}
		defer session.Close()

		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := session.Recv(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("recv with nothing to read = %v; want the context's deadline", err)
		}
	})

	t.Run("GracefulStop", func(t *testing.T) {
		started := time.Now()
		if err := p.Stop(context.Background(), stopGrace); err != nil {
			t.Fatalf("stop: %v", err)
		}
		waitExited(t, p, time.Second)
		if err := p.ExitErr(); err != nil {
			t.Errorf("exit after a graceful stop = %v; want a clean exit", err)
		}
		if elapsed := time.Since(started); elapsed >= stopGrace {
			t.Errorf("graceful stop took %s; want less than the grace of %s", elapsed, stopGrace)
		}
		if err := p.Health(context.Background()); !errors.Is(err, host.ErrExited) {
			t.Errorf("health after stop = %v; want ErrExited", err)
		}
		if _, err := p.OpenSession(context.Background()); !errors.Is(err, host.ErrExited) {
			t.Errorf("open session after stop = %v; want ErrExited", err)
		}
	})
}

func TestReadManifest(t *testing.T) {
	notes := plugintest.Build(t, plugintest.NotesPackage)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	manifest, err := host.ReadManifest(ctx, notes.Path, notes.SHA256)
	if err != nil {
		t.Fatalf("read manifest: %v", err)
	}
	if manifest.Name != "notes" {
		t.Errorf("name = %q; want notes", manifest.Name)
	}
	if manifest.Description == "" {
		t.Error("description is empty")
	}

	var schema map[string]any
	if err := json.Unmarshal(manifest.ConfigSchema, &schema); err != nil {
		t.Fatalf("config schema is not a JSON object: %v", err)
	}
	if schema["type"] != "object" {
		t.Errorf("config schema type = %v; want object", schema["type"])
	}
}

func TestLaunchChecksumMismatch(t *testing.T) {
	notes := plugintest.Build(t, plugintest.NotesPackage)
	wrong := bytes.Clone(notes.SHA256)
	wrong[0] ^= 0xff

	_, err := host.Launch(context.Background(), host.Spec{Path: notes.Path, SHA256: wrong})
	if !errors.Is(err, host.ErrChecksum) {
		t.Fatalf("launch with a wrong sha256 = %v; want ErrChecksum", err)
	}
	if !strings.Contains(err.Error(), "got ") || !strings.Contains(err.Error(), notes.Path) {
		t.Errorf("error %q does not name the binary and its actual sha256", err)
	}

	_, err = host.Launch(context.Background(), host.Spec{Path: notes.Path, SHA256: wrong[:4]})
	if !errors.Is(err, host.ErrChecksum) {
		t.Errorf("launch with a short sha256 = %v; want ErrChecksum", err)
	}
}

func TestLaunchHandshakeFailures(t *testing.T) {
	testPlugin := plugintest.Build(t, plugintest.TestPluginPackage)

	tests := []struct {
		name       string
		args       []string
		wantError  string
		wantStderr string
	}{
		{name: "StdoutNoise", args: []string{"-stdout-noise"}, wantError: "hello from a plugin that writes to stdout too early"},
		{name: "ExitBeforeHandshake", args: []string{"-exit-status", "3"}, wantStderr: "exiting before the handshake"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stderr := &lines{}
			started := time.Now()
			_, err := host.Launch(context.Background(), host.Spec{
				Path:         testPlugin.Path,
				SHA256:       testPlugin.SHA256,
				Args:         tt.args,
				Stderr:       stderr,
				StartTimeout: 5 * time.Second,
			})
			if !errors.Is(err, host.ErrHandshake) {
				t.Fatalf("launch = %v; want ErrHandshake", err)
			}
			if !strings.Contains(err.Error(), tt.wantError) {
				t.Errorf("error %q does not contain %q", err, tt.wantError)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.wantStderr)
			}
			if elapsed := time.Since(started); elapsed > 4*time.Second {
				t.Errorf("failed handshake took %s; want it reported without waiting for the start timeout", elapsed)
			}
		})
	}
}

func TestLaunchConfigRejected(t *testing.T) {
	testPlugin := plugintest.Build(t, plugintest.TestPluginPackage)

	_, err := host.Launch(context.Background(), host.Spec{
		Path:   testPlugin.Path,
		SHA256: testPlugin.SHA256,
		Config: json.RawMessage(`{"fail": "the answer must be 42"}`),
	})
	if !errors.Is(err, host.ErrConfigure) {
		t.Fatalf("launch = %v; want ErrConfigure", err)
	}
	if !strings.Contains(err.Error(), "the answer must be 42") {
		t.Errorf("error %q does not carry the plugin's message", err)
	}
}

func TestLaunchCancelled(t *testing.T) {
	testPlugin := plugintest.Build(t, plugintest.TestPluginPackage)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := host.Launch(ctx, host.Spec{Path: testPlugin.Path, SHA256: testPlugin.SHA256})
	if err == nil {
		t.Fatal("launch with a cancelled context succeeded")
	}
}

func TestPluginEnvironment(t *testing.T) {
	testPlugin := plugintest.Build(t, plugintest.TestPluginPackage)
	t.Setenv("NEXUS_HOST_ONLY_SECRET", "host secret")
	p := launch(t, host.Spec{
		Path:   testPlugin.Path,
		SHA256: testPlugin.SHA256,
		Env:    []string{"TESTPLUGIN_TOKEN=s3cret", "NEXUS_MCP_PLUGIN=override"},
	})
	cs := connect(t, p)

	tests := []struct {
		name        string
		wantPresent bool
		wantValue   string
	}{
		{name: "TESTPLUGIN_TOKEN", wantPresent: true, wantValue: "s3cret"},
		{name: "NEXUS_HOST_ONLY_SECRET", wantPresent: false},
		{name: "PATH", wantPresent: true, wantValue: os.Getenv("PATH")},
	}
	for _, tt := range tests {
		var got struct {
			Value   string `json:"value"`
			Present bool   `json:"present"`
		}
		callTool(t, cs, "getenv", map[string]any{"name": tt.name}, &got)
		if got.Present != tt.wantPresent || got.Value != tt.wantValue {
			t.Errorf("%s in plugin = %q (present %v); want %q (present %v)", tt.name, got.Value, got.Present, tt.wantValue, tt.wantPresent)
		}
	}
}
