package contract_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nexus-suite/nexus/plugins/contract"
)

func TestManifestValidate(t *testing.T) {
	valid := contract.Manifest{Name: "notes", Version: "1.0.0"}

	tests := []struct {
		name    string
		change  func(*contract.Manifest)
		wantErr string
	}{
		{name: "OK", change: func(*contract.Manifest) {}},
		{name: "OKSchemaAndSecrets", change: func(m *contract.Manifest) {
			m.ConfigSchema = json.RawMessage(`{"type":"object"}`)
			m.Secrets = []contract.SecretSpec{{Name: "API_TOKEN", Required: true}}
		}},
		{name: "ErrName", change: func(m *contract.Manifest) { m.Name = "Notes App" }, wantErr: "invalid plugin name"},
		{name: "ErrVersion", change: func(m *contract.Manifest) { m.Version = "" }, wantErr: "missing plugin version"},
		{name: "ErrSchemaNotObject", change: func(m *contract.Manifest) { m.ConfigSchema = json.RawMessage(`[1]`) }, wantErr: "invalid config schema"},
		{name: "ErrSecretName", change: func(m *contract.Manifest) { m.Secrets = []contract.SecretSpec{{Name: "api-token"}} }, wantErr: "invalid secret name"},
		{name: "ErrSecretReserved", change: func(m *contract.Manifest) { m.Secrets = []contract.SecretSpec{{Name: "PLUGIN_MIN_PORT"}} }, wantErr: "reserved"},
		{name: "ErrSecretCookie", change: func(m *contract.Manifest) {
			m.Secrets = []contract.SecretSpec{{Name: contract.Handshake.MagicCookieKey}}
		}, wantErr: "reserved"},
		{name: "ErrSecretDuplicate", change: func(m *contract.Manifest) {
			m.Secrets = []contract.SecretSpec{{Name: "TOKEN"}, {Name: "TOKEN"}}
		}, wantErr: "duplicate secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			manifest := valid
			tt.change(&manifest)
			err := manifest.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("validate = %v; want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
