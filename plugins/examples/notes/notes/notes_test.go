package notes_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nexus-suite/nexus/plugins/examples/notes/notes"
)

// connect runs a notes server in process and returns a client session on it.
func connect(t *testing.T, config string) *mcp.ClientSession {
	t.Helper()

	ctx := context.Background()
	server, err := notes.NewServer(ctx, json.RawMessage(config))
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	serverTransport, clientTransport := mcp.NewInMemoryTransports()
	if _, err := server.Connect(ctx, serverTransport, nil); err != nil {
		t.Fatalf("connect server: %v", err)
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "notes-test", Version: "1.0.0"}, nil)
	session, err := client.Connect(ctx, clientTransport, nil)
	if err != nil {
		t.Fatalf("connect client: %v", err)
	}
	t.Cleanup(func() { session.Close() })
	return session
}

func call(t *testing.T, session *mcp.ClientSession, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	result, err := session.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	return result
}

func text(result *mcp.CallToolResult) string {
	var parts []string
	for _, content := range result.Content {
		if t, ok := content.(*mcp.TextContent); ok {
			parts = append(parts, t.Text)
		}
	}
	return strings.Join(parts, " ")
}

func TestNewServerConfig(t *testing.T) {
	tests := []struct {
		name    string
		config  string
		wantErr string
	}{
		{name: "OKEmpty", config: ``},
		{name: "OKObject", config: `{"title": "Work", "max_notes": 5}`},
		{name: "ErrMaxNotes", config: `{"max_notes": 0}`, wantErr: "max_notes must be at least 1"},
		{name: "ErrNotObject", config: `[1]`, wantErr: "invalid notes config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := notes.NewServer(context.Background(), json.RawMessage(tt.config))
			if tt.wantErr == "" && err != nil {
				t.Fatalf("new server: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("new server = %v; want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNotesTools(t *testing.T) {
	session := connect(t, `{"max_notes": 2}`)

	if result := call(t, session, "add_note", map[string]any{"title": "  "}); !result.IsError {
		t.Error("add_note with a blank title succeeded")
	}
	call(t, session, "add_note", map[string]any{"title": "Alpha", "body": "first"})
	call(t, session, "add_note", map[string]any{"title": "Beta", "body": "second"})
	if result := call(t, session, "add_note", map[string]any{"title": "Gamma"}); !result.IsError || !strings.Contains(text(result), "at most 2") {
		t.Errorf("add_note over the limit = %q; want a tool error naming it", text(result))
	}

	found := call(t, session, "search_notes", map[string]any{"query": "SECOND"})
	if encoded, _ := json.Marshal(found.StructuredContent); !strings.Contains(string(encoded), `"title":"Beta"`) || strings.Contains(string(encoded), "Alpha") {
		t.Errorf("search_notes = %s; want only Beta", encoded)
	}

	call(t, session, "delete_note", map[string]any{"id": 1})
	if result := call(t, session, "delete_note", map[string]any{"id": 1}); !result.IsError || !strings.Contains(text(result), "not found") {
		t.Errorf("delete_note of a deleted note = %q; want not found", text(result))
	}
}

func TestNotesResources(t *testing.T) {
	session := connect(t, ``)
	ctx := context.Background()
	call(t, session, "add_note", map[string]any{"title": "Plan", "body": "ship it"})

	note, err := session.ReadResource(ctx, &mcp.ReadResourceParams{URI: "note://1"})
	if err != nil {
		t.Fatalf("read note://1: %v", err)
	}
	if got := note.Contents[0].Text; got != "# Plan\n\nship it\n" {
		t.Errorf("note://1 = %q; want the note as Markdown", got)
	}

	index, err := session.ReadResource(ctx, &mcp.ReadResourceParams{URI: "notes://index"})
	if err != nil {
		t.Fatalf("read notes://index: %v", err)
	}
	if !strings.Contains(index.Contents[0].Text, `"uri":"note://1"`) {
		t.Errorf("notes://index = %s; want note://1 listed", index.Contents[0].Text)
	}

	if _, err := session.ReadResource(ctx, &mcp.ReadResourceParams{URI: "note://99"}); err == nil {
		t.Error("read note://99 succeeded; want resource not found")
	}
	templates, err := session.ListResourceTemplates(ctx, nil)
	if err != nil || len(templates.ResourceTemplates) != 1 || templates.ResourceTemplates[0].URITemplate != "note://{id}" {
		t.Errorf("resource templates = %+v, %v; want note://{id}", templates, err)
	}
}
