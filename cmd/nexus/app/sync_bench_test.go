package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/cmd/nexus/app"
	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/modules/entitlements"
	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/storage"
	"github.com/nexus-suite/nexus/storage/storagetest"
)

// Shape of the sync benchmarks: batches of 100 items of 1 KiB, and a feed
// of 10,000 changes read in pages of 500.
const (
	benchBatchItems  = 100
	benchItemBytes   = 1024
	benchFeedChanges = 10_000
	benchPageLimit   = 500
)

// syncBench is a server on PostgreSQL and Redis with one Pro user, for the
// sync benchmarks.
type syncBench struct {
	url    string
	token  string
	client *http.Client
}

// startSyncBench starts the app on a fresh PostgreSQL schema with the
// default config, except for a rate limit that never rejects and no
// access log, and signs in one user with the Pro tier. It skips without
// PostgreSQL or Redis unless NEXUS_TEST_SERVICES=required.
func startSyncBench(b *testing.B) *syncBench {
	b.Helper()
	cfg, err := configs.Load("", nil)
	if err != nil {
		b.Fatalf("load default config: %v", err)
	}
	cfg.DataDir = b.TempDir()
	cfg.Database.URL = storagetest.PostgresURL(b)
	cfg.Redis.URL = storagetest.Redis(b)
	cfg.Redis.Prefix = storagetest.Prefix(b)
	cfg.Log.Access = false
	pro := cfg.Tiers.Catalog["pro"]
	pro.Limits.RequestsPerMinute, pro.Limits.Burst = 1_000_000_000, 1_000_000_000
	cfg.Tiers.Catalog["pro"] = pro

	ctx, cancel := context.WithCancel(context.Background())
	server, err := app.New(ctx, app.Options{Config: cfg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		cancel()
		b.Fatalf("start app: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		server.Close()
		b.Fatalf("listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- server.Serve(ctx, ln) }()
	b.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			b.Errorf("serve: %v", err)
		}
	})

	userID, sessionID := "usr_bench", "ses_bench"
	now := time.Now()
	sessions := storage.NewSessions(server.DB())
	if err := sessions.InsertUser(ctx, userID, "bench@example.com", now); err != nil {
		b.Fatalf("insert user: %v", err)
	}
	record := storage.SessionRecord{ID: sessionID, UserID: userID, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(24 * time.Hour)}
	if err := sessions.Insert(ctx, record); err != nil {
		b.Fatalf("insert session: %v", err)
	}
	admin := entitlements.NewAdmin(server.DB(), cfg.Tiers, clock.System{}, server.Users())
	if err := admin.SetOverride(ctx, userID, "bench", entitlements.OverrideInput{Tier: "pro", Reason: "sync benchmark"}); err != nil {
		b.Fatalf("grant pro: %v", err)
	}
	token, err := server.Keys().Sign(map[string]any{
		"sub": userID, "sid": sessionID, "jti": "jti_bench",
		"iss": cfg.Tokens.Issuer, "aud": cfg.Tokens.Audience,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	if err != nil {
		b.Fatalf("sign token: %v", err)
	}

	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	return &syncBench{url: "http://" + ln.Addr().String(), token: token, client: client}
}

// do sends one request and fails the benchmark unless the status is want.
func (s *syncBench) do(b *testing.B, method, path, body string, want int) {
	b.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		b.Fatalf("new request: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := s.client.Do(req)
	if err != nil {
		b.Fatalf("%s %s: %v", method, path, err)
	}
	data, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		b.Fatalf("read %s %s: %v", method, path, err)
	}
	if res.StatusCode != want {
		b.Fatalf("%s %s = %d %.200s", method, path, res.StatusCode, data)
	}
}

// benchBatchBody returns a batch that creates benchBatchItems items of
// benchItemBytes each, with ids prefix-0 to prefix-99.
func benchBatchBody(prefix string) string {
	ids := make([]string, benchBatchItems)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return batchBody(benchItemBytes, ids...)
}

// BenchmarkSyncBatch measures items written per second through POST
// /v1/sync/collections/{collection}/batch, one batch after another from
// one client, on PostgreSQL.
func BenchmarkSyncBatch(b *testing.B) {
	s := startSyncBench(b)
	s.do(b, "POST", "/v1/sync/collections/warmup/batch", benchBatchBody("warmup"), http.StatusOK)

	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		s.do(b, "POST", "/v1/sync/collections/bench/batch", benchBatchBody(fmt.Sprintf("b%d", i)), http.StatusOK)
	}
	elapsed := time.Since(start)
	b.StopTimer()

	b.ReportMetric(float64(b.N*benchBatchItems)/elapsed.Seconds(), "items/s")
}

// BenchmarkSyncFeed measures reading a feed of 10,000 changes in pages of
// 500 on PostgreSQL: the latency of each page and of each full read.
func BenchmarkSyncFeed(b *testing.B) {
	s := startSyncBench(b)
	for i := range benchFeedChanges / benchBatchItems {
		s.do(b, "POST", "/v1/sync/collections/feed/batch", benchBatchBody(fmt.Sprintf("f%d", i)), http.StatusOK)
	}

	var pages, reads []time.Duration
	b.ResetTimer()
	for range b.N {
		readStart := time.Now()
		since, changes := "", 0
		for {
			pageStart := time.Now()
			page := s.feedPage(b, since)
			pages = append(pages, time.Since(pageStart))
			changes += len(page.Changes)
			since = page.NextCursor
			if page.Done {
				break
			}
		}
		reads = append(reads, time.Since(readStart))
		if changes != benchFeedChanges {
			b.Fatalf("read %d changes, want %d", changes, benchFeedChanges)
		}
	}
	b.StopTimer()

	b.ReportMetric(percentileMillis(pages, 50), "page-p50-ms")
	b.ReportMetric(percentileMillis(pages, 99), "page-p99-ms")
	b.ReportMetric(percentileMillis(reads, 50), "read-p50-ms")
	b.ReportMetric(percentileMillis(reads, 99), "read-p99-ms")
}

// feedPage reads one page of the benchmark's feed.
func (s *syncBench) feedPage(b *testing.B, since string) syncPage {
	b.Helper()
	req, err := http.NewRequest("GET", fmt.Sprintf("%s/v1/sync/collections/feed/changes?limit=%d&since=%s", s.url, benchPageLimit, since), nil)
	if err != nil {
		b.Fatalf("new request: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	res, err := s.client.Do(req)
	if err != nil {
		b.Fatalf("read feed: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(res.Body)
		b.Fatalf("read feed = %d %.200s", res.StatusCode, data)
	}
	var envelope struct {
		Data syncPage `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&envelope); err != nil {
		b.Fatalf("decode feed page: %v", err)
	}
	return envelope.Data
}

// percentileMillis returns the p-th percentile of durations, nearest rank, in milliseconds.
func percentileMillis(durations []time.Duration, p int) float64 {
	if len(durations) == 0 {
		return 0
	}
	sorted := slices.Clone(durations)
	slices.Sort(sorted)
	rank := (p*len(sorted) + 99) / 100
	return float64(sorted[max(rank, 1)-1].Microseconds()) / 1000
}
