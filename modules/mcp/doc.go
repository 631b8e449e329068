// Package mcp is the MCP Hosting API section: private MCP servers that run
// as supervised go-plugin subprocesses and that clients reach over the MCP
// Streamable HTTP transport, for users whose tier grants mcp_hosting.
//
// Operators list plugin binaries in modules.mcp.catalog with their sha256.
// At provision the module reads each plugin's manifest through
// plugins/host. A plugin that fails (missing binary, wrong sha256, failed
// handshake) is marked unavailable and logged, and the others keep working.
// The checksum is checked again before every start.
//
// Users provision servers of catalog plugins with a config, validated
// against the plugin's JSON Schema, and secrets, sealed under the master
// key and passed to the process in its environment. The tier's mcp_servers
// limit caps the servers per user.
//
// Each server has a supervisor actor (supervisor.go) that owns its plugin
// process. It starts the process on the first MCP request and checks its
// health on an interval. It restarts it after a crash with capped
// exponential backoff, and holds it in crash_loop after too many restarts
// in a window. It stops it after an idle period and keeps a ring buffer of
// its stderr. Every timer runs on the injected clock.
//
// The MCP endpoint (endpoint.go, stream.go) speaks the Streamable HTTP
// transport on fasthttp: initialize opens an MCP session, bound to its
// user and server, on a gRPC session stream of the process, and JSON-RPC
// messages are relayed both ways without being parsed beyond their id and
// method. Callers authenticate with the owner's access token or with a
// per-server token, which the module checks through edge.Route.Credentials.
package mcp
