package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/plugins/host"
)

// Limits of the provisioning routes.
const (
	maxServerNameLength = 64
	maxTokenNameLength  = 64
	defaultLogTail      = 200
)

// pluginView is one catalog plugin as GET /v1/mcp/plugins shows it.
type pluginView struct {
	Name         string            `json:"name"`
	Version      string            `json:"version"`
	Description  string            `json:"description"`
	ConfigSchema json.RawMessage   `json:"config_schema"`
	Secrets      []host.SecretSpec `json:"secrets"`
	// FixedConfig lists the config keys that the operator sets for every server.
	FixedConfig []string `json:"fixed_config"`
	Available   bool     `json:"available"`
	// Unavailable is the reason that servers of the plugin cannot start,
	// without host paths.
	Unavailable *string `json:"unavailable_reason"`
}

func (m *Module) listPlugins(r *edge.Request) error {
	views := make([]pluginView, 0, len(m.catalog.names))
	for _, name := range m.catalog.names {
		plugin := m.catalog.plugins[name]
		view := pluginView{
			Name: name, Version: plugin.manifest.Version, Description: plugin.manifest.Description,
			ConfigSchema: plugin.manifest.ConfigSchema, Secrets: plugin.manifest.Secrets,
			FixedConfig: slices.Sorted(maps.Keys(plugin.entry.Config)), Available: plugin.err == nil,
		}
		if view.FixedConfig == nil {
			view.FixedConfig = []string{}
		}
		if len(view.ConfigSchema) == 0 {
			view.ConfigSchema = json.RawMessage("null")
		}
		if view.Secrets == nil {
			view.Secrets = []host.SecretSpec{}
		}
		if plugin.err != nil {
			reason := unavailableReason(name, plugin.err)
			view.Unavailable = &reason
		}
		views = append(views, view)
	}
	return r.JSON(http.StatusOK, views)
}

// unavailableReason describes why a plugin is unavailable without the host
// paths and digests of the full error, which operators find in the log.
func unavailableReason(name string, err error) string {
	switch {
	case errors.Is(err, host.ErrChecksum):
		return "the binary of plugin " + name + " does not match the sha256 in the catalog"
	case errors.Is(err, os.ErrNotExist):
		return "the binary of plugin " + name + " is missing"
	case errors.Is(err, host.ErrHandshake):
		return "plugin " + name + " failed the plugin handshake"
	default:
		return "the manifest of plugin " + name + " could not be read"
	}
}

// serverView is a server as the provisioning routes return it. Secret
// values are never returned, only the names of the secrets that are set.
type serverView struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Plugin    string          `json:"plugin"`
	Config    json.RawMessage `json:"config"`
	Secrets   []string        `json:"secrets"`
	State     string          `json:"state"`
	Restarts  int             `json:"restarts"`
	LastError *string         `json:"last_error"`
	StartedAt *time.Time      `json:"started_at"`
	// Endpoint is the path of the server's MCP endpoint.
	Endpoint  string    `json:"endpoint"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (m *Module) view(row serverRow) serverView {
	view := serverView{
		ID: row.ID, Name: row.Name, Plugin: row.Plugin, Config: row.Config, Secrets: row.SecretNames,
		State: string(stateIdle), Endpoint: "/v1/mcp/servers/" + row.ID + "/mcp",
		CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt,
	}
	if view.Secrets == nil {
		view.Secrets = []string{}
	}
	if srv := m.servers.known(row.ID); srv != nil {
		status := srv.status()
		view.State, view.Restarts = string(status.State), status.Restarts
		if status.LastError != "" {
			view.LastError = &status.LastError
		}
		if status.State == stateRunning {
			started := status.StartedAt.UTC()
			view.StartedAt = &started
		}
	}
	return view
}

// createRequest is the body of POST /v1/mcp/servers.
type createRequest struct {
	Name    string            `json:"name"`
	Plugin  string            `json:"plugin"`
	Config  json.RawMessage   `json:"config"`
	Secrets map[string]string `json:"secrets"`
}

// createServer provisions a server and starts it in the background. The
// tier's mcp_servers limit is checked in the transaction of the insert.
func (m *Module) createServer(r *edge.Request) error {
	var req createRequest
	if err := r.Decode(&req); err != nil {
		return err
	}

	name, err := checkName(req.Name, "name", maxServerNameLength)
	if err != nil {
		return err
	}
	plugin, err := m.availablePlugin(req.Plugin)
	if err != nil {
		return err
	}
	config, err := m.userConfig(plugin, req.Config)
	if err != nil {
		return err
	}
	if err := plugin.checkSecrets(req.Secrets); err != nil {
		return configProblem400(err)
	}

	id, err := newID("mcs_")
	if err != nil {
		return err
	}
	sealed, err := sealSecrets(m.host.MasterKey, id, req.Secrets)
	if err != nil {
		return err
	}
	now := m.host.Clock.Now().UTC().Truncate(time.Millisecond)
	row := serverRow{
		ID: id, UserID: r.Principal.UserID, Plugin: req.Plugin, Name: name, Config: config,
		SecretsSealed: sealed, SecretNames: slices.Sorted(maps.Keys(req.Secrets)), CreatedAt: now, UpdatedAt: now,
	}
	limit := r.Principal.Entitlements.Limits.MCPServers
	err = m.store.createServer(r.Context(), row, limit)
	var quota *quotaError
	switch {
	case errors.As(err, &quota):
		return edge.NewError(edge.CodeQuotaExceeded,
			fmt.Sprintf("your tier allows %d MCP servers and %d are in use; delete one or upgrade", quota.limit, quota.used),
			map[string]any{"scope": "mcp_servers", "used": quota.used, "limit": quota.limit, "requested": 1})
	case errors.Is(err, errNameTaken):
		return edge.Conflict(fmt.Sprintf("you already have an MCP server named %q", name))
	case err != nil:
		return err
	}

	srv, err := m.servers.add(row.ID, row.UserID, row.Plugin)
	if err != nil {
		return err
	}
	if err := m.servers.ask(r.Context(), srv, func(reply chan error) any { return &startServer{reply: reply} }); err != nil {
		return err
	}
	r.Logger().Info("mcp server created", slog.String("server_id", id), slog.String("plugin", req.Plugin))
	return r.JSON(http.StatusCreated, m.view(row))
}

func (m *Module) listServers(r *edge.Request) error {
	rows, err := m.store.servers(r.Context(), r.Principal.UserID)
	if err != nil {
		return err
	}
	views := make([]serverView, 0, len(rows))
	for _, row := range rows {
		views = append(views, m.view(row))
	}
	return r.JSON(http.StatusOK, views)
}

func (m *Module) getServer(r *edge.Request) error {
	row, err := m.ownServer(r)
	if err != nil {
		return err
	}
	return r.JSON(http.StatusOK, m.view(row))
}

// updateRequest is the body of PATCH /v1/mcp/servers/{id}. Config replaces
// the whole config; a secret set to null is removed, and secrets not named
// keep their values.
type updateRequest struct {
	Name    *string            `json:"name"`
	Config  json.RawMessage    `json:"config"`
	Secrets map[string]*string `json:"secrets"`
}

// updateServer renames or reconfigures a server. A changed config or
// secret restarts a server that runs; an idle one reads it at its next start.
func (m *Module) updateServer(r *edge.Request) error {
	var req updateRequest
	if err := r.Decode(&req); err != nil {
		return err
	}
	row, err := m.ownServer(r)
	if err != nil {
		return err
	}

	if req.Name != nil {
		if row.Name, err = checkName(*req.Name, "name", maxServerNameLength); err != nil {
			return err
		}
	}
	reconfigured := req.Config != nil || req.Secrets != nil
	if reconfigured {
		if err := m.applyConfig(&row, req); err != nil {
			return err
		}
	}

	row.UpdatedAt = m.host.Clock.Now().UTC().Truncate(time.Millisecond)
	err = m.store.updateServer(r.Context(), row)
	switch {
	case errors.Is(err, errNameTaken):
		return edge.Conflict(fmt.Sprintf("you already have an MCP server named %q", row.Name))
	case errors.Is(err, errNotFound):
		return serverNotFound()
	case err != nil:
		return err
	}

	if srv := m.servers.known(row.ID); srv != nil && reconfigured {
		// The response waits until the old process is gone, so no request
		// after it reaches the process with the old config.
		ctx, cancel := context.WithTimeout(context.Background(), m.opts.StopGrace+2*stopKillWait)
		err := m.servers.ask(ctx, srv, func(reply chan error) any { return &reconfigure{reply: reply} })
		cancel()
		if err != nil {
			r.Logger().Warn("restart of a reconfigured mcp server failed", slog.String("server_id", row.ID), slog.String("error", err.Error()))
		}
	}
	r.Logger().Info("mcp server updated", slog.String("server_id", row.ID), slog.Bool("reconfigured", reconfigured))
	return r.JSON(http.StatusOK, m.view(row))
}

// applyConfig validates the new config and secrets of req into row.
func (m *Module) applyConfig(row *serverRow, req updateRequest) error {
	plugin, err := m.availablePlugin(row.Plugin)
	if err != nil {
		return err
	}
	if req.Config != nil {
		if row.Config, err = m.userConfig(plugin, req.Config); err != nil {
			return err
		}
	}
	if req.Secrets == nil {
		return nil
	}

	secrets, err := openSecrets(m.host.MasterKey, row.ID, row.SecretsSealed)
	if err != nil {
		return err
	}
	for name, value := range req.Secrets {
		if value == nil {
			delete(secrets, name)
			continue
		}
		secrets[name] = *value
	}
	if err := plugin.checkSecrets(secrets); err != nil {
		return configProblem400(err)
	}
	if row.SecretsSealed, err = sealSecrets(m.host.MasterKey, row.ID, secrets); err != nil {
		return err
	}
	row.SecretNames = slices.Sorted(maps.Keys(secrets))
	return nil
}

// deleteServer stops the server's process, its children included, and
// removes the server with its tokens.
func (m *Module) deleteServer(r *edge.Request) error {
	id := r.Param("id")
	err := m.store.deleteServer(r.Context(), r.Principal.UserID, id)
	if errors.Is(err, errNotFound) {
		return serverNotFound()
	}
	if err != nil {
		return err
	}

	m.removeServer(id)
	r.Logger().Info("mcp server deleted", slog.String("server_id", id))
	return r.JSON(http.StatusOK, map[string]any{"id": id, "deleted": true})
}

// restartServer starts the server's process again, clearing a crash_loop,
// and returns the server once the start succeeded or failed.
func (m *Module) restartServer(r *edge.Request) error {
	row, err := m.ownServer(r)
	if err != nil {
		return err
	}
	srv, err := m.servers.add(row.ID, row.UserID, row.Plugin)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), m.opts.StopGrace+2*stopKillWait+m.opts.StartTimeout)
	defer cancel()
	err = m.servers.ask(ctx, srv, func(reply chan error) any { return &restartServer{reply: reply} })
	if err != nil {
		r.Logger().Warn("mcp server restart failed", slog.String("server_id", row.ID), slog.String("error", err.Error()))
	}
	return r.JSON(http.StatusOK, m.view(row))
}

// logsView is the body of GET /v1/mcp/servers/{id}/logs.
type logsView struct {
	Lines []logLine `json:"lines"`
	// Dropped counts older lines that are no longer kept.
	Dropped int64 `json:"dropped"`
}

func (m *Module) serverLogs(r *edge.Request) error {
	row, err := m.ownServer(r)
	if err != nil {
		return err
	}
	tail := defaultLogTail
	if raw := r.Ctx.QueryArgs().Peek("tail"); len(raw) > 0 {
		tail, err = strconv.Atoi(string(raw))
		if err != nil || tail < 1 || tail > maxLogLines {
			return edge.Validation("tail", fmt.Sprintf("tail must be a whole number between 1 and %d", maxLogLines))
		}
	}

	view := logsView{Lines: []logLine{}}
	if srv := m.servers.known(row.ID); srv != nil {
		view.Lines, view.Dropped = srv.logs.tail(tail)
	}
	return r.JSON(http.StatusOK, view)
}

// ownServer returns the server of the route's id; another user's server
// is 404, as one that does not exist.
func (m *Module) ownServer(r *edge.Request) (serverRow, error) {
	row, err := m.store.server(r.Context(), r.Principal.UserID, r.Param("id"))
	if errors.Is(err, errNotFound) {
		return serverRow{}, serverNotFound()
	}
	return row, err
}

// availablePlugin returns the catalog plugin called name, or a 400 when
// there is none or it is unavailable.
func (m *Module) availablePlugin(name string) (*catalogPlugin, error) {
	plugin := m.catalog.plugin(name)
	if plugin == nil {
		err := edge.Validation("plugin", fmt.Sprintf("no plugin %q in the catalog; GET /v1/mcp/plugins lists them", name))
		err.Details["allowed"] = m.catalog.names
		return nil, err
	}
	if plugin.err != nil {
		return nil, edge.Validation("plugin", "plugin "+name+" is unavailable: "+unavailableReason(name, plugin.err))
	}
	return plugin, nil
}

// userConfig checks the user's config against the plugin and returns it
// as stored: compact, without the catalog's fixed keys.
func (m *Module) userConfig(plugin *catalogPlugin, config json.RawMessage) (json.RawMessage, error) {
	if _, err := plugin.resolveConfig(config); err != nil {
		return nil, configProblem400(err)
	}
	if len(config) == 0 || string(config) == "null" {
		return json.RawMessage("{}"), nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(config, &fields); err != nil {
		return nil, edge.Validation("config", "config must be a JSON object")
	}
	compact, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return compact, nil
}

// configProblem400 turns a configError into a 400; other errors pass.
func configProblem400(err error) error {
	var invalid *configError
	if !errors.As(err, &invalid) {
		return err
	}
	apiErr := edge.Validation(invalid.field, invalid.message)
	if len(invalid.problems) > 0 {
		apiErr.Details["problems"] = invalid.problems
	}
	return apiErr
}

// checkName trims a display name and requires 1 to limit characters
// without control characters.
func checkName(name, field string, limit int) (string, error) {
	name = strings.TrimSpace(name)
	count := utf8.RuneCountInString(name)
	if count == 0 || count > limit || strings.ContainsFunc(name, unicode.IsControl) || !utf8.ValidString(name) {
		return "", edge.Validation(field, fmt.Sprintf("%s must be 1 to %d characters without control characters", field, limit))
	}
	return name, nil
}
