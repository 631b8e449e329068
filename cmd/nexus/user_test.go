package main_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	userCodeLine = regexp.MustCompile(`enter the code ([A-Z]{4}-[A-Z]{4})`)
	csrfInput    = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// approveDevice signs in on the verification page as a browser would and
// approves the user code.
func approveDevice(t *testing.T, server, email, password, userCode string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	page := func(res *http.Response, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("device page: %v", err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("device page = %d\n%s", res.StatusCode, body)
		}
		return string(body)
	}
	csrfOf := func(html string) string {
		match := csrfInput.FindStringSubmatch(html)
		if match == nil {
			t.Fatalf("no csrf field in\n%s", html)
		}
		return match[1]
	}

	signIn := page(browser.Get(server + "/v1/auth/device?user_code=" + userCode))
	confirm := page(browser.PostForm(server+"/v1/auth/device/signin", url.Values{
		"csrf": {csrfOf(signIn)}, "email": {email}, "password": {password}, "user_code": {userCode},
	}))
	done := page(browser.PostForm(server+"/v1/auth/device/approve", url.Values{
		"csrf": {csrfOf(confirm)}, "user_code": {userCode}, "decision": {"approve"},
	}))
	if !strings.Contains(done, "Device connected") {
		t.Fatalf("approval page:\n%s", done)
	}
}

// loginWithDevice runs `nexus login` with env, approves the user code it
// prints on the verification page, and returns its standard output.
func loginWithDevice(t *testing.T, env []string, server, email, password string) string {
	t.Helper()
	login := exec.Command(nexusBinary(t), "login", "--no-browser")
	login.Env = append(os.Environ(), env...)
	stderr, err := login.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	login.Stdout = &stdout
	if err := login.Start(); err != nil {
		t.Fatalf("start nexus login: %v", err)
	}
	defer func() { _ = login.Process.Kill() }()

	lines := bufio.NewScanner(stderr)
	userCode := ""
	for userCode == "" && lines.Scan() {
		if match := userCodeLine.FindStringSubmatch(lines.Text()); match != nil {
			userCode = match[1]
		}
	}
	if userCode == "" {
		t.Fatal("nexus login printed no user code")
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()

	approveDevice(t, server, email, password, userCode)
	if err := login.Wait(); err != nil {
		t.Fatalf("nexus login: %v", err)
	}
	return stdout.String()
}

// TestUserCommands signs in with `nexus login` over the device flow, then
// runs the user commands against the server with the stored tokens.
func TestUserCommands(t *testing.T) {
	dir := t.TempDir()
	p := startNexus(t, dir, nil, "NEXUS_MODULES_AUTH_DEVICE_INTERVAL=1s")
	server := "http://" + p.addr
	email, password := "cli@example.com", "a passphrase for the cli"
	res, err := http.Post(server+"/v1/auth/register", "application/json",
		strings.NewReader(`{"email": "`+email+`", "password": "`+password+`"}`))
	if err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("register: %v %v", err, res)
	}
	res.Body.Close()
	if output, code := runNexus(t, dir, "admin", "verify", email); code != 0 {
		t.Fatalf("verify = %d %s", code, output)
	}

	credentialsFile := filepath.Join(t.TempDir(), "nexus", "credentials.json")
	env := []string{"NEXUS_CREDENTIALS=" + credentialsFile, "NEXUS_SERVER=" + server}
	stdout := loginWithDevice(t, env, server, email, password)
	if !strings.Contains(stdout, "Signed in to "+server+" as "+email) {
		t.Errorf("login output = %q", stdout)
	}
	info, err := os.Stat(credentialsFile)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v, mode %v; want mode 0600", err, info.Mode())
	}

	whoami, code := runNexusWith(t, dir, env, "whoami", "--json")
	var user struct {
		Email string `json:"email"`
	}
	if code != 0 || json.Unmarshal([]byte(whoami), &user) != nil || user.Email != email {
		t.Errorf("whoami --json = %d %q", code, whoami)
	}
	if output, code := runNexusWith(t, dir, env, "entitlements"); code != 0 || !strings.Contains(output, "Core (default)") {
		t.Errorf("entitlements = %d %q", code, output)
	}
	trial, code := runNexusWith(t, dir, env, "trial", "start", "--json")
	var started struct {
		Tier   string `json:"tier"`
		Active bool   `json:"active"`
	}
	if code != 0 || json.Unmarshal([]byte(trial), &started) != nil || started.Tier != "pro" || !started.Active {
		t.Errorf("trial start --json = %d %q", code, trial)
	}
	if output, code := runNexusWith(t, dir, env, "entitlements"); code != 0 || !strings.Contains(output, "Pro (trial)") {
		t.Errorf("entitlements during the trial = %d %q", code, output)
	}
	if output, code := runNexusWith(t, dir, env, "trial", "start"); code != 1 || !strings.Contains(output, "CONFLICT") {
		t.Errorf("second trial start = %d %q, want the API's 409", code, output)
	}

	if output, code := runNexusWith(t, dir, env, "logout"); code != 0 || !strings.Contains(output, "Signed out") {
		t.Errorf("logout = %d %q", code, output)
	}
	if _, err := os.Stat(credentialsFile); !os.IsNotExist(err) {
		t.Errorf("credentials after logout: %v, want removed", err)
	}
	if output, code := runNexusWith(t, dir, env, "whoami"); code != 1 || !strings.Contains(output, "nexus login") {
		t.Errorf("whoami after logout = %d %q, want a hint to sign in", code, output)
	}
}
