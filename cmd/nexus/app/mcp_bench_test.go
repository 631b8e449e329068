package app_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/plugins/examples/notes/notes"
	"github.com/nexus-suite/nexus/plugins/host"
	"github.com/nexus-suite/nexus/plugins/plugintest"
	"github.com/nexus-suite/nexus/storage"
)

// BenchmarkMCPToolCall measures the round trip of one tools/call of the
// notes example (search_notes on an empty notebook), one call at a time:
//
//   - in_process: the go-sdk client and the notes *mcp.Server in this
//     process over the SDK's in-memory transport;
//   - plugin: the same client over one plugins/host session of the notes
//     plugin process, without HTTP;
//   - edge_sse: the go-sdk Streamable HTTP client through the nexus edge
//     (JWT, admission by the user's actor, the MCP endpoint responding with
//     text/event-stream) and the plugin process;
//   - edge_json: a plain HTTP client posting the JSON-RPC request through
//     the same path, with the response as application/json.
//
// Each reports the median and the 99th percentile of the round trips in
// microseconds beside ns/op. Run it with a fixed count, for example
// go test -run '^$' -bench BenchmarkMCPToolCall -benchtime 3000x ./cmd/nexus/app/
func BenchmarkMCPToolCall(b *testing.B) {
	// Each client gets its own params, because the SDK adds protocol
	// metadata to them under the version it negotiated.
	newCall := func() *mcp.CallToolParams {
		return &mcp.CallToolParams{Name: "search_notes", Arguments: map[string]any{"query": "milk"}}
	}

	b.Run("in_process", func(b *testing.B) {
		server, err := notes.NewServer(context.Background(), nil)
		if err != nil {
			b.Fatalf("notes server: %v", err)
		}
		clientTransport, serverTransport := mcp.NewInMemoryTransports()
		serverSession, err := server.Connect(context.Background(), serverTransport, nil)
		if err != nil {
			b.Fatalf("connect server: %v", err)
		}
		defer serverSession.Close()
		session := connectBenchClient(b, clientTransport)
		call := newCall()
		measureCalls(b, func() error { return callOnce(session, call) })
	})

	b.Run("plugin", func(b *testing.B) {
		binary := mcpPluginBinaries(b)["notes"]
		digest, _ := hex.DecodeString(binary.sha256)
		plugin, err := host.Launch(context.Background(), host.Spec{Path: binary.path, SHA256: digest, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatalf("launch notes plugin: %v", err)
		}
		defer plugin.Stop(context.Background(), time.Second)
		stream, err := plugin.OpenSession(context.Background())
		if err != nil {
			b.Fatalf("open session: %v", err)
		}
		session := connectBenchClient(b, plugintest.SessionTransport{Session: stream})
		call := newCall()
		measureCalls(b, func() error { return callOnce(session, call) })
	})

	s := startMCPServerWith(b, engineSQLite, func(cfg *configs.Config) {
		cfg.Tiers.Default = "studio"
		studio := cfg.Tiers.Catalog["studio"]
		studio.Limits.RequestsPerMinute, studio.Limits.Burst = 100_000_000, 100_000_000
		cfg.Tiers.Catalog["studio"] = studio
		cfg.Log.Access = false
	})
	m := benchMember(b, s)
	token := s.memberToken(m)()
	serverID := benchServer(b, s, token)

	b.Run("edge_sse", func(b *testing.B) {
		transport := &mcp.StreamableClientTransport{
			Endpoint:   s.url + "/v1/mcp/servers/" + serverID + "/mcp",
			HTTPClient: &http.Client{Transport: bearerTransport{token: func() string { return token }}},
		}
		session := connectBenchClient(b, transport)
		call := newCall()
		measureCalls(b, func() error { return callOnce(session, call) })
	})

	b.Run("edge_json", func(b *testing.B) {
		client := &http.Client{}
		endpoint := s.url + "/v1/mcp/servers/" + serverID + "/mcp"
		post := func(body, sessionID string) (*http.Response, error) {
			req, _ := http.NewRequest("POST", endpoint, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json")
			if sessionID != "" {
				req.Header.Set("Mcp-Session-Id", sessionID)
				req.Header.Set("MCP-Protocol-Version", "2025-06-18")
			}
			return client.Do(req)
		}
		res, err := post(initializeBody, "")
		if err != nil || res.StatusCode != http.StatusOK {
			b.Fatalf("initialize: %v %v", err, res)
		}
		sessionID := res.Header.Get("Mcp-Session-Id")
		res.Body.Close()

		id := 1
		measureCalls(b, func() error {
			id++
			body := `{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"tools/call","params":{"name":"search_notes","arguments":{"query":"milk"}}}`
			res, err := post(body, sessionID)
			if err != nil {
				return err
			}
			data, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				return err
			}
			if res.StatusCode != http.StatusOK || !bytes.Contains(data, []byte(`"result"`)) {
				return fmt.Errorf("tools/call = %d %s", res.StatusCode, data)
			}
			return nil
		})
	})
}

func connectBenchClient(b *testing.B, transport mcp.Transport) *mcp.ClientSession {
	b.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "nexus-bench", Version: "1.0.0"}, nil)
	session, err := client.Connect(context.Background(), transport, nil)
	if err != nil {
		b.Fatalf("connect client: %v", err)
	}
	b.Cleanup(func() { _ = session.Close() })
	return session
}

func callOnce(session *mcp.ClientSession, params *mcp.CallToolParams) error {
	result, err := session.CallTool(context.Background(), params)
	if err != nil {
		return err
	}
	if result.IsError {
		return fmt.Errorf("tool %s failed", params.Name)
	}
	return nil
}

// measureCalls runs call b.N times and reports the median and the 99th
// percentile of its durations.
func measureCalls(b *testing.B, call func() error) {
	b.Helper()
	for range 20 {
		if err := call(); err != nil {
			b.Fatalf("warm-up call: %v", err)
		}
	}

	durations := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := call(); err != nil {
			b.Fatalf("call: %v", err)
		}
		durations = append(durations, time.Since(start))
	}
	b.StopTimer()

	slices.Sort(durations)
	percentile := func(p float64) float64 {
		return float64(durations[int(p*float64(len(durations)-1))].Nanoseconds()) / 1000
	}
	b.ReportMetric(percentile(0.50), "p50-µs")
	b.ReportMetric(percentile(0.99), "p99-µs")
}

// benchMember inserts a user and a session for a benchmark.
func benchMember(b *testing.B, s *testServer) member {
	b.Helper()
	m := member{id: fmt.Sprintf("usr_bench%d", time.Now().UnixNano()), session: fmt.Sprintf("ses_bench%d", time.Now().UnixNano())}
	now := s.clock.Now()
	sessions := storage.NewSessions(s.app.DB())
	ctx := context.Background()
	if err := sessions.InsertUser(ctx, m.id, m.id+"@example.com", now); err != nil {
		b.Fatalf("insert user: %v", err)
	}
	record := storage.SessionRecord{ID: m.session, UserID: m.id, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	if err := sessions.Insert(ctx, record); err != nil {
		b.Fatalf("insert session: %v", err)
	}
	return m
}

// benchServer provisions a notes server and returns its id.
func benchServer(b *testing.B, s *testServer, token string) string {
	b.Helper()
	req, _ := http.NewRequest("POST", s.url+"/v1/mcp/servers", strings.NewReader(`{"name":"bench","plugin":"notes"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatalf("create server: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusCreated {
		b.Fatalf("create server = %d %s", res.StatusCode, body)
	}
	id := string(body[bytes.Index(body, []byte(`"id":"`))+6:])
	return id[:strings.Index(id, `"`)]
}
