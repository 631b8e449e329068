package app_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/storage"
)

// syncItemPath returns the path of an item.
func syncItemPath(collection, id string) string {
	return "/v1/sync/collections/" + collection + "/items/" + id
}

// startSyncServer starts a server with the sync module and its options
// set for tests, after configure has changed the config.
func startSyncServer(t *testing.T, e engine, configure ...func(cfg *configs.Config)) *testServer {
	t.Helper()
	return startEntitlementsServer(t, e, append([]func(cfg *configs.Config){func(cfg *configs.Config) {
		cfg.Modules["sync"]["tombstone_retention"] = "1h"
		cfg.Modules["sync"]["purge_interval"] = "1m"
		// Every request signs a token at the fake clock's time, and
		// tests move that clock by hours; the rate limit stays out of the way.
		pro := cfg.Tiers.Catalog["pro"]
		pro.Limits.RequestsPerMinute = 1_000_000
		pro.Limits.Burst = 1_000_000
		cfg.Tiers.Catalog["pro"] = pro
	}}, configure...)...)
}

// withProLimits sets the Pro tier's sync quota, item size and batch size.
func withProLimits(syncBytes, itemBytes int64, batchItems int) func(cfg *configs.Config) {
	return func(cfg *configs.Config) {
		pro := cfg.Tiers.Catalog["pro"]
		pro.Limits.SyncBytes = syncBytes
		pro.Limits.SyncItemBytes = itemBytes
		pro.Limits.SyncBatchItems = batchItems
		cfg.Tiers.Catalog["pro"] = pro
	}
}

// proSubscriber inserts a member with an active Pro subscription for 90
// days, which a test can cancel to downgrade the member to Core.
func (s *testServer) proSubscriber(t *testing.T) member {
	t.Helper()
	m := s.member(t)
	s.setSubscription(t, m, "pro", "active", s.clock.Now().Add(90*24*time.Hour))
	return m
}

// secondSession inserts another session of the member, as a second device
// signed in to the same account would have, and returns its id.
func (s *testServer) secondSession(t *testing.T, m member) string {
	t.Helper()
	id := "ses_" + randomID(t)
	now := s.clock.Now()
	record := storage.SessionRecord{ID: id, UserID: m.id, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(60 * 24 * time.Hour)}
	if err := storage.NewSessions(s.app.DB()).Insert(context.Background(), record); err != nil {
		t.Fatalf("insert session: %v", err)
	}
	return id
}

// syncDo sends a request of the member; headers alternate names and
// values, and a body is sent as JSON.
func (s *testServer) syncDo(t *testing.T, m member, method, path, body string, headers ...string) response {
	t.Helper()
	all := append([]string{"Authorization", "Bearer " + s.token(t, m.id, m.session, nil)}, headers...)
	if body != "" {
		all = append(all, "Content-Type", "application/json")
	}
	return s.do(t, method, path, body, all...)
}

// payloadOf returns a base64 payload of n bytes, each the byte fill.
func payloadOf(n int, fill byte) string {
	return base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(rune(fill)), n)))
}

// putBody returns the JSON body of an item PUT.
func putBody(payload string) string {
	return `{"payload":"` + payload + `"}`
}

// syncItem is an item or tombstone as responses show it.
type syncItem struct {
	Collection string  `json:"collection"`
	ID         string  `json:"id"`
	Version    int64   `json:"version"`
	Deleted    bool    `json:"deleted"`
	Size       int64   `json:"size"`
	Payload    *string `json:"payload"`
}

// syncPage is a page of the change feed.
type syncPage struct {
	Changes    []syncItem `json:"changes"`
	NextCursor string     `json:"next_cursor"`
	Done       bool       `json:"done"`
}

// syncInfo is GET /v1/sync/info's data.
type syncInfo struct {
	Cursor      string `json:"cursor"`
	BytesUsed   int64  `json:"bytes_used"`
	BytesLimit  int64  `json:"bytes_limit"`
	ItemCount   int64  `json:"item_count"`
	Collections []struct {
		Name       string `json:"name"`
		Cursor     string `json:"cursor"`
		Bytes      int64  `json:"bytes"`
		ItemCount  int64  `json:"item_count"`
		Tombstones int64  `json:"tombstone_count"`
	} `json:"collections"`
}

// syncPut creates or replaces an item and fails the test unless the status is want.
func (s *testServer) syncPut(t *testing.T, m member, collection, id, payload string, want int, precondition ...string) syncItem {
	t.Helper()
	res := s.syncDo(t, m, "PUT", syncItemPath(collection, id), putBody(payload), precondition...)
	if res.status != want {
		t.Fatalf("PUT %s/%s = %d %s, want %d", collection, id, res.status, res.body, want)
	}
	var written syncItem
	res.data(t, &written)
	return written
}

// syncState returns the member's GET /v1/sync/info.
func (s *testServer) syncState(t *testing.T, m member) syncInfo {
	t.Helper()
	res := s.syncDo(t, m, "GET", "/v1/sync/info", "")
	if res.status != http.StatusOK {
		t.Fatalf("GET /v1/sync/info = %d %s", res.status, res.body)
	}
	var info syncInfo
	res.data(t, &info)
	return info
}

// syncFeed pages the collection's change feed from since until done.
func (s *testServer) syncFeed(t *testing.T, m member, collection, since string, limit int) ([]syncItem, string) {
	t.Helper()
	var all []syncItem
	for range 10_000 {
		page := s.syncFeedPage(t, m, collection, since, limit)
		all = append(all, page.Changes...)
		since = page.NextCursor
		if page.Done {
			return all, since
		}
	}
	t.Fatal("the feed never reported done")
	return nil, ""
}

// syncFeedPage returns one page of the change feed.
func (s *testServer) syncFeedPage(t *testing.T, m member, collection, since string, limit int) syncPage {
	t.Helper()
	path := "/v1/sync/collections/" + collection + "/changes?since=" + since
	if limit > 0 {
		path += "&limit=" + strconv.Itoa(limit)
	}
	res := s.syncDo(t, m, "GET", path, "")
	if res.status != http.StatusOK {
		t.Fatalf("GET %s = %d %s", path, res.status, res.body)
	}
	var page syncPage
	res.data(t, &page)
	return page
}

// cursorSeq decodes a cursor's sequence number. Clients treat cursors as
// opaque; the tests know the format (base64url of a format byte and a
// big-endian uint64) to check that cursors move forward.
func cursorSeq(t *testing.T, cursor string) uint64 {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(raw) != 9 {
		t.Fatalf("cursor %q is not in the expected format: %v", cursor, err)
	}
	return binary.BigEndian.Uint64(raw[1:])
}

// conflictCurrent decodes details.current of a 409 on one item.
func conflictCurrent(t *testing.T, res response) *syncItem {
	t.Helper()
	var envelope struct {
		Error struct {
			Code    string `json:"code"`
			Details struct {
				Current *syncItem `json:"current"`
			} `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(res.body, &envelope); err != nil {
		t.Fatalf("decode 409 %s: %v", res.body, err)
	}
	if envelope.Error.Code != "CONFLICT" {
		t.Fatalf("code = %q, want CONFLICT: %s", envelope.Error.Code, res.body)
	}
	return envelope.Error.Details.Current
}

// syncRequest is one request for syncSend, which goroutines other than the test's
// may call: it reports failures as errors instead of through t.
type syncRequest struct {
	method, path, body, token string
	headers                   []string
}

// syncSend sends req without checking the response against the document.
// The test checks it later with checkDocumented.
func (s *testServer) syncSend(req syncRequest) (response, error) {
	var reader io.Reader
	if req.body != "" {
		reader = strings.NewReader(req.body)
	}
	httpReq, err := http.NewRequest(req.method, s.url+req.path, reader)
	if err != nil {
		return response{}, err
	}
	httpReq.Header.Set("Authorization", "Bearer "+req.token)
	if req.body != "" {
		httpReq.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(req.headers); i += 2 {
		httpReq.Header.Set(req.headers[i], req.headers[i+1])
	}
	res, err := testClient.Do(httpReq)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: res.StatusCode, header: res.Header, body: data}, nil
}

// checkDocumented checks a response of syncSend against the OpenAPI document.
func checkDocumented(t *testing.T, req syncRequest, res response) {
	t.Helper()
	if err := documentValidator(t).Check(req.method, req.path, res.status, res.header, res.body); err != nil {
		t.Errorf("%s %s answered %d outside the OpenAPI document: %v\n%s", req.method, req.path, res.status, err, res.body)
	}
}

// syncSendAll sends every request at once, each from its own goroutine, and
// returns the responses in the order of requests.
func (s *testServer) syncSendAll(t *testing.T, requests ...syncRequest) []response {
	t.Helper()
	responses := make([]response, len(requests))
	errs := make([]error, len(requests))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, req := range requests {
		wg.Go(func() {
			<-start
			responses[i], errs[i] = s.syncSend(req)
		})
	}
	close(start)
	wg.Wait()

	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s %s: %v", requests[i].method, requests[i].path, err)
		}
		checkDocumented(t, requests[i], responses[i])
	}
	return responses
}

// expectStatus reports a response whose status is not want, with its body,
// and returns whether the status matched.
func expectStatus(t *testing.T, request string, res response, want int) bool {
	t.Helper()
	if res.status != want {
		t.Errorf("%s = %d %s, want %d", request, res.status, res.body, want)
		return false
	}
	return true
}

// expectDetails reports each key of want whose value in the error
// envelope's details differs. JSON numbers decode as float64, so want
// holds them as float64 too.
func expectDetails(t *testing.T, request string, res response, want map[string]any) {
	t.Helper()
	details := res.envelopeError(t).Details
	for key, value := range want {
		if details[key] != value {
			t.Errorf("%s: details.%s = %v, want %v", request, key, details[key], value)
		}
	}
}

// expectHeader reports a response header whose value is not want.
func expectHeader(t *testing.T, request string, res response, name, want string) {
	t.Helper()
	if got := res.header.Get(name); got != want {
		t.Errorf("%s: %s = %q, want %q", request, name, got, want)
	}
}
