package app_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
)

// batchBody returns a batch of puts that create the ids, each with a
// payload of size bytes.
func batchBody(size int, ids ...string) string {
	operations := make([]string, len(ids))
	for i, id := range ids {
		operations[i] = `{"op":"put","id":"` + id + `","payload":"` + payloadOf(size, 'p') + `","if_none_match":"*"}`
	}
	return `{"operations":[` + strings.Join(operations, ",") + `]}`
}

func TestSyncParallelBatchesOverQuota(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSyncServer(t, e, withProLimits(3000, 1000, 10))
		m := s.proSubscriber(t)
		token := s.token(t, m.id, m.session, nil)

		// Each batch fits alone (2,000 of 3,000 bytes), both together do not.
		responses := s.syncSendAll(t,
			syncRequest{method: "POST", path: "/v1/sync/collections/notes/batch", body: batchBody(1000, "a1", "a2"), token: token},
			syncRequest{method: "POST", path: "/v1/sync/collections/notes/batch", body: batchBody(1000, "b1", "b2"), token: token},
		)

		var ok, over int
		for _, res := range responses {
			switch res.status {
			case http.StatusOK:
				ok++
			case http.StatusRequestEntityTooLarge:
				over++
				expectDetails(t, "batch over the quota", res, map[string]any{
					"scope": "sync_bytes", "used": float64(2000), "limit": float64(3000), "requested": float64(2000)})
			default:
				t.Errorf("batch = %d %s", res.status, res.body)
			}
		}
		if ok != 1 {
			t.Errorf("%d batches passed, want exactly one", ok)
		}
		if over != 1 {
			t.Errorf("%d batches got 413, want exactly one", over)
		}
		info := s.syncState(t, m)
		if info.BytesUsed != 2000 {
			t.Errorf("bytes used = %d, want 2000", info.BytesUsed)
		}
		if info.ItemCount != 2 {
			t.Errorf("item count = %d, want 2", info.ItemCount)
		}
	})
}

func TestSyncBatchLimits(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSyncServer(t, e, withProLimits(1<<20, 100, 3))
		m := s.proSubscriber(t)

		rejected := []struct {
			name    string
			body    string
			status  int
			details map[string]any
		}{
			{"4 operations over a limit of 3", batchBody(1, "a", "b", "c", "d"), http.StatusRequestEntityTooLarge,
				map[string]any{"scope": "sync_batch_items", "used": float64(0), "limit": float64(3), "requested": float64(4)}},
			{"payload over the item limit", batchBody(101, "a"), http.StatusRequestEntityTooLarge,
				map[string]any{"scope": "sync_item_bytes", "id": "a", "limit": float64(100), "requested": float64(101)}},
			{"duplicate id", batchBody(1, "a", "a"), http.StatusBadRequest, map[string]any{"field": "operations[1].id"}},
			{"put without a precondition", `{"operations":[{"op":"put","id":"a","payload":"YQ=="}]}`, http.StatusBadRequest,
				map[string]any{"field": "operations[0].if_match"}},
			{"delete with a payload", `{"operations":[{"op":"delete","id":"a","payload":"YQ==","if_match":1}]}`, http.StatusBadRequest,
				map[string]any{"field": "operations[0].payload"}},
			{"unknown op", `{"operations":[{"op":"patch","id":"a","if_match":1}]}`, http.StatusBadRequest,
				map[string]any{"field": "operations[0].op"}},
			{"no operations", `{"operations":[]}`, http.StatusBadRequest, map[string]any{"field": "operations"}},
		}
		for _, c := range rejected {
			res := s.syncDo(t, m, "POST", "/v1/sync/collections/notes/batch", c.body)
			if expectStatus(t, c.name, res, c.status) {
				expectDetails(t, c.name, res, c.details)
			}
		}

		// Every conflict is listed and nothing is written.
		s.syncPut(t, m, "notes", "x", payloadOf(3, 'x'), http.StatusCreated, "If-None-Match", "*")
		before := s.syncState(t, m)
		conflicting := s.syncDo(t, m, "POST", "/v1/sync/collections/notes/batch",
			`{"operations":[{"op":"put","id":"x","payload":"YQ==","if_match":7},`+
				`{"op":"put","id":"new","payload":"YQ==","if_none_match":"*"},`+
				`{"op":"delete","id":"missing","if_match":1}]}`)
		if conflicting.status != http.StatusConflict {
			t.Fatalf("batch with conflicts = %d %s", conflicting.status, conflicting.body)
		}
		conflicts, _ := conflicting.envelopeError(t).Details["conflicts"].([]any)
		if len(conflicts) != 2 {
			t.Fatalf("conflicts = %v, want x and missing", conflicts)
		}
		first, _ := conflicts[0].(map[string]any)
		current, _ := first["current"].(map[string]any)
		if first["id"] != "x" {
			t.Errorf("first conflict's id = %v, want x", first["id"])
		}
		if current["version"] != float64(1) {
			t.Errorf("first conflict's current.version = %v, want 1", current["version"])
		}
		if current["payload"] != payloadOf(3, 'x') {
			t.Errorf("first conflict's current.payload = %v, want the stored one", current["payload"])
		}
		second, _ := conflicts[1].(map[string]any)
		if second["id"] != "missing" {
			t.Errorf("second conflict's id = %v, want missing", second["id"])
		}
		if second["current"] != nil {
			t.Errorf("second conflict's current = %v, want null", second["current"])
		}
		after := s.syncState(t, m)
		if after.Cursor != before.Cursor {
			t.Errorf("a batch with conflicts moved the cursor from %s to %s", before.Cursor, after.Cursor)
		}
		if after.ItemCount != 1 {
			t.Errorf("a batch with conflicts left %d items, want 1", after.ItemCount)
		}
	})
}

func TestSyncIdempotentRetry(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSyncServer(t, e)
		m := s.proSubscriber(t)
		s.syncPut(t, m, "notes", "n1", payloadOf(4, 'a'), http.StatusCreated, "If-None-Match", "*")

		// The first response is lost on its way, so the client sends the same request again.
		first := s.syncDo(t, m, "PUT", syncItemPath("notes", "n1"), putBody(payloadOf(4, 'b')), "If-Match", `"1"`, "Idempotency-Key", "key-1")
		if first.status != http.StatusOK {
			t.Fatalf("first PUT = %d %s", first.status, first.body)
		}
		before := s.syncState(t, m)
		retry := s.syncDo(t, m, "PUT", syncItemPath("notes", "n1"), putBody(payloadOf(4, 'b')), "If-Match", `"1"`, "Idempotency-Key", "key-1")
		if retry.status != http.StatusOK {
			t.Fatalf("retry = %d %s, want the first answer's 200", retry.status, retry.body)
		}
		if !bytes.Equal(retry.body, first.body) {
			t.Errorf("retry body = %s, want the first answer %s", retry.body, first.body)
		}
		expectHeader(t, "retry", retry, "ETag", `"2"`)
		expectHeader(t, "retry", retry, "Idempotent-Replayed", "true")
		if after := s.syncState(t, m); after.Cursor != before.Cursor {
			t.Errorf("the retry moved the cursor from %s to %s", before.Cursor, after.Cursor)
		}

		other := s.syncDo(t, m, "PUT", syncItemPath("notes", "n1"), putBody(payloadOf(4, 'c')), "If-Match", `"2"`, "Idempotency-Key", "key-1")
		if expectStatus(t, "same key, other body", other, http.StatusConflict) {
			expectDetails(t, "same key, other body", other, map[string]any{"reason": "idempotency_key_reused", "field": "Idempotency-Key"})
		}
		if bad := s.syncDo(t, m, "PUT", syncItemPath("notes", "n1"), putBody(payloadOf(4, 'c')), "If-Match", `"2"`, "Idempotency-Key", "has space"); bad.status != http.StatusBadRequest {
			t.Errorf("malformed key = %d, want 400", bad.status)
		}

		// An error response is not stored, so after the conflict is resolved the same key runs.
		stale := s.syncDo(t, m, "PUT", syncItemPath("notes", "n1"), putBody(payloadOf(4, 'd')), "If-Match", `"1"`, "Idempotency-Key", "key-2")
		if stale.status != http.StatusConflict {
			t.Fatalf("stale PUT = %d, want 409", stale.status)
		}
		if res := s.syncDo(t, m, "PUT", syncItemPath("notes", "n1"), putBody(payloadOf(4, 'd')), "If-Match", `"2"`, "Idempotency-Key", "key-2"); res.status != http.StatusOK {
			t.Errorf("same key after a 409 = %d %s, want 200", res.status, res.body)
		}

		// A record older than idempotency_retention no longer applies.
		s.clock.Advance(25 * time.Hour)
		expired := s.syncDo(t, m, "PUT", syncItemPath("notes", "n1"), putBody(payloadOf(4, 'e')), "If-Match", `"3"`, "Idempotency-Key", "key-1")
		if expectStatus(t, "key reused after 25 hours", expired, http.StatusOK) {
			expectHeader(t, "key reused after 25 hours", expired, "Idempotent-Replayed", "")
		}
	})
}

func TestSyncBatchTwiceChangesNothing(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSyncServer(t, e)
		m := s.proSubscriber(t)
		body := batchBody(100, "a", "b", "c")

		first := s.syncDo(t, m, "POST", "/v1/sync/collections/notes/batch", body, "Idempotency-Key", "batch-1")
		if first.status != http.StatusOK {
			t.Fatalf("first batch = %d %s", first.status, first.body)
		}
		before := s.syncState(t, m)
		second := s.syncDo(t, m, "POST", "/v1/sync/collections/notes/batch", body, "Idempotency-Key", "batch-1")
		if !expectStatus(t, "second batch", second, http.StatusOK) {
			t.FailNow()
		}
		if !bytes.Equal(second.body, first.body) {
			t.Errorf("second batch = %s, want the first response %s", second.body, first.body)
		}
		after := s.syncState(t, m)
		if after.Cursor != before.Cursor {
			t.Errorf("the second batch moved the cursor from %s to %s", before.Cursor, after.Cursor)
		}
		if after.BytesUsed != 300 {
			t.Errorf("bytes used after the second batch = %d, want 300 (was %d)", after.BytesUsed, before.BytesUsed)
		}
		if after.ItemCount != 3 {
			t.Errorf("items after the second batch = %d, want 3", after.ItemCount)
		}
	})
}

func TestSyncEveryWriteAdvancesCursor(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSyncServer(t, e)
		m := s.proSubscriber(t)
		cursor := s.syncState(t, m).Cursor
		envelope := `{"envelope":"` + payloadOf(32, 'k') + `"}`

		writes := []struct {
			name string
			run  func() response
		}{
			{"put", func() response {
				return s.syncDo(t, m, "PUT", syncItemPath("notes", "n1"), putBody(payloadOf(3, 'a')), "If-None-Match", "*")
			}},
			{"batch", func() response {
				return s.syncDo(t, m, "POST", "/v1/sync/collections/notes/batch", batchBody(3, "n2", "n3"))
			}},
			{"delete", func() response {
				return s.syncDo(t, m, "DELETE", syncItemPath("notes", "n1"), "", "If-Match", `"1"`)
			}},
			{"key create", func() response {
				return s.syncDo(t, m, "PUT", "/v1/sync/keys/master", envelope, "If-None-Match", "*")
			}},
			{"key rotation", func() response {
				return s.syncDo(t, m, "PUT", "/v1/sync/keys/master", envelope, "If-Match", `"1"`)
			}},
		}
		for _, write := range writes {
			if res := write.run(); res.status != http.StatusOK && res.status != http.StatusCreated {
				t.Fatalf("%s = %d %s", write.name, res.status, res.body)
			}
			next := s.syncState(t, m).Cursor
			if cursorSeq(t, next) <= cursorSeq(t, cursor) {
				t.Errorf("%s: cursor %s did not advance past %s", write.name, next, cursor)
			}
			cursor = next
		}
		if seq := cursorSeq(t, cursor); seq != 6 {
			t.Errorf("final sequence number = %d, want 6 (one per item write and key write)", seq)
		}
	})
}
