package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/storage/storagetest"
)

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binaryPath != "" {
		os.RemoveAll(filepath.Dir(binaryPath))
	}
	os.Exit(code)
}

// nexusBinary builds the nexus command once per test run.
func nexusBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nexus-bin-")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "nexus")
		output, err := exec.Command("go", "build", "-o", binaryPath, ".").CombinedOutput()
		if err != nil {
			binaryErr = fmt.Errorf("go build: %v\n%s", err, output)
		}
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// process is a running nexus binary with its output collected.
type process struct {
	cmd    *exec.Cmd
	addr   string
	output *syncBuffer
	// exited is closed when the process has exited.
	exited chan struct{}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startNexus runs `nexus serve` in dir with env added, and waits for /health.
func startNexus(t *testing.T, dir string, args []string, env ...string) *process {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(nexusBinary(t), append([]string{"serve"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"NEXUS_SERVER_LISTEN=" + addr, "NEXUS_LOG_FORMAT=json"}, env...)...)
	output := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = output, output
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nexus: %v", err)
	}
	p := &process{cmd: cmd, addr: addr, output: output, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("nexus output:\n%s", output.String())
		}
	})

	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if status, _ := p.get(t, "/health"); status == http.StatusOK {
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("nexus exited before serving: %v\n%s", cmd.ProcessState, output.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("nexus did not answer /health within 20 s\n%s", output.String())
	return nil
}

func (p *process) get(t *testing.T, path string) (int, string) {
	t.Helper()
	client := http.Client{Timeout: 5 * time.Second}
	res, err := client.Get("http://" + p.addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// stop sends sig and returns the exit code.
func (p *process) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("nexus did not exit within 20 s of the signal")
	}
	return p.cmd.ProcessState.ExitCode()
}

// logLines decodes the JSON log lines whose msg is message.
func (p *process) logLines(message string) []map[string]any {
	var lines []map[string]any
	scanner := bufio.NewScanner(strings.NewReader(p.output.String()))
	for scanner.Scan() {
		var line map[string]any
		if json.Unmarshal(scanner.Bytes(), &line) == nil && line["msg"] == message {
			lines = append(lines, line)
		}
	}
	return lines
}

func waitFor(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestServeFreshStartOnDefaults(t *testing.T) {
	dir := t.TempDir()
	p := startNexus(t, dir, nil)

	modes := map[string]os.FileMode{"data": 0o700, "data/master.key": 0o600, "data/nexus.db": 0o600}
	for name, want := range modes {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("stat %s: %v", name, err)
			continue
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s mode = %o, want %o", name, got, want)
		}
	}

	// Log output is buffered and flushed every 100 ms, so wait for the lines.
	enabled := enabledByDefault(t)
	waitFor(t, "one log line per module started", func() bool { return len(p.logLines("module started")) == enabled })
	if len(p.logLines("created signing key")) != 1 {
		t.Error("no log line for the first signing key")
	}
	if status, body := p.get(t, "/ready"); status != http.StatusOK || !strings.Contains(body, `"engine":"sqlite"`) {
		t.Errorf("/ready = %d %s, want 200 on sqlite", status, body)
	}

	if code := p.stop(t, syscall.SIGINT); code != 0 {
		t.Errorf("exit code after SIGINT = %d, want 0", code)
	}

	// A second start reuses the master key and the signing key.
	key, _ := os.ReadFile(filepath.Join(dir, "data/master.key"))
	again := startNexus(t, dir, nil)
	if len(again.logLines("created signing key")) != 0 {
		t.Error("the second start created another signing key")
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "data/master.key")); !bytes.Equal(key, after) {
		t.Error("the second start replaced the master key")
	}
	if code := again.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
}

func TestServeOnPostgresAndRedis(t *testing.T) {
	databaseURL := storagetest.PostgresURL(t)
	redisURL := storagetest.Redis(t)
	p := startNexus(t, t.TempDir(), nil,
		"NEXUS_DATABASE_URL="+databaseURL, "NEXUS_REDIS_URL="+redisURL, "NEXUS_REDIS_PREFIX="+storagetest.Prefix(t))

	status, body := p.get(t, "/ready")
	if status != http.StatusOK || !strings.Contains(body, `"engine":"postgres"`) || !strings.Contains(body, `"engine":"redis"`) {
		t.Errorf("/ready = %d %s, want 200 on postgres and redis", status, body)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
}

func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatalf("write config: %v", err)
	}
}

func TestSIGHUPAppliesModuleSet(t *testing.T) {
	dir := t.TempDir()
	configPath := filepath.Join(dir, "nexus.yaml")
	writeConfig(t, configPath, "modules:\n  entitlements:\n    enabled: true\n")
	p := startNexus(t, dir, []string{"--config", configPath}, "NEXUS_RATE_LIMIT_IP_PER_MINUTE=100000", "NEXUS_RATE_LIMIT_IP_BURST=100000")

	if status, _ := p.get(t, "/v1/entitlements/tiers"); status != http.StatusOK {
		t.Fatalf("tiers before reload = %d, want 200", status)
	}

	// Requests keep flowing during the reloads; none may fail at the transport or with 5xx.
	stopTraffic := make(chan struct{})
	var trafficErrors []string
	var trafficMu sync.Mutex
	var traffic sync.WaitGroup
	traffic.Add(1)
	go func() {
		defer traffic.Done()
		for {
			select {
			case <-stopTraffic:
				return
			default:
			}
			status, body := p.get(t, "/v1/entitlements/tiers")
			if status != http.StatusOK && status != http.StatusNotFound {
				trafficMu.Lock()
				trafficErrors = append(trafficErrors, fmt.Sprintf("%d %s", status, body))
				trafficMu.Unlock()
			}
		}
	}()

	writeConfig(t, configPath, "modules:\n  entitlements:\n    enabled: false\n  billing:\n    enabled: false\n  mcp:\n    enabled: false\n  sync:\n    enabled: false\n  skills:\n    enabled: false\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP: %v", err)
	}
	waitFor(t, "the entitlements module to be disabled", func() bool {
		status, body := p.get(t, "/v1/entitlements/tiers")
		return status == http.StatusNotFound && strings.Contains(body, "module entitlements is disabled")
	})
	if _, body := p.get(t, "/status"); !strings.Contains(body, `"id":"entitlements","name":"Entitlements","status":"disabled"`) {
		t.Errorf("/status = %s, want entitlements disabled", body)
	}

	writeConfig(t, configPath, "modules:\n  entitlements:\n    enabled: true\n  colour: blue\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP: %v", err)
	}
	waitFor(t, "the rejected reload to be logged", func() bool {
		return len(p.logLines("config reload rejected; the running config stays in force")) == 1
	})
	if !strings.Contains(p.output.String(), "modules.colour") {
		t.Error("the rejection does not name the bad key")
	}
	if status, _ := p.get(t, "/v1/entitlements/tiers"); status != http.StatusNotFound {
		t.Errorf("tiers after a rejected reload = %d, want 404 (old config in force)", status)
	}

	writeConfig(t, configPath, "modules:\n  entitlements:\n    enabled: true\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP: %v", err)
	}
	waitFor(t, "the entitlements module to be enabled again", func() bool {
		status, _ := p.get(t, "/v1/entitlements/tiers")
		return status == http.StatusOK
	})

	close(stopTraffic)
	traffic.Wait()
	if len(trafficErrors) > 0 {
		t.Errorf("requests failed during reloads: %v", trafficErrors)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
}

// enabledByDefault returns the number of modules that the embedded
// defaults enable.
func enabledByDefault(t *testing.T) int {
	t.Helper()
	cfg, err := configs.Load("", nil)
	if err != nil {
		t.Fatalf("load default config: %v", err)
	}
	enabled := 0
	for name := range cfg.Modules {
		if cfg.ModuleEnabled(name) {
			enabled++
		}
	}
	return enabled
}

func runNexus(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.CommandContext(context.Background(), nexusBinary(t), args...)
	cmd.Dir = dir
	output, _ := cmd.CombinedOutput()
	return string(output), cmd.ProcessState.ExitCode()
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name     string
		config   string
		wantCode int
		wantText []string
	}{
		{"valid", "server:\n  listen: 127.0.0.1:9999\n", 0, []string{"valid"}},
		{"unknown key", "server:\n  lisen: 127.0.0.1:9999\n", 1, []string{"server.lisen"}},
		{"wrong type", "server:\n  max_body_bytes: big\n", 1, []string{"server.max_body_bytes"}},
		{"out of range", "rate_limit:\n  ip_per_minute: 0\n", 1, []string{"rate_limit.ip_per_minute"}},
		{"unknown module", "modules:\n  billing2:\n    enabled: true\n", 1, []string{"modules.billing2"}},
		{"missing dependency", "modules:\n  auth:\n    enabled: false\n", 1, []string{"module entitlements requires module auth"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			writeConfig(t, path, tc.config)
			output, code := runNexus(t, dir, "config", "check", path)
			if code != tc.wantCode {
				t.Errorf("exit code = %d, want %d (%s)", code, tc.wantCode, output)
			}
			for _, want := range tc.wantText {
				if !strings.Contains(output, want) {
					t.Errorf("output %q lacks %q", output, want)
				}
			}
		})
	}
}

func TestConfigCheckDefaults(t *testing.T) {
	output, code := runNexus(t, t.TempDir(), "config", "check")
	if code != 0 || !strings.Contains(output, "embedded defaults and environment: valid") {
		t.Errorf("config check without a file = %d %q, want the defaults valid", code, output)
	}
}

func TestMigrateCommands(t *testing.T) {
	dir := t.TempDir()
	output, code := runNexus(t, dir, "migrate", "status")
	if code != 0 || !strings.Contains(output, "pending") {
		t.Fatalf("status before up = %d %q, want pending migrations", code, output)
	}
	if output, code := runNexus(t, dir, "migrate", "up"); code != 0 {
		t.Fatalf("migrate up = %d %q", code, output)
	}
	output, code = runNexus(t, dir, "migrate", "status")
	if code != 0 || strings.Contains(output, "pending") || !strings.Contains(output, "00001_core.sql") {
		t.Errorf("status after up = %d %q, want every migration applied", code, output)
	}
}
