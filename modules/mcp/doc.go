// Package mcp is the MCP Hosting API section: private MCP servers run as
// supervised go-plugin subprocesses and reached over the Streamable HTTP
// transport.
package mcp
