package auth

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
		t.Fatalf("decode the embedded modules.auth: %v", err)
	}
	if !reflect.DeepEqual(m.opts, defaultOptions()) {
		t.Errorf("nexus.yaml gives %+v,\ncode defaults are %+v", m.opts, defaultOptions())
	}
}

func TestDecodeRejectsBadOptions(t *testing.T) {
	cases := []struct {
		name    string
		section map[string]any
		wantKey string
	}{
		{"unknown key", map[string]any{"colour": "blue"}, "modules.auth.colour"},
		{"wrong type", map[string]any{"login_max_failures": "five"}, "modules.auth.login_max_failures"},
		{"relative public url", map[string]any{"public_url": "/nexus"}, "modules.auth.public_url"},
		{"too few failures", map[string]any{"login_max_failures": 0}, "modules.auth.login_max_failures"},
		{"long reuse window", map[string]any{"refresh_reuse_window": "2m"}, "modules.auth.refresh_reuse_window"},
		{"weak argon2", map[string]any{"argon2": map[string]any{"memory_kib": 1024}}, "modules.auth.argon2"},
		{"unknown sender", map[string]any{"mail": map[string]any{"sender": "pigeon"}}, "modules.auth.mail.sender"},
		{"smtp without host", map[string]any{"mail": map[string]any{"sender": "smtp"}}, "modules.auth.mail.smtp.host"},
		{"unknown provider type", map[string]any{"providers": map[string]any{"x": map[string]any{"type": "myspace", "client_id": "a", "client_secret": "b"}}}, "modules.auth.providers.x.type"},
		{"oidc without issuer", map[string]any{"providers": map[string]any{"x": map[string]any{"type": "oidc", "client_id": "a", "client_secret": "b"}}}, "modules.auth.providers.x.issuer"},
		{"google with another issuer", map[string]any{"providers": map[string]any{"g": map[string]any{"type": "google", "issuer": "https://evil.example", "client_id": "a", "client_secret": "b"}}}, "modules.auth.providers.g.issuer"},
		{"provider without secret", map[string]any{"providers": map[string]any{"gh": map[string]any{"type": "github", "client_id": "a"}}}, "modules.auth.providers.gh.client_secret"},
		{"public client with secret", map[string]any{"clients": map[string]any{"app": map[string]any{"name": "App", "type": "public", "secret": "s", "grants": []any{"device_code"}}}}, "modules.auth.clients.app.secret"},
		{"unknown grant", map[string]any{"clients": map[string]any{"app": map[string]any{"name": "App", "type": "public", "grants": []any{"password"}}}}, "modules.auth.clients.app.grants"},
		{"device interval too short", map[string]any{"device": map[string]any{"interval": "500ms"}}, "modules.auth.device.interval"},
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

func TestNormalizeEmail(t *testing.T) {
	valid := map[string]string{
		"  Ada@Example.COM ":      "Ada@example.com",
		"a.b+tag@sub.example.org": "a.b+tag@sub.example.org",
	}
	for in, want := range valid {
		got, err := normalizeEmail(in)
		if err != nil || got != want {
			t.Errorf("normalizeEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ada", "@example.com", "ada@", "ada@localhost", "Ada <ada@example.com>", "a@b@example.com", strings.Repeat("a", 250) + "@example.com", "ada@exa\xffmple.com"} {
		if got, err := normalizeEmail(in); err == nil {
			t.Errorf("normalizeEmail(%q) = %q, want an error", in, got)
		}
	}
}
