package app_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nexus-suite/nexus/cmd/nexus/app"
	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/plugins/host"
	"github.com/nexus-suite/nexus/plugins/plugintest"
	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/storage/storagetest"
)

// The document's checks read a text/event-stream body of the MCP endpoint
// as a string; kin-openapi has no decoder of that type by default.
func init() {
	openapi3filter.RegisterBodyDecoder("text/event-stream",
		func(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
			data, err := io.ReadAll(body)
			return string(data), err
		})
}

// mcpBinary is a plugin binary built for these tests.
type mcpBinary struct {
	path   string
	sha256 string
}

var (
	mcpBuildOnce sync.Once
	mcpBinaries  map[string]mcpBinary
	mcpBuildErr  error
)

// mcpPluginBinaries builds the notes example, the stdio bridge and the
// fault-test plugin once per test process. They go to a fixed folder of
// the user's cache, each build renamed into place, so runs reuse one copy
// instead of leaving binaries behind in temporary folders.
func mcpPluginBinaries(t testing.TB) map[string]mcpBinary {
	t.Helper()
	mcpBuildOnce.Do(func() {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		dir := filepath.Join(cache, "nexus-test", "mcp-plugins")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			mcpBuildErr = err
			return
		}
		built := map[string]mcpBinary{}
		for name, pkg := range map[string]string{
			"notes": plugintest.NotesPackage,
			"stdio": plugintest.StdioBridgePackage,
			"test":  plugintest.TestPluginPackage,
		} {
			binary, err := buildPlugin(dir, name, pkg)
			if err != nil {
				mcpBuildErr = err
				return
			}
			built[name] = binary
		}
		mcpBinaries = built
	})
	if mcpBuildErr != nil {
		t.Fatalf("build plugins: %v", mcpBuildErr)
	}
	return mcpBinaries
}

func buildPlugin(dir, name, pkg string) (mcpBinary, error) {
	target := filepath.Join(dir, name)
	staging := fmt.Sprintf("%s.%d.tmp", target, os.Getpid())
	output, err := exec.Command("go", "build", "-o", staging, pkg).CombinedOutput()
	if err != nil {
		return mcpBinary{}, fmt.Errorf("go build %s: %v\n%s", pkg, err, output)
	}
	digest, err := host.FileSHA256(staging)
	if err != nil {
		return mcpBinary{}, err
	}
	if err := os.Rename(staging, target); err != nil {
		return mcpBinary{}, err
	}
	return mcpBinary{path: target, sha256: hex.EncodeToString(digest)}, nil
}

// catalogEntry returns a catalog entry of binary under name.
func (b mcpBinary) catalogEntry(name string, args ...string) map[string]any {
	list := make([]any, 0, len(args))
	for _, arg := range args {
		list = append(list, arg)
	}
	return map[string]any{"name": name, "path": b.path, "sha256": b.sha256, "args": list}
}

// mcpTestProbeInterval makes /status follow crash loops within a test.
const mcpTestProbeInterval = 50 * time.Millisecond

// startMCPServer starts a server whose MCP catalog has the notes example
// as "notes", the fault-test plugin as "echo", and configure's changes on
// top. Its health probes run every mcpTestProbeInterval.
func startMCPServer(t *testing.T, e engine, configure ...func(section map[string]any)) *testServer {
	t.Helper()
	return startMCPServerWith(t, e, nil, configure...)
}

// startMCPServerWith is startMCPServer with a change of the whole config,
// applied before the section's changes, and for benchmarks too.
func startMCPServerWith(t testing.TB, e engine, change func(cfg *configs.Config), configure ...func(section map[string]any)) *testServer {
	t.Helper()
	binaries := mcpPluginBinaries(t)

	cfg, err := configs.Load("", nil)
	if err != nil {
		t.Fatalf("load default config: %v", err)
	}
	cfg.DataDir = t.TempDir()
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Server.ShutdownTimeout = 5 * time.Second
	cfg.RateLimit.IPPerMinute = 1_000_000
	cfg.RateLimit.IPBurst = 1_000_000
	if e == enginePostgres {
		cfg.Database.URL = storagetest.PostgresURL(t)
		cfg.Redis.URL = storagetest.Redis(t)
		cfg.Redis.Prefix = storagetest.Prefix(t)
	}
	studio := cfg.Tiers.Catalog["studio"]
	studio.Limits.MCPServers = 3
	cfg.Tiers.Catalog["studio"] = studio
	if change != nil {
		change(cfg)
	}

	section := map[string]any{
		"enabled": true,
		"catalog": []any{
			binaries["notes"].catalogEntry("notes"),
			binaries["test"].catalogEntry("echo"),
		},
		"backoff_base":        "1s",
		"backoff_max":         "4s",
		"crash_loop_restarts": 2,
		"crash_loop_window":   "1m",
		"stop_grace":          "1s",
		"idle_timeout":        "10m",
	}
	for _, apply := range configure {
		apply(section)
	}
	cfg.Modules["mcp"] = section

	fake := clock.NewFake(time.Now().Truncate(time.Second))
	logs := &logBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	server, err := app.New(ctx, app.Options{Config: cfg, Logger: logger, Clock: fake, ProbeInterval: mcpTestProbeInterval})
	if err != nil {
		cancel()
		t.Fatalf("start app: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		server.Close()
		t.Fatalf("listen: %v", err)
	}

	served := make(chan error, 1)
	go func() { served <- server.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-served; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &testServer{app: server, url: "http://" + ln.Addr().String(), clock: fake, cfg: cfg, logs: logs, stop: stop}
}

// addCatalog appends entries to the catalog of a startMCPServer section.
func addCatalog(entries ...map[string]any) func(section map[string]any) {
	return func(section map[string]any) {
		for _, entry := range entries {
			section["catalog"] = append(section["catalog"].([]any), entry)
		}
	}
}

// studioMember inserts a member with an active Studio subscription.
func (s *testServer) studioMember(t *testing.T) member {
	t.Helper()
	m := s.member(t)
	s.setSubscription(t, m, "studio", "active", s.clock.Now().Add(90*24*time.Hour))
	return m
}

// mcpServerView is a server as the provisioning routes return it.
type mcpServerView struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Plugin    string          `json:"plugin"`
	Config    json.RawMessage `json:"config"`
	Secrets   []string        `json:"secrets"`
	State     string          `json:"state"`
	Restarts  int             `json:"restarts"`
	LastError *string         `json:"last_error"`
	Endpoint  string          `json:"endpoint"`
}

func (v mcpServerView) lastError() string {
	if v.LastError == nil {
		return ""
	}
	return *v.LastError
}

// createMCPServer provisions a server and fails the test unless it gets 201.
func (s *testServer) createMCPServer(t *testing.T, m member, name, plugin, config string) mcpServerView {
	t.Helper()
	body := fmt.Sprintf(`{"name":%q,"plugin":%q,"config":%s}`, name, plugin, config)
	res := s.as(t, m, "POST", "/v1/mcp/servers", body)
	if res.status != http.StatusCreated {
		t.Fatalf("create %s server = %d %s", plugin, res.status, res.body)
	}
	var view mcpServerView
	res.data(t, &view)
	return view
}

// mcpServer returns GET /v1/mcp/servers/{id}.
func (s *testServer) mcpServer(t *testing.T, m member, id string) mcpServerView {
	t.Helper()
	res := s.as(t, m, "GET", "/v1/mcp/servers/"+id, "")
	if res.status != http.StatusOK {
		t.Fatalf("GET server %s = %d %s", id, res.status, res.body)
	}
	var view mcpServerView
	res.data(t, &view)
	return view
}

// waitMCPState polls the server until it reaches state.
func (s *testServer) waitMCPState(t *testing.T, m member, id, state string) mcpServerView {
	t.Helper()
	var view mcpServerView
	waitFor(t, "server "+id+" to be "+state, func() bool {
		view = s.mcpServer(t, m, id)
		return view.State == state
	})
	return view
}

// mcpLogLines returns the lines of GET …/logs.
func (s *testServer) mcpLogLines(t *testing.T, m member, id string) []string {
	t.Helper()
	res := s.as(t, m, "GET", "/v1/mcp/servers/"+id+"/logs?tail=1000", "")
	if res.status != http.StatusOK {
		t.Fatalf("GET logs = %d %s", res.status, res.body)
	}
	var view struct {
		Lines []struct {
			Source string `json:"source"`
			Line   string `json:"line"`
		} `json:"lines"`
	}
	res.data(t, &view)
	lines := make([]string, 0, len(view.Lines))
	for _, line := range view.Lines {
		lines = append(lines, line.Source+": "+line.Line)
	}
	return lines
}

var startedPID = regexp.MustCompile(`supervisor: started, pid (\d+)`)

// mcpPluginPID returns the pid of the server's latest process, from the
// supervisor's records in its logs.
func (s *testServer) mcpPluginPID(t *testing.T, m member, id string) int {
	t.Helper()
	pid := 0
	for _, line := range s.mcpLogLines(t, m, id) {
		if match := startedPID.FindStringSubmatch(line); match != nil {
			pid, _ = strconv.Atoi(match[1])
		}
	}
	if pid == 0 {
		t.Fatalf("no start recorded in the logs of server %s", id)
	}
	return pid
}

// bearerTransport adds an Authorization header to every request.
type bearerTransport struct {
	token func() string
}

func (b bearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+b.token())
	return http.DefaultTransport.RoundTrip(req)
}

// memberToken returns a function that signs a fresh access token of m at
// the fake clock's time, so a client keeps working after the clock moves.
func (s *testServer) memberToken(m member) func() string {
	return func() string {
		now := s.clock.Now()
		token, err := s.app.Keys().Sign(map[string]any{
			"sub": m.id, "sid": m.session, "jti": strconv.FormatInt(time.Now().UnixNano(), 36),
			"iss": s.cfg.Tokens.Issuer, "aud": s.cfg.Tokens.Audience,
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(s.cfg.Tokens.AccessTTL).Unix(),
		})
		if err != nil {
			return "sign-failed-" + err.Error()
		}
		return token
	}
}

// connectMCP connects the go-sdk client over its Streamable HTTP transport
// to the server's endpoint, with the bearer token that token returns.
func (s *testServer) connectMCP(t *testing.T, serverID string, token func() string) (*mcp.ClientSession, error) {
	t.Helper()
	transport := &mcp.StreamableClientTransport{
		Endpoint:   s.url + "/v1/mcp/servers/" + serverID + "/mcp",
		HTTPClient: &http.Client{Transport: bearerTransport{token: token}, Timeout: time.Minute},
		MaxRetries: -1,
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "nexus-test", Version: "1.0.0"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return client.Connect(ctx, transport, nil)
}

// mustConnectMCP is connectMCP that fails the test on error and closes the
// session at cleanup.
func (s *testServer) mustConnectMCP(t *testing.T, serverID string, token func() string) *mcp.ClientSession {
	t.Helper()
	session, err := s.connectMCP(t, serverID, token)
	if err != nil {
		t.Fatalf("connect MCP client to %s: %v", serverID, err)
	}
	t.Cleanup(func() { _ = session.Close() })
	return session
}

// callTool calls a tool and returns the text of its result.
func callTool(t *testing.T, session *mcp.ClientSession, name string, args map[string]any) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	result, err := session.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		return "", err
	}
	var texts []string
	for _, content := range result.Content {
		if text, ok := content.(*mcp.TextContent); ok {
			texts = append(texts, text.Text)
		}
	}
	if result.IsError {
		return "", fmt.Errorf("tool %s failed: %s", name, strings.Join(texts, " "))
	}
	return strings.Join(texts, " "), nil
}

// toolNames lists the names of the session's tools.
func toolNames(t *testing.T, session *mcp.ClientSession) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	result, err := session.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("list tools: %v", err)
	}
	names := make([]string, 0, len(result.Tools))
	for _, tool := range result.Tools {
		names = append(names, tool.Name)
	}
	return names
}

// processGone reports whether no process with pid runs any more. A zombie
// counts as gone: it runs nothing and waits only to be reaped.
func processGone(pid int) bool {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(status), "\n") {
		if state, ok := strings.CutPrefix(line, "State:"); ok {
			return strings.HasPrefix(strings.TrimSpace(state), "Z")
		}
	}
	return false
}

// requireProcFS skips a test that reads /proc where there is none.
func requireProcFS(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("this test reads process states from /proc, which this system lacks")
	}
}

// mcpRawRequest sends one request to a server's MCP endpoint with the
// member's token; headers alternate names and values.
func (s *testServer) mcpRawRequest(t *testing.T, m member, method, serverID, body string, headers ...string) response {
	t.Helper()
	all := append([]string{"Authorization", "Bearer " + s.memberToken(m)()}, headers...)
	if body != "" {
		all = append(all, "Content-Type", "application/json")
	}
	return s.do(t, method, "/v1/mcp/servers/"+serverID+"/mcp", body, all...)
}

// initializeBody is an initialize request of protocol version 2025-06-18.
const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
