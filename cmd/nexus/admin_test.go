package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/storage/storagetest"
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

// TestAdminLockReachesRunningServer locks an account with the command while
// a server shares its PostgreSQL and Redis: the server's actor rejects the
// account's session through the Redis bus well before its 15 s recheck.
func TestAdminLockReachesRunningServer(t *testing.T) {
	env := []string{
		"NEXUS_DATABASE_URL=" + storagetest.PostgresURL(t),
		"NEXUS_REDIS_URL=" + storagetest.Redis(t),
		"NEXUS_REDIS_PREFIX=" + storagetest.Prefix(t),
	}
	dir := t.TempDir()
	p := startNexus(t, dir, nil, env...)
	email, password := "locked@example.com", "a passphrase to lock out"

	post := func(path, body, token string) (int, string) {
		req, _ := http.NewRequest("POST", "http://"+p.addr+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer res.Body.Close()
		data, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(data)
	}
	if status, body := post("/v1/auth/register", `{"email": "`+email+`", "password": "`+password+`"}`, ""); status != http.StatusCreated {
		t.Fatalf("register = %d %s", status, body)
	}
	if output, code := runNexusWith(t, dir, env, "admin", "verify", email); code != 0 {
		t.Fatalf("admin verify = %d %q", code, output)
	}
	status, body := post("/v1/auth/login", `{"email": "`+email+`", "password": "`+password+`"}`, "")
	if status != http.StatusOK {
		t.Fatalf("login = %d %s", status, body)
	}
	var login struct {
		Data struct {
			AccessToken string `json:"access_token"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &login); err != nil {
		t.Fatalf("decode login: %v", err)
	}
	me := func() int {
		req, _ := http.NewRequest("GET", "http://"+p.addr+"/v1/auth/me", nil)
		req.Header.Set("Authorization", "Bearer "+login.Data.AccessToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET /v1/auth/me: %v", err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := me(); got != http.StatusOK {
		t.Fatalf("/me before the lock = %d", got)
	}

	if output, code := runNexusWith(t, dir, env, "admin", "lock", email); code != 0 {
		t.Fatalf("admin lock = %d %q", code, output)
	}
	deadline := time.Now().Add(5 * time.Second)
	for me() != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("the running server still accepts the locked account's session after 5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runNexusWith runs the binary in dir with env added to the environment.
func runNexusWith(t *testing.T, dir string, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(nexusBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	output, _ := cmd.CombinedOutput()
	return string(output), cmd.ProcessState.ExitCode()
}
