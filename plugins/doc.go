// Package plugins is where the go-plugin contract for hosted MCP server
// plugins will live, with plugins/sdk for plugin authors and the built-in
// plugins. It holds no code yet: MCP hosting is not built.
package plugins
