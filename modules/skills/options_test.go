package skills

import (
	"reflect"
	"strings"
	"testing"

	"github.com/nexus-suite/nexus/configs"
)

func TestEmbeddedDefaultsMatchCode(t *testing.T) {
	cfg, err := configs.Load("", nil)
	if err != nil {
		t.Fatalf("load defaults: %v", err)
	}
	var m Module
	if err := m.Decode(cfg.ModuleSection(Name)); err != nil {
		t.Fatalf("decode the embedded modules.skills: %v", err)
	}
	if !reflect.DeepEqual(m.opts, defaultOptions()) {
		t.Errorf("nexus.yaml gives %+v,\ncode defaults are %+v", m.opts, defaultOptions())
	}
	if !cfg.ModuleEnabled(Name) {
		t.Error("modules.skills is not enabled in nexus.yaml")
	}
}

func TestDecodeRejectsBadOptions(t *testing.T) {
	cases := []struct {
		name    string
		section map[string]any
		wantKey string
	}{
		{"unknown key", map[string]any{"colour": "blue"}, "modules.skills.colour"},
		{"wrong type", map[string]any{"max_files": "many"}, "modules.skills.max_files"},
		{"tiny archive limit", map[string]any{"max_archive_bytes": 10}, "modules.skills.max_archive_bytes"},
		{"huge unpacked limit", map[string]any{"max_unpacked_bytes": 1 << 40}, "modules.skills.max_unpacked_bytes"},
		{"no files", map[string]any{"max_files": 0}, "modules.skills.max_files"},
		{"short paths", map[string]any{"max_path_bytes": 8}, "modules.skills.max_path_bytes"},
		{"page above max", map[string]any{"default_page_size": 500}, "modules.skills.default_page_size"},
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

func TestRoutesTakeBodyLimitFromConfig(t *testing.T) {
	var m Module
	if got := publishLimit(t, &m); got != defaultOptions().MaxArchiveBytes {
		t.Errorf("body limit before Decode = %d, want the default %d", got, defaultOptions().MaxArchiveBytes)
	}
	if err := m.Decode(map[string]any{"max_archive_bytes": 2048}); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if got := publishLimit(t, &m); got != 2048 {
		t.Errorf("body limit after Decode = %d, want 2048", got)
	}
}

func publishLimit(t *testing.T, m *Module) int {
	t.Helper()
	for _, route := range m.Routes() {
		if route.Method == "POST" && route.Path == "/v1/skills" {
			return route.MaxBodyBytes
		}
	}
	t.Fatal("no POST /v1/skills route")
	return 0
}
