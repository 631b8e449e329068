// Package notes is the MCP server of the example notes plugin: a notebook
// with tools to add, search and delete notes, an index resource, and each
// note as a resource at note://{id}.
//
// Notes live in the process's memory and are shared by every session of one
// server, so they are lost when nexus restarts or idles the server.
package notes

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nexus-suite/nexus/plugins/sdk"
)

// Version is the plugin's version, reported in its manifest and MCP
// implementation info.
const Version = "1.0.0"

// configSchema is the JSON Schema of a notes server's config.
const configSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "title": {"type": "string", "maxLength": 100, "description": "Name of the notebook shown to clients."},
    "max_notes": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100, "description": "Notes kept at most; adding more fails."}
  },
  "additionalProperties": false
}`

// defaultMaxNotes applies when the config sets no max_notes.
const defaultMaxNotes = 100

// Config is a notes server's config.
type Config struct {
	Title    string `json:"title"`
	MaxNotes int    `json:"max_notes"`
}

// Manifest returns the plugin's manifest.
func Manifest() sdk.Manifest {
	return sdk.Manifest{
		Name:         "notes",
		Version:      Version,
		Description:  "A notebook: tools to add, search and delete notes, and each note as a resource.",
		ConfigSchema: json.RawMessage(configSchema),
	}
}

// NewServer builds the MCP server from a server's config, a JSON object as
// configSchema describes; empty means the defaults.
func NewServer(_ context.Context, raw json.RawMessage) (*mcp.Server, error) {
	cfg := Config{MaxNotes: defaultMaxNotes}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, fmt.Errorf("invalid notes config: %w", err)
		}
	}
	if cfg.MaxNotes < 1 {
		return nil, fmt.Errorf("invalid notes config: max_notes must be at least 1, got %d", cfg.MaxNotes)
	}
	if cfg.Title == "" {
		cfg.Title = "Notes"
	}

	server := mcp.NewServer(&mcp.Implementation{Name: "notes", Title: cfg.Title, Version: Version}, &mcp.ServerOptions{
		Instructions: "Keep short notes for the user: add_note stores one, search_notes finds them, and note://{id} reads one.",
	})
	book := newNotebook(cfg.MaxNotes)
	addTools(server, book)
	addResources(server, book)
	return server, nil
}
