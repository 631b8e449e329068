package app_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestSyncTwoWritersSameVersion(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSyncServer(t, e)
		m := s.proSubscriber(t)
		token := s.token(t, m.id, m.session, nil)

		// Several rounds, so that a missing lock would show as two 200s.
		for round := range 5 {
			id := "item-" + strconv.Itoa(round)
			s.syncPut(t, m, "notes", id, payloadOf(10, 'a'), http.StatusCreated, "If-None-Match", "*")

			payloads := []string{payloadOf(20, 'b'), payloadOf(30, 'c')}
			responses := s.syncSendAll(t,
				syncRequest{method: "PUT", path: syncItemPath("notes", id), body: putBody(payloads[0]), token: token, headers: []string{"If-Match", `"1"`}},
				syncRequest{method: "PUT", path: syncItemPath("notes", id), body: putBody(payloads[1]), token: token, headers: []string{"If-Match", `"1"`}},
			)

			winner, loser := -1, -1
			for i, res := range responses {
				switch res.status {
				case http.StatusOK:
					winner = i
				case http.StatusConflict:
					loser = i
				default:
					t.Fatalf("round %d: writer %d = %d %s", round, i, res.status, res.body)
				}
			}
			if winner < 0 {
				t.Fatalf("round %d: no writer got 200", round)
			}
			if loser < 0 {
				t.Fatalf("round %d: both writers got 200, want one 409", round)
			}
			if etag := responses[winner].header.Get("ETag"); etag != `"2"` {
				t.Errorf("round %d: winner's ETag = %q, want \"2\"", round, etag)
			}
			current := conflictCurrent(t, responses[loser])
			if current == nil {
				t.Fatalf("round %d: 409 has no current item", round)
			}
			if current.Version != 2 {
				t.Errorf("round %d: 409 current.version = %d, want the winner's 2", round, current.Version)
			}
			if current.Deleted {
				t.Errorf("round %d: 409 current is deleted, want live", round)
			}
			if current.Payload == nil || *current.Payload != payloads[winner] {
				t.Errorf("round %d: 409 carries payload %v, want the winner's %s", round, current.Payload, payloads[winner])
			}
		}
	})
}

func TestSyncItemLifecycle(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSyncServer(t, e)
		m := s.proSubscriber(t)
		path := syncItemPath("notes", "a b:c~1")

		created := s.syncPut(t, m, "notes", "a%20b:c~1", payloadOf(5, 'x'), http.StatusCreated, "If-None-Match", "*")
		want := syncItem{Collection: "notes", ID: "a b:c~1", Version: 1, Size: 5}
		if created != want {
			t.Errorf("created = %+v, want %+v", created, want)
		}

		got := s.syncDo(t, m, "GET", strings.ReplaceAll(path, " ", "%20"), "")
		if !expectStatus(t, "GET", got, http.StatusOK) {
			t.FailNow()
		}
		expectHeader(t, "GET", got, "ETag", `"1"`)
		expectHeader(t, "GET", got, "X-Sync-Bytes-Used", "5")
		expectHeader(t, "GET", got, "X-Sync-Bytes-Limit", "10737418240")
		var item syncItem
		got.data(t, &item)
		if item.Payload == nil || *item.Payload != payloadOf(5, 'x') {
			t.Errorf("GET payload = %v, want the stored one", item.Payload)
		}

		// A bare number is accepted for If-Match too.
		updated := s.syncPut(t, m, "notes", "a%20b:c~1", payloadOf(7, 'y'), http.StatusOK, "If-Match", "1")
		if updated.Version != 2 {
			t.Errorf("updated version = %d, want 2", updated.Version)
		}
		again := s.syncDo(t, m, "PUT", syncItemPath("notes", "a%20b:c~1"), putBody(payloadOf(1, 'z')), "If-None-Match", "*")
		if again.status != http.StatusConflict {
			t.Errorf("If-None-Match on a live item = %d, want 409", again.status)
		}

		// An id may hold any printable ASCII character, '/' included, sent
		// percent-encoded. The document validator would split the path at
		// %2F, so these responses are not checked against it.
		token := s.token(t, m.id, m.session, nil)
		slashed := syncRequest{method: "PUT", path: syncItemPath("notes", "dir%2F..%2Fnote"), body: putBody(payloadOf(2, 's')), token: token, headers: []string{"If-None-Match", "*"}}
		if res, err := s.syncSend(slashed); err != nil || res.status != http.StatusCreated {
			t.Fatalf("PUT of an id with slashes = %v %d %s", err, res.status, res.body)
		}
		slashed.method, slashed.body, slashed.headers = "GET", "", nil
		if res, err := s.syncSend(slashed); err != nil || res.status != http.StatusOK || !strings.Contains(string(res.body), `"id":"dir/../note"`) {
			t.Fatalf("GET of an id with slashes = %v %d %s", err, res.status, res.body)
		}
		if res := s.syncDo(t, m, "GET", syncItemPath("notes", "note"), ""); res.status != http.StatusNotFound {
			t.Errorf("the id dir/../note reached the item note: %d", res.status)
		}

		deleted := s.syncDo(t, m, "DELETE", syncItemPath("notes", "a%20b:c~1"), "", "If-Match", `"2"`)
		if !expectStatus(t, "DELETE", deleted, http.StatusOK) {
			t.FailNow()
		}
		expectHeader(t, "DELETE", deleted, "ETag", `"3"`)
		deletedItem := s.syncDo(t, m, "GET", syncItemPath("notes", "a%20b:c~1"), "")
		if !expectStatus(t, "GET after delete", deletedItem, http.StatusNotFound) {
			t.FailNow()
		}
		expectDetails(t, "GET after delete", deletedItem, map[string]any{"deleted": true, "version": float64(3)})
		if twice := s.syncDo(t, m, "DELETE", syncItemPath("notes", "a%20b:c~1"), "", "If-Match", `"3"`); twice.status != http.StatusNotFound {
			t.Errorf("DELETE of a tombstone = %d, want 404", twice.status)
		}

		// What is left is the item dir/../note of 2 bytes and one tombstone.
		info := s.syncState(t, m)
		if info.BytesUsed != 2 {
			t.Errorf("bytes used = %d, want 2", info.BytesUsed)
		}
		if info.ItemCount != 1 {
			t.Errorf("item count = %d, want 1", info.ItemCount)
		}
		if len(info.Collections) != 1 {
			t.Fatalf("collections = %+v, want notes", info.Collections)
		}
		if info.Collections[0].Tombstones != 1 {
			t.Errorf("tombstones = %d, want 1", info.Collections[0].Tombstones)
		}
	})
}

func TestSyncDeleteReachesOtherDevice(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSyncServer(t, e)
		deviceA := s.proSubscriber(t)
		deviceB := member{id: deviceA.id, session: s.secondSession(t, deviceA)}

		s.syncPut(t, deviceA, "notes", "n1", payloadOf(8, 'a'), http.StatusCreated, "If-None-Match", "*")
		s.syncPut(t, deviceA, "notes", "n2", payloadOf(8, 'b'), http.StatusCreated, "If-None-Match", "*")
		seen, cursor := s.syncFeed(t, deviceB, "notes", "", 0)
		if len(seen) != 2 {
			t.Fatalf("B's first sync saw %d changes, want 2", len(seen))
		}

		if res := s.syncDo(t, deviceA, "DELETE", syncItemPath("notes", "n1"), "", "If-Match", `"1"`); res.status != http.StatusOK {
			t.Fatalf("A's delete = %d %s", res.status, res.body)
		}

		changes, _ := s.syncFeed(t, deviceB, "notes", cursor, 0)
		if len(changes) != 1 {
			t.Fatalf("B's next sync saw %d changes, want the one tombstone: %+v", len(changes), changes)
		}
		want := syncItem{ID: "n1", Version: 2, Deleted: true}
		if changes[0] != want {
			t.Errorf("B's change = %+v, want the tombstone %+v with a null payload", changes[0], want)
		}
	})
}

func TestSyncStaleBaseAfterDelete(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSyncServer(t, e)
		m := s.proSubscriber(t)

		s.syncPut(t, m, "notes", "n1", payloadOf(4, 'a'), http.StatusCreated, "If-None-Match", "*")
		s.syncPut(t, m, "notes", "n1", payloadOf(4, 'b'), http.StatusOK, "If-Match", `"1"`)
		if res := s.syncDo(t, m, "DELETE", syncItemPath("notes", "n1"), "", "If-Match", `"2"`); res.status != http.StatusOK {
			t.Fatalf("delete = %d %s", res.status, res.body)
		}

		// A device that last saw version 1 or 2 pushes its edit.
		for _, base := range []string{`"1"`, `"2"`} {
			res := s.syncDo(t, m, "PUT", syncItemPath("notes", "n1"), putBody(payloadOf(4, 'c')), "If-Match", base)
			if res.status != http.StatusConflict {
				t.Fatalf("push on base %s after the delete = %d %s, want 409", base, res.status, res.body)
			}
			current := conflictCurrent(t, res)
			if current == nil {
				t.Fatalf("409 on base %s has no current item, want the tombstone", base)
			}
			if want := (syncItem{Version: 3, Deleted: true}); *current != want {
				t.Errorf("409 current on base %s = %+v, want the tombstone %+v with a null payload", base, *current, want)
			}
		}
		batch := s.syncDo(t, m, "POST", "/v1/sync/collections/notes/batch",
			`{"operations":[{"op":"put","id":"n1","payload":"`+payloadOf(4, 'c')+`","if_match":2}]}`)
		if batch.status != http.StatusConflict {
			t.Errorf("batch push on a stale base = %d, want 409", batch.status)
		}

		// Re-creating needs the tombstone's version, or If-None-Match.
		recreated := s.syncPut(t, m, "notes", "n1", payloadOf(4, 'd'), http.StatusCreated, "If-Match", `"3"`)
		if recreated.Version != 4 {
			t.Errorf("re-created version = %d, want 4", recreated.Version)
		}
	})
}

func TestSyncOtherUsersItemsInvisible(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSyncServer(t, e)
		owner, other := s.proSubscriber(t), s.proSubscriber(t)
		s.syncPut(t, owner, "notes", "secret", payloadOf(6, 's'), http.StatusCreated, "If-None-Match", "*")

		checks := []struct {
			name    string
			method  string
			headers []string
			body    string
		}{
			{"get", "GET", nil, ""},
			{"put on its version", "PUT", []string{"If-Match", `"1"`}, putBody(payloadOf(1, 'x'))},
			{"delete", "DELETE", []string{"If-Match", `"1"`}, ""},
		}
		for _, c := range checks {
			res := s.syncDo(t, other, c.method, syncItemPath("notes", "secret"), c.body, c.headers...)
			if res.status != http.StatusNotFound {
				t.Errorf("%s of another user's item = %d %s, want 404", c.name, res.status, res.body)
			}
		}
		if changes, _ := s.syncFeed(t, other, "notes", "", 0); len(changes) != 0 {
			t.Errorf("the other user's feed shows %d changes, want none", len(changes))
		}

		// The other user's own item of the same id is a separate item.
		s.syncPut(t, other, "notes", "secret", payloadOf(2, 'o'), http.StatusCreated, "If-None-Match", "*")
		res := s.syncDo(t, owner, "GET", syncItemPath("notes", "secret"), "")
		var item syncItem
		res.data(t, &item)
		if item.Version != 1 {
			t.Errorf("owner's item version after the other user's writes = %d, want 1", item.Version)
		}
		if item.Payload == nil || *item.Payload != payloadOf(6, 's') {
			t.Errorf("owner's payload after the other user's writes = %v, want the original", item.Payload)
		}
		if info := s.syncState(t, owner); info.BytesUsed != 6 {
			t.Errorf("owner's bytes used = %d, want 6", info.BytesUsed)
		}
	})
}

func TestSyncRejectsInvalidInput(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSyncServer(t, e, withProLimits(1<<20, 64, 10))
		m := s.proSubscriber(t)
		create := []string{"If-None-Match", "*"}

		cases := []struct {
			name       string
			method     string
			path       string
			body       string
			headers    []string
			wantStatus int
			wantCode   string
			wantField  string
		}{
			{"payload not base64", "PUT", syncItemPath("notes", "a"), putBody("not base64!"), create, 400, "VALIDATION_ERROR", "payload"},
			{"payload without padding", "PUT", syncItemPath("notes", "a"), putBody("YWJjZA"), create, 400, "VALIDATION_ERROR", "payload"},
			{"payload with a line break", "PUT", syncItemPath("notes", "a"), putBody(`YWJj\nZGVm`), create, 400, "VALIDATION_ERROR", "payload"},
			{"payload missing", "PUT", syncItemPath("notes", "a"), `{}`, create, 400, "VALIDATION_ERROR", "payload"},
			{"payload over the item limit", "PUT", syncItemPath("notes", "a"), putBody(payloadOf(65, 'a')), create, 413, "QUOTA_EXCEEDED", ""},
			{"no precondition", "PUT", syncItemPath("notes", "a"), putBody(payloadOf(1, 'a')), nil, 400, "VALIDATION_ERROR", "If-Match"},
			{"If-Match star", "PUT", syncItemPath("notes", "a"), putBody(payloadOf(1, 'a')), []string{"If-Match", "*"}, 400, "VALIDATION_ERROR", "If-Match"},
			{"If-None-Match not star", "PUT", syncItemPath("notes", "a"), putBody(payloadOf(1, 'a')), []string{"If-None-Match", `"1"`}, 400, "VALIDATION_ERROR", "If-None-Match"},
			{"delete without If-Match", "DELETE", syncItemPath("notes", "a"), "", nil, 400, "VALIDATION_ERROR", "If-Match"},
			{"upper-case collection", "PUT", syncItemPath("Notes", "a"), putBody(payloadOf(1, 'a')), create, 400, "VALIDATION_ERROR", "collection"},
			{"collection with three dots", "GET", syncItemPath("...", "a"), "", nil, 400, "VALIDATION_ERROR", "collection"},
			{"collection over 64 characters", "GET", syncItemPath(strings.Repeat("c", 65), "a"), "", nil, 400, "VALIDATION_ERROR", "collection"},
			{"id over 128 characters", "GET", syncItemPath("notes", strings.Repeat("i", 129)), "", nil, 400, "VALIDATION_ERROR", "id"},
			{"id with a control character", "GET", syncItemPath("notes", "a%01"), "", nil, 400, "VALIDATION_ERROR", "id"},
			{"malformed cursor", "GET", "/v1/sync/collections/notes/changes?since=abc", "", nil, 400, "VALIDATION_ERROR", "since"},
			{"limit over page_max", "GET", "/v1/sync/collections/notes/changes?limit=1001", "", nil, 400, "VALIDATION_ERROR", "limit"},

			// The router matches the path as sent: a slash splits segments,
			// while %2F, ".." and "%2E%2E" stay inside the collection segment,
			// whose decoded value is then not a valid name.
			{"collection with a slash", "PUT", "/v1/sync/collections/a/b/items/x", putBody(payloadOf(1, 'a')), create, 404, "NOT_FOUND", ""},
			{"collection with an encoded slash", "PUT", "/v1/sync/collections/a%2Fb/items/x", putBody(payloadOf(1, 'a')), create, 400, "VALIDATION_ERROR", "collection"},
			{"collection dot-dot", "PUT", "/v1/sync/collections/../items/x", putBody(payloadOf(1, 'a')), create, 400, "VALIDATION_ERROR", "collection"},
			{"collection encoded dot-dot", "GET", "/v1/sync/collections/%2E%2E/items/x", "", nil, 400, "VALIDATION_ERROR", "collection"},
			{"collection dot-dot and encoded slash", "GET", "/v1/sync/collections/..%2Fother/items/x", "", nil, 400, "VALIDATION_ERROR", "collection"},
			// ".." as an item id is the caller's own item of that name.
			{"item dot-dot", "GET", "/v1/sync/collections/notes/items/..", "", nil, 404, "NOT_FOUND", ""},
		}
		token := s.token(t, m.id, m.session, nil)
		for _, c := range cases {
			req := syncRequest{method: c.method, path: c.path, body: c.body, token: token, headers: c.headers}
			res, err := s.syncSend(req)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			// The document validator matches operations on the decoded
			// path, where %2F splits a segment, unlike the server's router.
			if !strings.Contains(c.path, "%2F") {
				checkDocumented(t, req, res)
			}
			if res.status != c.wantStatus {
				t.Errorf("%s: %s %s = %d %s, want %d", c.name, c.method, c.path, res.status, res.body, c.wantStatus)
				continue
			}
			apiErr := res.envelopeError(t)
			if apiErr.Code != c.wantCode {
				t.Errorf("%s: code = %s, want %s", c.name, apiErr.Code, c.wantCode)
			}
			if c.wantField != "" && apiErr.Details["field"] != c.wantField {
				t.Errorf("%s: details.field = %v, want %s", c.name, apiErr.Details["field"], c.wantField)
			}
		}

		over := s.syncDo(t, m, "PUT", syncItemPath("notes", "a"), putBody(payloadOf(65, 'a')), create...)
		expectDetails(t, "payload over the item limit", over, map[string]any{
			"scope": "sync_item_bytes", "used": float64(0), "limit": float64(64), "requested": float64(65)})
		if info := s.syncState(t, m); len(info.Collections) != 0 {
			t.Errorf("rejected writes left collections: %+v", info.Collections)
		}
	})
}
