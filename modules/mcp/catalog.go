package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/nexus-suite/nexus/plugins/host"
)

// Bounds of the secrets of one server.
const (
	maxSecretValueBytes = 8 << 10
	maxConfigBytes      = 256 << 10
)

// catalog is the set of plugins that the operator installed, with the
// manifest that each binary reported at provision.
//
// A plugin whose manifest cannot be read, because its binary is missing,
// does not match its sha256 or fails the handshake, is marked unavailable
// with the error. The module serves the other plugins, so one broken binary
// does not take MCP hosting down for every user. Its servers fail to start
// with the same error, and the module's health probe reports it, so /status
// shows MCP hosting as degraded until the operator fixes the entry.
type catalog struct {
	plugins map[string]*catalogPlugin
	// names lists the plugins in config order.
	names []string
}

// catalogPlugin is one catalog entry with what provision learned of it.
type catalogPlugin struct {
	entry    catalogEntry
	checksum []byte
	manifest host.Manifest
	// schema validates configs; nil when the plugin takes no config schema.
	schema *jsonschema.Schema
	// err is the cause of the plugin's unavailability, or nil when it is available.
	err error
}

// loadCatalog reads the manifest of every entry at once, each bounded by
// timeout.
func loadCatalog(ctx context.Context, entries []catalogEntry, launch launcher, timeout timeoutFunc, logger *slog.Logger) *catalog {
	c := &catalog{plugins: make(map[string]*catalogPlugin, len(entries))}
	var wg sync.WaitGroup
	var mu sync.Mutex

	for _, entry := range entries {
		c.names = append(c.names, entry.Name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			plugin := loadPlugin(ctx, entry, launch, timeout)
			mu.Lock()
			c.plugins[entry.Name] = plugin
			mu.Unlock()
		}()
	}
	wg.Wait()

	for _, name := range c.names {
		plugin := c.plugins[name]
		if plugin.err != nil {
			logger.Error("mcp plugin unavailable", slog.String("plugin", name), slog.String("path", plugin.entry.Path),
				slog.String("error", plugin.err.Error()))
			continue
		}
		logger.Info("mcp plugin loaded", slog.String("plugin", name), slog.String("version", plugin.manifest.Version))
	}
	return c
}

// timeoutFunc returns a context bounded by the start timeout.
type timeoutFunc func(ctx context.Context) (context.Context, context.CancelFunc)

func loadPlugin(ctx context.Context, entry catalogEntry, launch launcher, timeout timeoutFunc) *catalogPlugin {
	plugin := &catalogPlugin{entry: entry}
	checksum, err := entry.checksum()
	if err != nil {
		plugin.err = err
		return plugin
	}
	plugin.checksum = checksum

	readCtx, cancel := timeout(ctx)
	defer cancel()
	manifest, err := launch.ReadManifest(readCtx, entry.Path, checksum)
	if err != nil {
		plugin.err = fmt.Errorf("plugin %s: read manifest: %w", entry.Name, err)
		return plugin
	}
	plugin.manifest = manifest

	if len(manifest.ConfigSchema) > 0 {
		schema, err := compileSchema(entry.Name, manifest.ConfigSchema)
		if err != nil {
			plugin.err = fmt.Errorf("plugin %s: config schema: %w", entry.Name, err)
			return plugin
		}
		plugin.schema = schema
	}
	for key := range entry.Config {
		if secretSpec(manifest, key) != nil {
			plugin.err = fmt.Errorf("plugin %s: catalog config key %q is the name of a secret", entry.Name, key)
			return plugin
		}
	}
	return plugin
}

// compileSchema compiles a JSON Schema without loading anything it refers
// to from files or the network.
func compileSchema(name string, raw json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	compiler := jsonschema.NewCompiler()
	compiler.DefaultDraft(jsonschema.Draft2020)
	compiler.UseLoader(jsonschema.SchemeURLLoader{})
	location := "urn:nexus:mcp-plugin:" + name
	if err := compiler.AddResource(location, doc); err != nil {
		return nil, err
	}
	return compiler.Compile(location)
}

// plugin returns the named plugin, or nil when the catalog has none.
func (c *catalog) plugin(name string) *catalogPlugin {
	if c == nil {
		return nil
	}
	return c.plugins[name]
}

// unavailable returns the error of every plugin that is not available.
func (c *catalog) unavailable() []error {
	if c == nil {
		return nil
	}
	var errs []error
	for _, name := range c.names {
		if err := c.plugins[name].err; err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// configProblem is one way a config fails its plugin's schema.
type configProblem struct {
	// Path is the JSON pointer of the value, such as /args/0; "" is the whole config.
	Path    string `json:"path"`
	Message string `json:"message"`
}

// configError is a config that the plugin's schema or the catalog rejects.
type configError struct {
	field    string
	message  string
	problems []configProblem
}

func (e *configError) Error() string { return e.message }

// resolveConfig checks a user's config and returns the config that the
// plugin receives: the user's keys with the catalog's fixed keys over them,
// valid under the plugin's schema. A nil user config is an empty object.
func (p *catalogPlugin) resolveConfig(user json.RawMessage) (json.RawMessage, error) {
	if len(user) == 0 {
		user = json.RawMessage("{}")
	}
	if len(user) > maxConfigBytes {
		return nil, &configError{field: "config", message: fmt.Sprintf("config is larger than %d bytes", maxConfigBytes)}
	}

	var fields map[string]any
	decoder := json.NewDecoder(bytes.NewReader(user))
	decoder.UseNumber()
	if err := decoder.Decode(&fields); err != nil || fields == nil {
		return nil, &configError{field: "config", message: "config must be a JSON object"}
	}
	for _, key := range slices.Sorted(maps.Keys(p.entry.Config)) {
		if _, ok := fields[key]; ok {
			return nil, &configError{field: "config." + key,
				message: fmt.Sprintf("config key %q is set by the operator for every server of plugin %s", key, p.entry.Name)}
		}
	}
	maps.Copy(fields, p.entry.Config)

	merged, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	if p.schema == nil {
		return merged, nil
	}

	instance, err := jsonschema.UnmarshalJSON(bytes.NewReader(merged))
	if err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	if err := p.schema.Validate(instance); err != nil {
		var invalid *jsonschema.ValidationError
		if !errors.As(err, &invalid) {
			return nil, fmt.Errorf("validate config: %w", err)
		}
		problems := schemaProblems(invalid)
		return nil, &configError{field: "config", problems: problems,
			message: fmt.Sprintf("config does not match the schema of plugin %s: %s", p.entry.Name, summarize(problems))}
	}
	return merged, nil
}

var schemaPrinter = message.NewPrinter(language.English)

// schemaProblems flattens a validation error into its leaf causes.
func schemaProblems(err *jsonschema.ValidationError) []configProblem {
	var problems []configProblem
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			path := ""
			if len(e.InstanceLocation) > 0 {
				path = "/" + strings.Join(e.InstanceLocation, "/")
			}
			problems = append(problems, configProblem{Path: path, Message: e.ErrorKind.LocalizedString(schemaPrinter)})
			return
		}
		for _, cause := range e.Causes {
			walk(cause)
		}
	}
	walk(err)
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].Path < problems[j].Path })
	return problems
}

func summarize(problems []configProblem) string {
	parts := make([]string, 0, len(problems))
	for _, p := range problems {
		path := p.Path
		if path == "" {
			path = "/"
		}
		parts = append(parts, path+": "+p.Message)
	}
	return strings.Join(parts, "; ")
}

// secretSpec returns the manifest's secret called name, or nil.
func secretSpec(manifest host.Manifest, name string) *host.SecretSpec {
	for i := range manifest.Secrets {
		if manifest.Secrets[i].Name == name {
			return &manifest.Secrets[i]
		}
	}
	return nil
}

// checkSecrets checks that every secret is one the manifest names, with a
// value an environment variable can carry, and that the required ones are set.
func (p *catalogPlugin) checkSecrets(secrets map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(secrets)) {
		if secretSpec(p.manifest, name) == nil {
			return &configError{field: "secrets." + name,
				message: fmt.Sprintf("plugin %s takes no secret %q; it takes %s", p.entry.Name, name, p.secretNames())}
		}
		value := secrets[name]
		if len(value) > maxSecretValueBytes || strings.ContainsRune(value, 0) {
			return &configError{field: "secrets." + name,
				message: fmt.Sprintf("secret %s must be at most %d bytes without NUL characters", name, maxSecretValueBytes)}
		}
	}
	for _, spec := range p.manifest.Secrets {
		if _, ok := secrets[spec.Name]; spec.Required && !ok {
			return &configError{field: "secrets." + spec.Name,
				message: fmt.Sprintf("plugin %s requires the secret %s", p.entry.Name, spec.Name)}
		}
	}
	return nil
}

func (p *catalogPlugin) secretNames() string {
	if len(p.manifest.Secrets) == 0 {
		return "none"
	}
	names := make([]string, 0, len(p.manifest.Secrets))
	for _, spec := range p.manifest.Secrets {
		names = append(names, spec.Name)
	}
	return strings.Join(names, ", ")
}
