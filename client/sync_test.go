package client_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/client"
	"github.com/nexus-suite/nexus/runtime/clock"
)

// recordedRequest is what a test server received.
type recordedRequest struct {
	method, path, query string
	header              http.Header
	body                []byte
	contentLength       int64
}

// recorder is a test server that records each request and responds with
// respond's status and body.
type recorder struct {
	mu       sync.Mutex
	requests []recordedRequest
	server   *httptest.Server
}

func newRecorder(t *testing.T, respond func(n int, r recordedRequest) (int, http.Header, string)) *recorder {
	t.Helper()
	rec := &recorder{}
	rec.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got := recordedRequest{method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery, header: r.Header.Clone(), body: body, contentLength: r.ContentLength}
		rec.mu.Lock()
		rec.requests = append(rec.requests, got)
		n := len(rec.requests)
		rec.mu.Unlock()
		status, header, text := respond(n, got)
		for name, values := range header {
			w.Header()[name] = values
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, text)
	}))
	t.Cleanup(rec.server.Close)
	return rec
}

func (rec *recorder) all() []recordedRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]recordedRequest(nil), rec.requests...)
}

const itemVersionJSON = `{"data":{"collection":"notes","id":"a/b","version":4,"deleted":false,"size":3,"updated_at":"2026-01-02T03:04:05Z"}}`

func TestPutSyncItemPreconditionHeaders(t *testing.T) {
	tests := []struct {
		name          string
		pre           client.Precondition
		ifMatch       string
		ifNoneMatch   string
		wantErrSubstr string
	}{
		{name: "if match", pre: client.IfMatch(3), ifMatch: `"3"`},
		{name: "if none match", pre: client.IfNoneMatch(), ifNoneMatch: "*"},
		{name: "missing", pre: client.Precondition{}, wantErrSubstr: "needs a precondition"},
		{name: "both", pre: client.Precondition{Version: 2, Create: true}, wantErrSubstr: "not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t, func(int, recordedRequest) (int, http.Header, string) {
				return http.StatusOK, nil, itemVersionJSON
			})
			cl := newClient(t, rec.server.URL, clock.System{}, 0)

			written, err := cl.PutSyncItem(context.Background(), "notes", "a/b", []byte("abc"), tt.pre)
			if tt.wantErrSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrSubstr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErrSubstr)
				}
				if n := len(rec.all()); n != 0 {
					t.Errorf("requests sent = %d, want 0", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("put: %v", err)
			}
			if written.Version != 4 {
				t.Errorf("version = %d, want 4", written.Version)
			}
			got := rec.all()[0]
			if got.path != "/v1/sync/collections/notes/items/a%2Fb" {
				t.Errorf("path = %s, want the id percent-encoded", got.path)
			}
			if h := got.header.Get("If-Match"); h != tt.ifMatch {
				t.Errorf("If-Match = %q, want %q", h, tt.ifMatch)
			}
			if h := got.header.Get("If-None-Match"); h != tt.ifNoneMatch {
				t.Errorf("If-None-Match = %q, want %q", h, tt.ifNoneMatch)
			}
			if !bytes.Equal(got.body, []byte(`{"payload":"YWJj"}`)) {
				t.Errorf("body = %s, want the payload in standard base64", got.body)
			}
			if key := got.header.Get("Idempotency-Key"); len(key) != 32 {
				t.Errorf("Idempotency-Key = %q, want a generated key of 32 hex digits", key)
			}
		})
	}
}

func TestSyncMutationRetriesKeepIdempotencyKey(t *testing.T) {
	rec := newRecorder(t, func(n int, _ recordedRequest) (int, http.Header, string) {
		if n < 3 {
			return http.StatusServiceUnavailable, nil, `{"error":{"code":"INTERNAL_ERROR","message":"busy"}}`
		}
		return http.StatusOK, nil, `{"data":{"items":[]}}`
	})
	clk := &recordingClock{Fake: clock.NewFake(time.Unix(0, 0))}
	cl := newClient(t, rec.server.URL, clk, 0.5)

	ops := []client.SyncOperation{{ID: "a", Payload: []byte("x"), Pre: client.IfNoneMatch()}, {ID: "b", Delete: true, Pre: client.IfMatch(2)}}
	if _, err := cl.SyncBatch(context.Background(), "notes", ops); err != nil {
		t.Fatalf("batch: %v", err)
	}

	requests := rec.all()
	if len(requests) != 3 {
		t.Fatalf("attempts = %d, want 3 (a POST with an Idempotency-Key is retried)", len(requests))
	}
	key := requests[0].header.Get("Idempotency-Key")
	if key == "" {
		t.Fatal("the batch carries no Idempotency-Key")
	}
	for i, r := range requests[1:] {
		if got := r.header.Get("Idempotency-Key"); got != key {
			t.Errorf("retry %d Idempotency-Key = %q, want the first attempt's %q", i+1, got, key)
		}
	}
	want := `{"operations":[{"op":"put","id":"a","payload":"eA==","if_none_match":"*"},{"op":"delete","id":"b","if_match":2}]}`
	if string(requests[0].body) != want {
		t.Errorf("body = %s, want %s", requests[0].body, want)
	}
}

func TestSyncMutationUsesGivenIdempotencyKey(t *testing.T) {
	rec := newRecorder(t, func(int, recordedRequest) (int, http.Header, string) {
		return http.StatusOK, nil, itemVersionJSON
	})
	cl := newClient(t, rec.server.URL, clock.System{}, 0)

	if _, err := cl.DeleteSyncItem(context.Background(), "notes", "a", 7, client.WithIdempotencyKey("delete-a-7")); err != nil {
		t.Fatalf("delete: %v", err)
	}
	got := rec.all()[0]
	if key := got.header.Get("Idempotency-Key"); key != "delete-a-7" {
		t.Errorf("Idempotency-Key = %q, want delete-a-7", key)
	}
	if h := got.header.Get("If-Match"); h != `"7"` {
		t.Errorf("If-Match = %q, want \"7\"", h)
	}
}

func TestSyncBatchRejectsOperationWithoutPrecondition(t *testing.T) {
	cl := newClient(t, "http://127.0.0.1:1", clock.System{}, 0)
	cases := map[string]client.SyncOperation{
		"put without precondition": {ID: "a", Payload: []byte("x")},
		"delete without version":   {ID: "a", Delete: true, Pre: client.IfNoneMatch()},
	}
	for name, op := range cases {
		if _, err := cl.SyncBatch(context.Background(), "notes", []client.SyncOperation{op}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseETag(t *testing.T) {
	valid := map[string]int64{`"3"`: 3, `W/"12"`: 12, `7`: 7, ` "1" `: 1}
	for etag, want := range valid {
		got, err := client.ParseETag(etag)
		if err != nil || got != want {
			t.Errorf("ParseETag(%q) = %d, %v; want %d", etag, got, err, want)
		}
	}
	for _, etag := range []string{``, `"0"`, `"-1"`, `"abc"`, `"3`, `W/`} {
		if _, err := client.ParseETag(etag); err == nil {
			t.Errorf("ParseETag(%q) accepted an invalid tag", etag)
		}
	}
}

func TestGetSyncItemChecksETag(t *testing.T) {
	body := `{"data":{"collection":"notes","id":"a","version":4,"deleted":false,"size":3,"updated_at":"2026-01-02T03:04:05Z","payload":"YWJj"}}`
	etag := `"4"`
	rec := newRecorder(t, func(int, recordedRequest) (int, http.Header, string) {
		return http.StatusOK, http.Header{"Etag": {etag}}, body
	})
	cl := newClient(t, rec.server.URL, clock.System{}, 0)

	item, err := cl.GetSyncItem(context.Background(), "notes", "a")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if item.Version != 4 || string(item.Payload) != "abc" {
		t.Errorf("item = version %d payload %q, want 4 and abc", item.Version, item.Payload)
	}

	etag = `"5"`
	if _, err := cl.GetSyncItem(context.Background(), "notes", "a"); err == nil {
		t.Error("an ETag that differs from the body's version was accepted")
	}
}

func TestEachSyncChangeFollowsCursor(t *testing.T) {
	pages := []string{
		`{"data":{"changes":[{"id":"a","version":1,"deleted":false,"size":1,"updated_at":"2026-01-02T03:04:05Z","payload":"eA=="}],"next_cursor":"c1","done":false}}`,
		`{"data":{"changes":[{"id":"b","version":2,"deleted":true,"size":0,"updated_at":"2026-01-02T03:04:05Z","payload":null}],"next_cursor":"c2","done":true}}`,
	}
	rec := newRecorder(t, func(n int, _ recordedRequest) (int, http.Header, string) {
		return http.StatusOK, nil, pages[n-1]
	})
	cl := newClient(t, rec.server.URL, clock.System{}, 0)

	var seen []string
	cursor, err := cl.EachSyncChange(context.Background(), "notes", "c0", 50, func(change client.SyncChange) error {
		seen = append(seen, fmt.Sprintf("%s:%d:%t:%q", change.ID, change.Version, change.Deleted, change.Payload))
		return nil
	})
	if err != nil {
		t.Fatalf("each change: %v", err)
	}
	if cursor != "c2" {
		t.Errorf("cursor = %q, want c2", cursor)
	}
	if want := []string{`a:1:false:"x"`, `b:2:true:""`}; fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("changes = %v, want %v", seen, want)
	}
	requests := rec.all()
	if requests[0].query != "limit=50&since=c0" || requests[1].query != "limit=50&since=c1" {
		t.Errorf("queries = %q, %q; want since c0 then c1", requests[0].query, requests[1].query)
	}
}

func TestSyncConflictDecoding(t *testing.T) {
	rec := newRecorder(t, func(n int, r recordedRequest) (int, http.Header, string) {
		if strings.HasSuffix(r.path, "/batch") {
			return http.StatusConflict, nil, `{"error":{"code":"CONFLICT","message":"conflict","details":{"conflicts":[{"id":"a","current":null},{"id":"b","current":{"version":3,"deleted":true,"payload":null}}]}}}`
		}
		return http.StatusConflict, nil, `{"error":{"code":"CONFLICT","message":"conflict","details":{"id":"a","current":{"version":5,"deleted":false,"payload":"eHk="}}}}`
	})
	cl := newClient(t, rec.server.URL, clock.System{}, 0)

	_, err := cl.PutSyncItem(context.Background(), "notes", "a", []byte("z"), client.IfMatch(4))
	conflict, ok := client.SyncConflictOf(err)
	if !ok {
		t.Fatalf("SyncConflictOf(%v) found no conflict", err)
	}
	if conflict.ID != "a" || conflict.Current == nil || conflict.Current.Version != 5 || string(conflict.Current.Payload) != "xy" {
		t.Errorf("conflict = %+v, want a at version 5 with payload xy", conflict)
	}

	_, err = cl.SyncBatch(context.Background(), "notes", []client.SyncOperation{{ID: "a", Payload: []byte("z"), Pre: client.IfMatch(1)}})
	conflicts, ok := client.SyncConflictsOf(err)
	if !ok || len(conflicts) != 2 {
		t.Fatalf("SyncConflictsOf(%v) = %v, %v; want two conflicts", err, conflicts, ok)
	}
	if conflicts[0].Current != nil || conflicts[1].Current == nil || !conflicts[1].Current.Deleted {
		t.Errorf("conflicts = %+v, want a missing and b deleted", conflicts)
	}
}

func TestIsResyncRequired(t *testing.T) {
	rec := newRecorder(t, func(int, recordedRequest) (int, http.Header, string) {
		return http.StatusConflict, nil, `{"error":{"code":"CONFLICT","message":"resync","details":{"reason":"resync_required"}}}`
	})
	cl := newClient(t, rec.server.URL, clock.System{}, 0)
	_, err := cl.SyncChanges(context.Background(), "notes", "old", 0)
	if !client.IsResyncRequired(err) {
		t.Errorf("IsResyncRequired(%v) = false", err)
	}
}

func TestUploadProgressReportsBody(t *testing.T) {
	rec := newRecorder(t, func(int, recordedRequest) (int, http.Header, string) {
		return http.StatusOK, nil, `{"data":{}}`
	})
	cl := newClient(t, rec.server.URL, clock.System{}, 0)
	body := bytes.Repeat([]byte("x"), 100_000)
	var last, total int64
	err := cl.Call(context.Background(), client.Request{Method: http.MethodPut, Path: "/upload", RawBody: body,
		ContentType:    "application/octet-stream",
		UploadProgress: func(sent, size int64) { last, total = sent, size }}, nil)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if last != int64(len(body)) || total != int64(len(body)) {
		t.Errorf("progress = %d of %d, want %d of %d", last, total, len(body), len(body))
	}
	if got := rec.all()[0]; len(got.body) != len(body) || got.contentLength != int64(len(body)) {
		t.Errorf("server received %d bytes with Content-Length %d, want %d", len(got.body), got.contentLength, len(body))
	}
}
