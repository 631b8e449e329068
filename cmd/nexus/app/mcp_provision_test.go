package app_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/runtime"
)

func TestMCPTierRequired(t *testing.T) {
	s := startMCPServer(t, engineSQLite)
	core := s.member(t)
	pro := s.member(t)
	s.setSubscription(t, pro, "pro", "active", s.clock.Now().Add(90*24*time.Hour))

	for _, tc := range []struct {
		name   string
		member member
		tier   string
	}{{"core", core, "core"}, {"pro", pro, "pro"}} {
		t.Run(tc.name, func(t *testing.T) {
			for _, request := range []struct{ method, path, body string }{
				{"GET", "/v1/mcp/plugins", ""},
				{"POST", "/v1/mcp/servers", `{"name":"n","plugin":"notes"}`},
				{"GET", "/v1/mcp/servers", ""},
				{"POST", "/v1/mcp/servers/mcs_x/mcp", initializeBody},
			} {
				res := s.as(t, tc.member, request.method, request.path, request.body)
				apiErr := res.envelopeError(t)
				if res.status != http.StatusForbidden || apiErr.Code != "TIER_REQUIRED" {
					t.Errorf("%s %s = %d %s, want 403 TIER_REQUIRED", request.method, request.path, res.status, res.body)
					continue
				}
				if apiErr.Details["required_tier"] != "studio" || apiErr.Details["current_tier"] != tc.tier {
					t.Errorf("%s %s details = %v, want studio required over %s", request.method, request.path, apiErr.Details, tc.tier)
				}
			}
		})
	}
}

func TestMCPProvisioning(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startMCPServer(t, e)
		m := s.studioMember(t)

		res := s.as(t, m, "GET", "/v1/mcp/plugins", "")
		if res.status != http.StatusOK {
			t.Fatalf("GET plugins = %d %s", res.status, res.body)
		}
		var plugins []struct {
			Name         string         `json:"name"`
			Available    bool           `json:"available"`
			ConfigSchema map[string]any `json:"config_schema"`
		}
		res.data(t, &plugins)
		if len(plugins) != 2 || plugins[0].Name != "notes" || !plugins[0].Available || plugins[0].ConfigSchema == nil {
			t.Fatalf("plugins = %+v, want notes with its schema, then echo", plugins)
		}

		server := s.createMCPServer(t, m, "Work notes", "notes", `{"title":"Work"}`)
		if server.State != "starting" && server.State != "running" {
			t.Errorf("state after create = %s, want starting or running", server.State)
		}
		if server.Endpoint != "/v1/mcp/servers/"+server.ID+"/mcp" {
			t.Errorf("endpoint = %s", server.Endpoint)
		}
		s.waitMCPState(t, m, server.ID, "running")

		res = s.as(t, m, "PATCH", "/v1/mcp/servers/"+server.ID, `{"name":"Home notes","config":{"title":"Home"}}`)
		if res.status != http.StatusOK {
			t.Fatalf("PATCH = %d %s", res.status, res.body)
		}
		var updated mcpServerView
		res.data(t, &updated)
		if updated.Name != "Home notes" || !strings.Contains(string(updated.Config), "Home") {
			t.Errorf("updated server = %+v", updated)
		}

		res = s.as(t, m, "GET", "/v1/mcp/servers", "")
		var list []mcpServerView
		res.data(t, &list)
		if len(list) != 1 || list[0].ID != server.ID {
			t.Errorf("list = %+v, want the one server", list)
		}

		res = s.as(t, m, "DELETE", "/v1/mcp/servers/"+server.ID, "")
		if res.status != http.StatusOK {
			t.Fatalf("DELETE = %d %s", res.status, res.body)
		}
		if res := s.as(t, m, "GET", "/v1/mcp/servers/"+server.ID, ""); res.status != http.StatusNotFound {
			t.Errorf("GET after DELETE = %d, want 404", res.status)
		}
	})
}

func TestMCPProvisioningRejects(t *testing.T) {
	s := startMCPServer(t, engineSQLite)
	m := s.studioMember(t)
	s.createMCPServer(t, m, "taken", "notes", `{}`)

	cases := []struct {
		name      string
		body      string
		status    int
		wantField string
	}{
		{"unknown plugin", `{"name":"a","plugin":"nope"}`, 400, "plugin"},
		{"empty name", `{"name":" ","plugin":"notes"}`, 400, "name"},
		{"config off schema", `{"name":"a","plugin":"notes","config":{"max_notes":"many"}}`, 400, "config"},
		{"config not an object", `{"name":"a","plugin":"notes","config":[1]}`, 400, "config"},
		{"unknown secret", `{"name":"a","plugin":"notes","secrets":{"NOPE":"x"}}`, 400, "secrets.NOPE"},
		{"duplicate name", `{"name":"taken","plugin":"notes"}`, 409, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := s.as(t, m, "POST", "/v1/mcp/servers", tc.body)
			if res.status != tc.status {
				t.Fatalf("status = %d %s, want %d", res.status, res.body, tc.status)
			}
			if tc.wantField != "" {
				if field := res.envelopeError(t).Details["field"]; field != tc.wantField {
					t.Errorf("details.field = %v, want %s", field, tc.wantField)
				}
			}
		})
	}
}

func TestMCPServersPerTier(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startMCPServer(t, e)
		m := s.studioMember(t)

		// Five creates race for the tier's three servers.
		var wg sync.WaitGroup
		statuses := make([]int, 5)
		for i := range statuses {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := `{"name":"server ` + string(rune('a'+i)) + `","plugin":"echo"}`
				statuses[i] = s.as(t, m, "POST", "/v1/mcp/servers", body).status
			}()
		}
		wg.Wait()

		created := 0
		for _, status := range statuses {
			if status == http.StatusCreated {
				created++
			}
		}
		if created != 3 {
			t.Errorf("creates = %v, want exactly three 201", statuses)
		}

		res := s.as(t, m, "POST", "/v1/mcp/servers", `{"name":"one more","plugin":"echo"}`)
		apiErr := res.envelopeError(t)
		if res.status != http.StatusRequestEntityTooLarge || apiErr.Code != "QUOTA_EXCEEDED" {
			t.Fatalf("create over the limit = %d %s, want 413 QUOTA_EXCEEDED", res.status, res.body)
		}
		want := map[string]any{"scope": "mcp_servers", "used": float64(3), "limit": float64(3), "requested": float64(1)}
		for key, value := range want {
			if apiErr.Details[key] != value {
				t.Errorf("details.%s = %v, want %v", key, apiErr.Details[key], value)
			}
		}
	})
}

func TestMCPOtherUsersServerIs404(t *testing.T) {
	s := startMCPServer(t, engineSQLite)
	owner, other := s.studioMember(t), s.studioMember(t)
	server := s.createMCPServer(t, owner, "notes", "notes", `{}`)

	for _, request := range []struct{ method, path, body string }{
		{"GET", "/v1/mcp/servers/" + server.ID, ""},
		{"PATCH", "/v1/mcp/servers/" + server.ID, `{"name":"mine"}`},
		{"DELETE", "/v1/mcp/servers/" + server.ID, ""},
		{"POST", "/v1/mcp/servers/" + server.ID + "/restart", ""},
		{"GET", "/v1/mcp/servers/" + server.ID + "/logs", ""},
		{"POST", "/v1/mcp/servers/" + server.ID + "/tokens", ""},
		{"GET", "/v1/mcp/servers/" + server.ID + "/tokens", ""},
		{"POST", "/v1/mcp/servers/" + server.ID + "/mcp", initializeBody},
	} {
		if res := s.as(t, other, request.method, request.path, request.body); res.status != http.StatusNotFound {
			t.Errorf("%s %s by another user = %d %s, want 404", request.method, request.path, res.status, res.body)
		}
	}
	if view := s.mcpServer(t, owner, server.ID); view.Name != "notes" {
		t.Errorf("the owner's server changed: %+v", view)
	}
}

func TestMCPSecretsNeverReturned(t *testing.T) {
	s := startMCPServer(t, engineSQLite, addCatalog(func() map[string]any {
		entry := mcpPluginBinaries(t)["test"].catalogEntry("secretive")
		return entry
	}()))
	m := s.studioMember(t)
	const secret = "sk-test-4f9a8b7c6d5e"

	res := s.as(t, m, "POST", "/v1/mcp/servers", `{"name":"s","plugin":"secretive","secrets":{"TESTPLUGIN_TOKEN":"`+secret+`"}}`)
	if res.status != http.StatusCreated {
		t.Fatalf("create = %d %s", res.status, res.body)
	}
	var server mcpServerView
	res.data(t, &server)
	if strings.Contains(string(res.body), secret) || len(server.Secrets) != 1 || server.Secrets[0] != "TESTPLUGIN_TOKEN" {
		t.Errorf("create response = %s, want the secret's name only", res.body)
	}
	if n := s.count(t, `SELECT COUNT(*) FROM mcp_servers WHERE config LIKE $1 OR secret_names LIKE $1`, "%"+secret+"%"); n != 0 {
		t.Error("the secret is stored in plain text")
	}

	session := s.mustConnectMCP(t, server.ID, s.memberToken(m))
	value, err := callTool(t, session, "getenv", map[string]any{"name": "TESTPLUGIN_TOKEN"})
	if err != nil {
		t.Fatalf("getenv: %v", err)
	}
	if !strings.Contains(value, secret) {
		t.Errorf("the plugin's environment has TESTPLUGIN_TOKEN = %s, want the secret", value)
	}
	for _, res := range []response{s.as(t, m, "GET", "/v1/mcp/servers/"+server.ID, ""), s.as(t, m, "GET", "/v1/mcp/servers", "")} {
		if strings.Contains(string(res.body), secret) {
			t.Errorf("a server view shows the secret: %s", res.body)
		}
	}
	if strings.Contains(s.logs.String(), secret) {
		t.Error("the secret appears in the server's log")
	}

	res = s.as(t, m, "PATCH", "/v1/mcp/servers/"+server.ID, `{"secrets":{"TESTPLUGIN_TOKEN":"rotated"}}`)
	if res.status != http.StatusOK || strings.Contains(string(res.body), "rotated") {
		t.Fatalf("PATCH secrets = %d %s, want 200 without the value", res.status, res.body)
	}
	s.waitMCPState(t, m, server.ID, "running")
	rotated := s.mustConnectMCP(t, server.ID, s.memberToken(m))
	if value, err := callTool(t, rotated, "getenv", map[string]any{"name": "TESTPLUGIN_TOKEN"}); err != nil || !strings.Contains(value, "rotated") {
		t.Errorf("getenv after the PATCH = %q, %v; want the new value", value, err)
	}

	res = s.as(t, m, "PATCH", "/v1/mcp/servers/"+server.ID, `{"secrets":{"TESTPLUGIN_TOKEN":null}}`)
	var cleared mcpServerView
	res.data(t, &cleared)
	if res.status != http.StatusOK || len(cleared.Secrets) != 0 {
		t.Errorf("PATCH removing the secret = %d %s, want no secrets", res.status, res.body)
	}
}

func TestMCPAccountDeletionStopsServers(t *testing.T) {
	requireProcFS(t)
	s := startMCPServer(t, engineSQLite)
	m := s.studioMember(t)
	server := s.createMCPServer(t, m, "notes", "notes", `{}`)
	s.waitMCPState(t, m, server.ID, "running")
	pid := s.mcpPluginPID(t, m, server.ID)
	s.as(t, m, "POST", "/v1/mcp/servers/"+server.ID+"/tokens", "")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := runtime.RunAccountHooks(ctx, s.app.DB(), m.id); err != nil {
		t.Fatalf("account hooks: %v", err)
	}

	if !processGone(pid) {
		t.Errorf("plugin process %d still runs after the account was deleted", pid)
	}
	for _, table := range []string{"mcp_servers", "mcp_tokens"} {
		if n := s.count(t, `SELECT COUNT(*) FROM `+table+` WHERE user_id = $1`, m.id); n != 0 {
			t.Errorf("%s keeps %d rows of the deleted user", table, n)
		}
	}
}
