// Package plugins contains the plugin side of MCP server hosting: private MCP
// servers run as go-plugin subprocesses that nexus supervises.
//
//   - contract: the handshake, manifest and gRPC service between nexus and a plugin
//   - host: the nexus side, which launches one plugin process and relays its sessions
//   - sdk: one call for plugin authors to serve an *mcp.Server of the official Go SDK
//   - builtin/stdio: the stdio bridge, which hosts an existing stdio MCP server command
//   - examples/notes: an example plugin with tools and resources
//   - plugintest: helpers for tests that run real plugin processes
//
// README.md in this folder walks a plugin author from an empty folder to a
// hosted server.
package plugins
