package host_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nexus-suite/nexus/plugins/examples/notes/notes"
	"github.com/nexus-suite/nexus/plugins/host"
	"github.com/nexus-suite/nexus/plugins/plugintest"
)

// BenchmarkToolCall measures a tools/call round trip from a go-sdk client to
// the notes server: through plugins/host and the plugin process, and with
// the same server in process over the go-sdk's in-memory transport. It
// reports the p50 and p99 latency of the calls beside ns/op.
func BenchmarkToolCall(b *testing.B) {
	b.Run("in-process", func(b *testing.B) {
		ctx := context.Background()
		server, err := notes.NewServer(ctx, nil)
		if err != nil {
			b.Fatalf("new server: %v", err)
		}
		serverTransport, clientTransport := mcp.NewInMemoryTransports()
		if _, err := server.Connect(ctx, serverTransport, nil); err != nil {
			b.Fatalf("connect server: %v", err)
		}
		benchmarkCalls(b, clientTransport)
	})

	b.Run("plugin", func(b *testing.B) {
		binary := plugintest.Build(b, plugintest.NotesPackage)
		ctx := context.Background()
		p, err := host.Launch(ctx, host.Spec{Path: binary.Path, SHA256: binary.SHA256, Config: json.RawMessage(`{}`)})
		if err != nil {
			b.Fatalf("launch: %v", err)
		}
		defer p.Stop(ctx, stopGrace)

		session, err := p.OpenSession(ctx)
		if err != nil {
			b.Fatalf("open session: %v", err)
		}
		benchmarkCalls(b, plugintest.SessionTransport{Session: session})
	})
}

// benchmarkCalls initializes a client on transport and times b.N calls of
// search_notes, which reads an empty notebook, so the figures are the cost of
// the round trip.
func benchmarkCalls(b *testing.B, transport mcp.Transport) {
	ctx := context.Background()
	client := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1.0.0"}, nil)
	session, err := client.Connect(ctx, transport, nil)
	if err != nil {
		b.Fatalf("initialize: %v", err)
	}
	defer session.Close()

	params := &mcp.CallToolParams{Name: "search_notes", Arguments: map[string]any{"query": "x"}}
	latencies := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		started := time.Now()
		result, err := session.CallTool(ctx, params)
		latencies = append(latencies, time.Since(started))
		if err != nil || result.IsError {
			b.Fatalf("call search_notes: %v", err)
		}
	}
	b.StopTimer()

	slices.Sort(latencies)
	b.ReportMetric(float64(percentile(latencies, 50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(percentile(latencies, 99).Microseconds()), "p99-µs")
}

// percentile returns the p-th percentile of sorted latencies by the
// nearest-rank method.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (len(sorted)*p + 99) / 100
	return sorted[max(rank-1, 0)]
}
