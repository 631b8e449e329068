// Package contract defines the wire contract between nexus and an MCP server
// plugin: the go-plugin handshake, the plugin manifest, and the gRPC service
// through which the host reads the manifest, configures the plugin, relays
// the JSON-RPC messages of MCP sessions and requests the plugin's shutdown.
//
// The service is written by hand with grpc.ServiceDesc instead of being
// generated from a .proto file, so building it needs no protoc. Its messages
// are protobuf well-known types (BytesValue and Empty), so the default gRPC
// codec carries them and a plugin in another language can implement the same
// service from this description:
//
//	service nexus.plugin.v1.MCPPlugin {
//	  rpc Manifest(google.protobuf.Empty) returns (google.protobuf.BytesValue);  // manifest JSON
//	  rpc Configure(google.protobuf.BytesValue) returns (google.protobuf.Empty); // config JSON
//	  rpc Session(stream google.protobuf.BytesValue) returns (stream google.protobuf.BytesValue);
//	  rpc Shutdown(google.protobuf.Empty) returns (google.protobuf.Empty);
//	}
//
// Each BytesValue on a Session stream is one JSON-RPC 2.0 message encoded as
// JSON. One stream is one MCP session. The host ends a session by closing
// its send side, and the plugin ends it by returning from the stream.
package contract

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/hashicorp/go-plugin"
)

// Handshake is the go-plugin handshake shared by nexus and every plugin. A
// binary started without the cookie in its environment exits with an error,
// and a plugin built for another protocol version fails the handshake.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "NEXUS_MCP_PLUGIN",
	MagicCookieValue: "8f1c2a6e0b7d4f3e9a5c1d2b6e0f7a3c",
}

// PluginName is the name under which the MCP plugin is dispensed in the
// go-plugin plugin set.
const PluginName = "mcp"

// EnvHostPID is the environment variable holding the process id of the host
// that started the plugin. The plugin exits when its parent is no longer
// that process.
const EnvHostPID = "NEXUS_PLUGIN_HOST_PID"

// MaxMessageBytes is the largest gRPC message either side accepts: one
// JSON-RPC message, a manifest or a config.
const MaxMessageBytes = 16 << 20

// HealthService is the service name checked through the gRPC health service.
// go-plugin registers it as SERVING on every plugin's gRPC server.
const HealthService = plugin.GRPCServiceName

// Manifest describes a plugin: what it is, the JSON Schema of the config a
// server of it takes, and the secrets it reads from its environment.
type Manifest struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Description string `json:"description"`
	// ConfigSchema is a JSON Schema (draft 2020-12) of the config object.
	// Empty means the plugin takes no config.
	ConfigSchema json.RawMessage `json:"config_schema,omitempty"`
	// Secrets are the environment variables the plugin reads its secrets
	// from, in the order an operator should be asked for them.
	Secrets []SecretSpec `json:"secrets,omitempty"`
}

// SecretSpec is one secret a plugin reads from its environment.
type SecretSpec struct {
	// Name is the environment variable, such as GITHUB_TOKEN.
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Required    bool   `json:"required,omitempty"`
}

// pluginNamePattern limits plugin names to what reads well in a URL and a
// catalog: lowercase letters, digits and dashes.
var pluginNamePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// secretNamePattern limits secret names to portable environment variables.
var secretNamePattern = regexp.MustCompile(`^[A-Z_][A-Z0-9_]{0,127}$`)

// Validate checks a manifest: a name of lowercase letters, digits and dashes,
// a version, a config schema that is a JSON object when present, and secret
// names that are distinct environment variable names.
func (m Manifest) Validate() error {
	if !pluginNamePattern.MatchString(m.Name) {
		return fmt.Errorf("invalid plugin name %q: use 1 to 63 lowercase letters, digits and dashes, starting with a letter", m.Name)
	}
	if m.Version == "" {
		return errors.New("missing plugin version")
	}

	if len(m.ConfigSchema) > 0 {
		var schema map[string]any
		if err := json.Unmarshal(m.ConfigSchema, &schema); err != nil {
			return fmt.Errorf("invalid config schema: not a JSON object: %w", err)
		}
	}

	seen := make(map[string]bool, len(m.Secrets))
	for _, secret := range m.Secrets {
		if !secretNamePattern.MatchString(secret.Name) {
			return fmt.Errorf("invalid secret name %q: use an environment variable name of uppercase letters, digits and underscores", secret.Name)
		}
		if reservedEnv[secret.Name] || secret.Name == Handshake.MagicCookieKey {
			return fmt.Errorf("invalid secret name %q: the variable is reserved for the plugin protocol", secret.Name)
		}
		if seen[secret.Name] {
			return fmt.Errorf("duplicate secret name %q", secret.Name)
		}
		seen[secret.Name] = true
	}
	return nil
}

// reservedEnv are the environment variables the host sets for the go-plugin
// protocol, which a secret must not shadow.
var reservedEnv = map[string]bool{
	EnvHostPID:                 true,
	"PLUGIN_MIN_PORT":          true,
	"PLUGIN_MAX_PORT":          true,
	"PLUGIN_PROTOCOL_VERSIONS": true,
	"PLUGIN_UNIX_SOCKET_DIR":   true,
	"PLUGIN_UNIX_SOCKET_GROUP": true,
	"PLUGIN_CLIENT_CERT":       true,
	"PLUGIN_MULTIPLEX_GRPC":    true,
}

// IsReservedEnv reports whether name is an environment variable set by the
// go-plugin protocol, which neither secrets nor a plugin's children should
// see or override.
func IsReservedEnv(name string) bool {
	return reservedEnv[name] || name == Handshake.MagicCookieKey
}
