package mcp

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/configs"
)

func TestEmbeddedDefaultsMatchCode(t *testing.T) {
	cfg, err := configs.Load("", nil)
	if err != nil {
		t.Fatalf("load defaults: %v", err)
	}
	if !cfg.ModuleEnabled(Name) {
		t.Error("modules.mcp is not enabled by default")
	}
	var m Module
	if err := m.Decode(cfg.ModuleSection(Name)); err != nil {
		t.Fatalf("decode the embedded modules.mcp: %v", err)
	}
	if !reflect.DeepEqual(m.opts, defaultOptions()) {
		t.Errorf("nexus.yaml gives %+v,\ncode defaults are %+v", m.opts, defaultOptions())
	}
}

func TestDecodeCatalog(t *testing.T) {
	var m Module
	err := m.Decode(map[string]any{
		"catalog": []any{map[string]any{
			"name": "notes", "path": "/opt/nexus/plugins/notes", "sha256": strings.Repeat("ab", 32),
			"args": []any{"--verbose"}, "config": map[string]any{"command": "node"},
		}},
		"idle_timeout": "30s",
	})
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	entry := m.opts.Catalog[0]
	if entry.Name != "notes" || entry.Args[0] != "--verbose" || entry.Config["command"] != "node" {
		t.Errorf("catalog entry = %+v", entry)
	}
	if m.opts.IdleTimeout != 30*time.Second {
		t.Errorf("idle_timeout = %s, want 30s", m.opts.IdleTimeout)
	}
}

func TestDecodeRejectsBadOptions(t *testing.T) {
	good := func() map[string]any {
		return map[string]any{"name": "notes", "path": "/opt/notes", "sha256": strings.Repeat("0", 64)}
	}
	with := func(key string, value any) map[string]any {
		entry := good()
		entry[key] = value
		return entry
	}
	cases := []struct {
		name    string
		section map[string]any
		wantKey string
	}{
		{"unknown key", map[string]any{"colour": "blue"}, "modules.mcp.colour"},
		{"wrong type", map[string]any{"log_lines": "many"}, "modules.mcp.log_lines"},
		{"zero backoff", map[string]any{"backoff_base": "0s"}, "modules.mcp.backoff_base"},
		{"cap below base", map[string]any{"backoff_base": "10s", "backoff_max": "1s"}, "modules.mcp.backoff_max"},
		{"health timeout over interval", map[string]any{"health_timeout": "1m"}, "modules.mcp.health_timeout"},
		{"origin with path", map[string]any{"allowed_origins": []any{"https://app.example.com/x"}}, "modules.mcp.allowed_origins[0]"},
		{"bad plugin name", map[string]any{"catalog": []any{with("name", "Notes!")}}, "modules.mcp.catalog[0]: name"},
		{"relative path", map[string]any{"catalog": []any{with("path", "plugins/notes")}}, "modules.mcp.catalog[0]: path"},
		{"short sha256", map[string]any{"catalog": []any{with("sha256", "abc")}}, "modules.mcp.catalog[0]: sha256"},
		{"duplicate plugin", map[string]any{"catalog": []any{good(), good()}}, "modules.mcp.catalog[1].name"},
		{"unknown catalog key", map[string]any{"catalog": []any{with("checksum", "x")}}, "checksum"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var m Module
			err := m.Decode(tc.section)
			if err == nil {
				t.Fatal("Decode succeeded")
			}
			if !strings.Contains(err.Error(), tc.wantKey) {
				t.Errorf("error %q does not name %s", err, tc.wantKey)
			}
		})
	}
}

func TestAllowsOrigin(t *testing.T) {
	opts := defaultOptions()
	opts.AllowedOrigins = []string{"https://app.example.com"}
	cases := map[string]bool{
		"":                         true,
		"https://app.example.com":  true,
		"https://APP.example.com/": true,
		"https://evil.example.com": false,
		"http://app.example.com":   false,
	}
	for origin, want := range cases {
		if got := opts.allowsOrigin(origin); got != want {
			t.Errorf("allowsOrigin(%q) = %v, want %v", origin, got, want)
		}
	}
}
