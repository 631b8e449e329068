// Package sdk turns an MCP server into a nexus plugin with one call.
//
// A plugin is a program whose main builds an *mcp.Server with
// github.com/modelcontextprotocol/go-sdk and passes it to Serve with a
// Manifest. Serve runs the go-plugin handshake, relays each MCP session the
// host opens to the server, serves the gRPC health service, shuts down
// gracefully on the host's request, and exits when the host process dies,
// killing every process the plugin started.
//
//	func main() {
//		server := mcp.NewServer(&mcp.Implementation{Name: "hello", Version: "1.0.0"}, nil)
//		mcp.AddTool(server, &mcp.Tool{Name: "greet"}, greet)
//		sdk.Serve(server, sdk.Manifest{Name: "hello", Version: "1.0.0"})
//	}
//
// A plugin must write nothing to stdout before Serve: the host reads the
// handshake from the first line of stdout. After the handshake, stdout and
// stderr go to the server's log buffer in nexus; Logger writes there too.
// Secrets arrive as environment variables named in Manifest.Secrets.
package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nexus-suite/nexus/plugins/contract"
)

// Manifest describes the plugin to nexus: name (lowercase letters, digits and
// dashes), version, description, the JSON Schema of its config and the
// secrets it reads from its environment.
type Manifest = contract.Manifest

// SecretSpec is one secret the plugin reads from its environment.
type SecretSpec = contract.SecretSpec

// Serve serves server as a nexus MCP plugin. Every session the host opens
// gets its own session on server. The server's config is accepted and
// ignored; use ServeConfigured for a server built from its config.
//
// Serve returns when the plugin has shut down, and main should return then.
// It exits the process with status 1 when the manifest is invalid or the
// binary was not started by nexus.
func Serve(server *mcp.Server, manifest Manifest) {
	ServeConfigured(manifest, func(context.Context, json.RawMessage) (*mcp.Server, error) {
		return server, nil
	})
}

// ServeConfigured serves the MCP server that newServer builds from the
// server's config, which nexus has validated against
// Manifest.ConfigSchema. newServer runs once, before the first session; an
// error from it fails the start with its message.
func ServeConfigured(manifest Manifest, newServer func(ctx context.Context, config json.RawMessage) (*mcp.Server, error)) {
	ServeBackend(manifest, &mcpBackend{newServer: newServer})
}

// Backend is the plugin side of the session relay for a plugin that does not
// run an *mcp.Server in its process, such as a bridge to another process.
// Its methods may be called concurrently.
type Backend interface {
	// Configure receives the server's config before any session opens. An
	// error fails the start with its message.
	Configure(ctx context.Context, config json.RawMessage) error
	// Open opens one MCP session. ctx ends when the session ends.
	Open(ctx context.Context) (Conn, error)
}

// Conn is one session opened by a Backend. Each message is one JSON-RPC
// message encoded as JSON.
type Conn interface {
	// Read returns the next message for the host, or io.EOF when the session
	// ended.
	Read(ctx context.Context) ([]byte, error)
	// Write passes one message from the host.
	Write(ctx context.Context, message []byte) error
	// Close ends the session and releases what it holds. Read and Write
	// return errors afterwards.
	Close() error
}

// ServeBackend serves backend as a nexus MCP plugin. It returns and exits
// like Serve.
func ServeBackend(manifest Manifest, backend Backend) {
	if err := manifest.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "invalid plugin manifest: %v\n", err)
		os.Exit(1)
	}

	newPluginServer(manifest, backend).serve()
}

// Logger returns a logger that writes text records to the plugin's stderr,
// which nexus keeps in the server's log buffer (GET /v1/mcp/servers/{id}/logs).
// Never log a secret with it: the server's owner can read those logs.
func Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr{}, nil))
}

// stderr writes to the current os.Stderr, which go-plugin replaces with a
// pipe to the host once the handshake ran.
type stderr struct{}

func (stderr) Write(data []byte) (int, error) {
	return os.Stderr.Write(data)
}

var _ io.Writer = stderr{}
