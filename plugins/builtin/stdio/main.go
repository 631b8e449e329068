// Command stdio is the built-in nexus plugin that hosts an existing stdio MCP
// server unchanged: for each MCP session it starts the configured command
// and relays newline-delimited JSON-RPC messages between the session and the
// command's stdin and stdout. The command's stderr goes to the server's log
// buffer in nexus.
//
// Config:
//
//	{"command": "node", "args": ["/opt/mcp/server-memory/dist/index.js"], "env": {"DEBUG": "1"}, "dir": "/opt/mcp"}
//
// The command gets the plugin's environment, which holds the server's
// secrets, plus config.env.
package main

import (
	"encoding/json"

	"github.com/nexus-suite/nexus/plugins/sdk"
)

// version is the bridge's version, reported in its manifest.
const version = "1.0.0"

// configSchema is the JSON Schema of a bridged server's config.
const configSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "command": {"type": "string", "minLength": 1, "description": "Program that runs the stdio MCP server: a path, or a name looked up in PATH."},
    "args": {"type": "array", "items": {"type": "string"}, "description": "Arguments passed to the command."},
    "env": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Environment variables added for the command."},
    "dir": {"type": "string", "description": "Working directory of the command; the plugin's own when empty."}
  },
  "required": ["command"],
  "additionalProperties": false
}`

func main() {
	sdk.ServeBackend(sdk.Manifest{
		Name:         "stdio",
		Version:      version,
		Description:  "Runs a stdio MCP server command for each session and relays its JSON-RPC messages.",
		ConfigSchema: json.RawMessage(configSchema),
	}, &bridge{})
}
