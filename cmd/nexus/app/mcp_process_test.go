package app_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/runtime/keyring"
	"github.com/nexus-suite/nexus/storage"
)

var (
	nexusBuildOnce sync.Once
	nexusBinary    mcpBinary
	nexusBuildErr  error
)

// builtNexus builds the nexus command once per test process, into the same
// cache folder as the plugins.
func builtNexus(t *testing.T) string {
	t.Helper()
	mcpPluginBinaries(t)
	nexusBuildOnce.Do(func() {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		nexusBinary, nexusBuildErr = buildPlugin(filepath.Join(cache, "nexus-test", "mcp-plugins"), "nexus",
			"github.com/nexus-suite/nexus/cmd/nexus")
	})
	if nexusBuildErr != nil {
		t.Fatalf("build nexus: %v", nexusBuildErr)
	}
	return nexusBinary.path
}

// TestMCPPluginsExitWithNexus kills nexus with SIGKILL, so it cannot stop
// its plugins, and checks that they exit by themselves.
func TestMCPPluginsExitWithNexus(t *testing.T) {
	requireProcFS(t)
	binary := builtNexus(t)
	notes := mcpPluginBinaries(t)["notes"]
	dir := t.TempDir()
	masterKey := make([]byte, keyring.MasterKeySize)
	_, _ = rand.Read(masterKey)
	addr := freeLoopbackAddr(t)

	config := fmt.Sprintf(`data_dir: %s
server:
  listen: %s
tiers:
  default: studio
modules:
  mcp:
    catalog:
      - {name: notes, path: %s, sha256: %s}
`, filepath.Join(dir, "data"), addr, notes.path, notes.sha256)
	configPath := filepath.Join(dir, "nexus.yaml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatalf("write config: %v", err)
	}

	cmd := exec.Command(binary, "serve", "--config", configPath)
	cmd.Env = append(os.Environ(), "NEXUS_SECURITY_MASTER_KEY="+base64.StdEncoding.EncodeToString(masterKey), "NEXUS_LOG_FORMAT=json")
	output := &logBuffer{}
	cmd.Stdout, cmd.Stderr = output, output
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nexus: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("nexus output:\n%s", output.String())
		}
	})
	baseURL := "http://" + addr
	waitFor(t, "nexus to serve /health", func() bool {
		res, err := http.Get(baseURL + "/health")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})

	token := signedSessionToken(t, filepath.Join(dir, "data"), masterKey)
	call := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, baseURL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer res.Body.Close()
		data, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(data)
	}
	status, body := call("POST", "/v1/mcp/servers", `{"name":"notes","plugin":"notes"}`)
	if status != http.StatusCreated {
		t.Fatalf("create server = %d %s", status, body)
	}
	id := body[strings.Index(body, `"id":"`)+6:]
	id = id[:strings.Index(id, `"`)]

	var pid int
	waitFor(t, "the plugin to start", func() bool {
		_, logs := call("GET", "/v1/mcp/servers/"+id+"/logs", "")
		match := startedPIDJSON.FindStringSubmatch(logs)
		if match == nil {
			return false
		}
		_, err := fmt.Sscan(match[1], &pid)
		return err == nil
	})
	if processGone(pid) {
		t.Fatalf("plugin %d is not running", pid)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 nexus: %v", err)
	}
	<-exited
	deadline := time.Now().Add(5 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("plugin %d still runs 5 s after nexus was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signedSessionToken inserts a user and a session into the SQLite database
// of a nexus process and signs an access token with its key.
func signedSessionToken(t *testing.T, dataDir string, masterKey []byte) string {
	t.Helper()
	ctx := context.Background()
	db, err := storage.Open(ctx, configs.Database{MaxOpenConns: 2, MaxIdleConns: 1}, dataDir)
	if err != nil {
		t.Fatalf("open the database of nexus: %v", err)
	}
	defer db.Close()

	now := time.Now()
	userID, sessionID := "usr_"+randomID(t), "ses_"+randomID(t)
	sessions := storage.NewSessions(db)
	if err := sessions.InsertUser(ctx, userID, userID+"@example.com", now); err != nil {
		t.Fatalf("insert user: %v", err)
	}
	record := storage.SessionRecord{ID: sessionID, UserID: userID, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := sessions.Insert(ctx, record); err != nil {
		t.Fatalf("insert session: %v", err)
	}

	keys := keyring.New(db, masterKey, clock.System{}, slog.New(slog.DiscardHandler))
	if err := keys.Ensure(ctx); err != nil {
		t.Fatalf("load signing keys: %v", err)
	}
	defaults, err := configs.Load("", nil)
	if err != nil {
		t.Fatalf("load defaults: %v", err)
	}
	token, err := keys.Sign(map[string]any{
		"sub": userID, "sid": sessionID, "jti": randomID(t),
		"iss": defaults.Tokens.Issuer, "aud": defaults.Tokens.Audience,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	})
	if err != nil {
		t.Fatalf("sign token: %v", err)
	}
	return token
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startedPIDJSON finds the supervisor's start record in a JSON logs body.
var startedPIDJSON = regexp.MustCompile(`"line":"started, pid (\d+)"`)
