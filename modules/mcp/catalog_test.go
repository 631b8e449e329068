package mcp

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/plugins/host"
	"github.com/nexus-suite/nexus/runtime/clock"
)

// stdioPlugin is a catalog plugin whose schema needs a command and whose
// operator fixes the command.
func stdioPlugin(t *testing.T) *catalogPlugin {
	t.Helper()
	schema := json.RawMessage(`{
		"type": "object",
		"properties": {
			"command": {"type": "string"},
			"args": {"type": "array", "items": {"type": "string"}},
			"limit": {"type": "integer", "minimum": 1}
		},
		"required": ["command"],
		"additionalProperties": false
	}`)
	compiled, err := compileSchema("stdio", schema)
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	return &catalogPlugin{
		entry:  catalogEntry{Name: "stdio", Config: map[string]any{"command": "node"}},
		schema: compiled,
		manifest: host.Manifest{Name: "stdio", Version: "1", ConfigSchema: schema, Secrets: []host.SecretSpec{
			{Name: "TOKEN", Required: true}, {Name: "OPTIONAL"},
		}},
	}
}

func TestResolveConfigMergesFixedKeys(t *testing.T) {
	plugin := stdioPlugin(t)

	merged, err := plugin.resolveConfig(json.RawMessage(`{"args":["server.js"]}`))
	if err != nil {
		t.Fatalf("resolveConfig: %v", err)
	}
	var got map[string]any
	if err := json.Unmarshal(merged, &got); err != nil {
		t.Fatalf("decode merged config: %v", err)
	}
	if got["command"] != "node" || got["args"].([]any)[0] != "server.js" {
		t.Errorf("merged config = %s", merged)
	}
}

func TestResolveConfigRejects(t *testing.T) {
	cases := []struct {
		name      string
		config    string
		wantField string
		wantPath  string
	}{
		{"fixed key", `{"command":"bash"}`, "config.command", ""},
		{"not an object", `[1,2]`, "config", ""},
		{"wrong type", `{"args":"server.js"}`, "config", "/args"},
		{"below minimum", `{"limit":0}`, "config", "/limit"},
		{"unknown key", `{"colour":"blue"}`, "config", ""},
	}
	plugin := stdioPlugin(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := plugin.resolveConfig(json.RawMessage(tc.config))
			var invalid *configError
			if !errors.As(err, &invalid) {
				t.Fatalf("err = %v, want a configError", err)
			}
			if invalid.field != tc.wantField {
				t.Errorf("field = %q, want %q", invalid.field, tc.wantField)
			}
			if tc.wantPath != "" && (len(invalid.problems) == 0 || invalid.problems[0].Path != tc.wantPath) {
				t.Errorf("problems = %+v, want one at %s", invalid.problems, tc.wantPath)
			}
		})
	}
}

func TestCheckSecrets(t *testing.T) {
	plugin := stdioPlugin(t)
	cases := []struct {
		name      string
		secrets   map[string]string
		wantField string
	}{
		{"required only", map[string]string{"TOKEN": "t"}, ""},
		{"missing required", map[string]string{"OPTIONAL": "o"}, "secrets.TOKEN"},
		{"unknown", map[string]string{"TOKEN": "t", "OTHER": "x"}, "secrets.OTHER"},
		{"NUL in value", map[string]string{"TOKEN": "a\x00b"}, "secrets.TOKEN"},
		{"too long", map[string]string{"TOKEN": strings.Repeat("x", maxSecretValueBytes+1)}, "secrets.TOKEN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := plugin.checkSecrets(tc.secrets)
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("checkSecrets: %v", err)
				}
				return
			}
			var invalid *configError
			if !errors.As(err, &invalid) || invalid.field != tc.wantField {
				t.Errorf("err = %v, want a configError on %s", err, tc.wantField)
			}
		})
	}
}

func TestSecretsSealedPerServer(t *testing.T) {
	key := make([]byte, 32)
	sealed, err := sealSecrets(key, "mcs_a", map[string]string{"TOKEN": "value"})
	if err != nil {
		t.Fatalf("seal: %v", err)
	}
	if strings.Contains(string(sealed), "value") {
		t.Error("the sealed secrets contain the plaintext")
	}
	opened, err := openSecrets(key, "mcs_a", sealed)
	if err != nil || opened["TOKEN"] != "value" {
		t.Fatalf("open = %v, %v", opened, err)
	}
	if _, err := openSecrets(key, "mcs_b", sealed); err == nil {
		t.Error("secrets sealed for one server opened for another")
	}
}

func TestCompileSchemaLoadsNothing(t *testing.T) {
	_, err := compileSchema("remote", json.RawMessage(`{"$ref": "https://example.com/schema.json"}`))
	if err == nil {
		t.Error("a schema that refers to a remote document compiled")
	}
}

func TestLogRingKeepsNewest(t *testing.T) {
	ring := newLogRing(3, clock.NewFake(time.Unix(0, 0)))
	for _, line := range []string{"one\n", "two\n", "three\nfour\n"} {
		_, _ = ring.Write([]byte(line))
	}
	ring.record("restarting")

	lines, dropped := ring.tail(10)
	var got []string
	for _, line := range lines {
		got = append(got, line.Source+":"+line.Line)
	}
	want := "stderr:three stderr:four supervisor:restarting"
	if strings.Join(got, " ") != want || dropped != 2 {
		t.Errorf("tail = %v dropped %d, want %s dropped 2", got, dropped, want)
	}
	if lines, dropped := ring.tail(1); len(lines) != 1 || dropped != 4 {
		t.Errorf("tail(1) = %d lines dropped %d, want 1 line dropped 4", len(lines), dropped)
	}
}

func TestDeliverRoutesResponses(t *testing.T) {
	sess := &mcpSession{pending: map[string]chan []byte{}, outbox: make(chan []byte, 1)}
	responses := make(chan []byte, 1)
	if err := sess.register([]string{idKey(json.RawMessage(` 7 `))}, responses); err != nil {
		t.Fatalf("register: %v", err)
	}
	if err := sess.register([]string{"7"}, responses); err == nil {
		t.Error("a second request with id 7 was accepted while the first is in flight")
	}

	logger := discardLogger()
	sess.deliver([]byte(`{"jsonrpc":"2.0","method":"notifications/progress"}`), logger)
	sess.deliver([]byte(`{"jsonrpc":"2.0","id":7,"result":{}}`), logger)
	sess.deliver([]byte(`{"jsonrpc":"2.0","method":"notifications/message"}`), logger)

	if got := string(<-responses); !strings.Contains(got, `"id":7`) {
		t.Errorf("response = %s", got)
	}
	if got := string(<-sess.outbox); !strings.Contains(got, "notifications/message") {
		t.Errorf("outbox holds %s, want the newest notification after the oldest was dropped", got)
	}
}
