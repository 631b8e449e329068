package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// MCPPlugin is a server plugin of the operator's catalog.
type MCPPlugin struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Description string `json:"description"`
	// ConfigSchema is the JSON Schema of a server's config, or null.
	ConfigSchema      json.RawMessage   `json:"config_schema"`
	Secrets           []MCPPluginSecret `json:"secrets"`
	FixedConfig       []string          `json:"fixed_config"`
	Available         bool              `json:"available"`
	UnavailableReason *string           `json:"unavailable_reason"`
}

// MCPPluginSecret is a secret that a plugin reads from its environment.
type MCPPluginSecret struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Required    bool   `json:"required,omitempty"`
}

// MCPServer is one of the caller's MCP servers.
type MCPServer struct {
	ID     string         `json:"id"`
	Name   string         `json:"name"`
	Plugin string         `json:"plugin"`
	Config map[string]any `json:"config"`
	// Secrets are the names of the secrets that are set.
	Secrets []string `json:"secrets"`
	// State is idle, starting, running, restarting, crash_loop or stopped.
	State     string     `json:"state"`
	Restarts  int        `json:"restarts"`
	LastError *string    `json:"last_error"`
	StartedAt *time.Time `json:"started_at"`
	// Endpoint is the path of the server's MCP endpoint; MCPEndpointURL
	// returns its full URL.
	Endpoint  string    `json:"endpoint"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// MCPServerCreate is a server to provision.
type MCPServerCreate struct {
	Name   string         `json:"name"`
	Plugin string         `json:"plugin"`
	Config map[string]any `json:"config,omitempty"`
	// Secrets are values by the names the plugin lists; they are stored
	// sealed and never returned.
	Secrets map[string]string `json:"secrets,omitempty"`
}

// MCPServerUpdate changes a server. A nil Name and an empty Config or
// Secrets leave that part as it is; Config, when set, replaces the whole
// config, and a nil value in Secrets removes that secret.
type MCPServerUpdate struct {
	Name    *string            `json:"name,omitempty"`
	Config  map[string]any     `json:"config,omitempty"`
	Secrets map[string]*string `json:"secrets,omitempty"`
}

// MCPLogLine is a line of a server's stderr (Source "stderr") or a record
// of its supervisor (Source "supervisor").
type MCPLogLine struct {
	Time   time.Time `json:"time"`
	Source string    `json:"source"`
	Line   string    `json:"line"`
}

// MCPLogs is the tail of a server's log, oldest first.
type MCPLogs struct {
	Lines []MCPLogLine `json:"lines"`
	// Dropped counts older lines that are no longer kept.
	Dropped int64 `json:"dropped"`
}

// MCPToken is a token of a server's MCP endpoint, without its value.
type MCPToken struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// MCPTokenCreated is a new token with its value, which is shown only once.
type MCPTokenCreated struct {
	MCPToken
	Token string `json:"token"`
}

func mcpServerPath(id string) string { return "/v1/mcp/servers/" + url.PathEscape(id) }

// MCPPlugins returns the catalog of server plugins.
func (c *Client) MCPPlugins(ctx context.Context) ([]MCPPlugin, error) {
	var plugins []MCPPlugin
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: "/v1/mcp/plugins"}, &plugins)
	return plugins, err
}

// CreateMCPServer provisions a server; the server starts it in the
// background. It is not retried after a 5xx, because a second request
// could provision a second server.
func (c *Client) CreateMCPServer(ctx context.Context, create MCPServerCreate) (MCPServer, error) {
	var server MCPServer
	err := c.Call(ctx, Request{Method: http.MethodPost, Path: "/v1/mcp/servers", Body: create}, &server)
	return server, err
}

// MCPServers lists the caller's servers, oldest first.
func (c *Client) MCPServers(ctx context.Context) ([]MCPServer, error) {
	var servers []MCPServer
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: "/v1/mcp/servers"}, &servers)
	return servers, err
}

// MCPServer returns one server with its state.
func (c *Client) MCPServer(ctx context.Context, id string) (MCPServer, error) {
	var server MCPServer
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: mcpServerPath(id)}, &server)
	return server, err
}

// UpdateMCPServer renames or reconfigures a server.
func (c *Client) UpdateMCPServer(ctx context.Context, id string, update MCPServerUpdate) (MCPServer, error) {
	var server MCPServer
	err := c.Call(ctx, Request{Method: http.MethodPatch, Path: mcpServerPath(id), Body: update}, &server)
	return server, err
}

// DeleteMCPServer stops and removes a server with its tokens.
func (c *Client) DeleteMCPServer(ctx context.Context, id string) error {
	return c.Call(ctx, Request{Method: http.MethodDelete, Path: mcpServerPath(id)}, nil)
}

// RestartMCPServer restarts a server and returns its state once the start
// succeeded or failed. A restart is safe to repeat, so it is retried like
// an idempotent request.
func (c *Client) RestartMCPServer(ctx context.Context, id string) (MCPServer, error) {
	var server MCPServer
	err := c.Call(ctx, Request{Method: http.MethodPost, Path: mcpServerPath(id) + "/restart", safeToRepeat: true}, &server)
	return server, err
}

// MCPServerLogs returns the newest tail lines of a server's log (0 for the
// server's default of 200).
func (c *Client) MCPServerLogs(ctx context.Context, id string, tail int) (MCPLogs, error) {
	path := mcpServerPath(id) + "/logs"
	if tail > 0 {
		path += "?tail=" + strconv.Itoa(tail)
	}
	var logs MCPLogs
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: path}, &logs)
	return logs, err
}

// CreateMCPToken creates a token for the server's MCP endpoint only. The
// value is in the result and is not shown again.
func (c *Client) CreateMCPToken(ctx context.Context, serverID, name string) (MCPTokenCreated, error) {
	req := Request{Method: http.MethodPost, Path: mcpServerPath(serverID) + "/tokens"}
	if name != "" {
		req.Body = map[string]string{"name": name}
	}
	var token MCPTokenCreated
	err := c.Call(ctx, req, &token)
	return token, err
}

// MCPTokens lists a server's tokens without their values.
func (c *Client) MCPTokens(ctx context.Context, serverID string) ([]MCPToken, error) {
	var tokens []MCPToken
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: mcpServerPath(serverID) + "/tokens"}, &tokens)
	return tokens, err
}

// RevokeMCPToken revokes a token; its next request gets 401.
func (c *Client) RevokeMCPToken(ctx context.Context, serverID, tokenID string) error {
	return c.Call(ctx, Request{Method: http.MethodDelete, Path: mcpServerPath(serverID) + "/tokens/" + url.PathEscape(tokenID)}, nil)
}

// MCPEndpointURL returns the full URL of a server's MCP Streamable HTTP
// endpoint, for an MCP client.
func (c *Client) MCPEndpointURL(serverID string) string {
	return c.opts.BaseURL + mcpServerPath(serverID) + "/mcp"
}
