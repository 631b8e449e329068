package main_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"
)

func TestAdminCommands(t *testing.T) {
	dir := t.TempDir()
	p := startNexus(t, dir, nil)
	body := strings.NewReader(`{"email": "op@example.com", "password": "operator passphrase 1"}`)
	res, err := http.Post("http://"+p.addr+"/v1/auth/register", "application/json", body)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("register = %d, want 201", res.StatusCode)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code = %d", code)
	}

	if output, code := runNexus(t, dir, "admin", "grant", "op@example.com", "admin"); code != 0 || !strings.Contains(output, "now has the role admin") {
		t.Fatalf("grant = %d %q", code, output)
	}
	if output, code := runNexus(t, dir, "admin", "verify", "op@example.com"); code != 0 || !strings.Contains(output, "verified") {
		t.Fatalf("verify = %d %q", code, output)
	}
	output, code := runNexus(t, dir, "admin", "find", "OP@example.com")
	if code == 0 {
		t.Errorf("find with a different local-part case = %q, want not found: only the domain is case-insensitive", output)
	}
	output, code = runNexus(t, dir, "admin", "find", "op@EXAMPLE.com")
	var info struct {
		Role          string `json:"role"`
		EmailVerified bool   `json:"email_verified"`
	}
	if code != 0 || json.Unmarshal([]byte(output), &info) != nil {
		t.Fatalf("find = %d %q", code, output)
	}
	if info.Role != "admin" || !info.EmailVerified {
		t.Errorf("account = %+v, want an admin with a verified email", info)
	}
	if output, code := runNexus(t, dir, "admin", "grant", "op@example.com", "root"); code != 1 || !strings.Contains(output, `unknown role "root"`) {
		t.Errorf("grant of an unknown role = %d %q", code, output)
	}
	// A command on a fresh data directory migrates it first instead of failing on missing tables.
	if output, code := runNexus(t, t.TempDir(), "admin", "find", "nobody@example.com"); code != 1 || !strings.Contains(output, "user not found") {
		t.Errorf("find on a fresh data directory = %d %q, want user not found", code, output)
	}
	if output, code := runNexus(t, dir, "admin", "delete", "op@example.com"); code != 0 || !strings.Contains(output, "deleted") {
		t.Errorf("delete = %d %q", code, output)
	}
	if output, code := runNexus(t, dir, "admin", "find", "op@example.com"); code != 1 || !strings.Contains(output, "user not found") {
		t.Errorf("find after delete = %d %q", code, output)
	}
}
