package app_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/modules/auth"
	"github.com/nexus-suite/nexus/runtime"
)

// syncRoute is one request to each kind of sync route.
type syncRoute struct {
	name, method, path, body string
	headers                  []string
}

// syncRoutes returns a request for every sync route; deviceID names an
// existing device of the caller, or any well-formed id.
func syncRoutes(deviceID string) []syncRoute {
	envelope := `{"envelope":"` + payloadOf(8, 'k') + `"}`
	return []syncRoute{
		{name: "info", method: "GET", path: "/v1/sync/info"},
		{name: "changes", method: "GET", path: "/v1/sync/collections/notes/changes"},
		{name: "get item", method: "GET", path: syncItemPath("notes", "n1")},
		{name: "put item", method: "PUT", path: syncItemPath("notes", "n9"), body: putBody(payloadOf(2, 'x')), headers: []string{"If-None-Match", "*"}},
		{name: "delete item", method: "DELETE", path: syncItemPath("notes", "n1"), headers: []string{"If-Match", `"1"`}},
		{name: "batch", method: "POST", path: "/v1/sync/collections/notes/batch", body: batchBody(2, "b1")},
		{name: "list keys", method: "GET", path: "/v1/sync/keys"},
		{name: "get key", method: "GET", path: "/v1/sync/keys/master"},
		{name: "put key", method: "PUT", path: "/v1/sync/keys/master", body: envelope, headers: []string{"If-Match", `"1"`}},
		{name: "list devices", method: "GET", path: "/v1/sync/devices"},
		{name: "create device", method: "POST", path: "/v1/sync/devices", body: `{"name":"laptop","public_key":"` + payloadOf(32, 'p') + `"}`},
		{name: "get device", method: "GET", path: "/v1/sync/devices/" + deviceID},
		{name: "delete device", method: "DELETE", path: "/v1/sync/devices/" + deviceID},
	}
}

func TestSyncCoreUserGetsTierRequired(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSyncServer(t, e)
		core := s.member(t)

		for _, route := range syncRoutes("dev_00000000000000000000000000000000") {
			res := s.syncDo(t, core, route.method, route.path, route.body, route.headers...)
			if !expectStatus(t, route.name+" as Core", res, http.StatusForbidden) {
				continue
			}
			if code := res.envelopeError(t).Code; code != "TIER_REQUIRED" {
				t.Errorf("%s as Core: code = %s, want TIER_REQUIRED", route.name, code)
			}
			expectDetails(t, route.name+" as Core", res, map[string]any{"feature": "sync", "required_tier": "pro", "current_tier": "core"})
		}
	})
}

func TestSyncDowngradedUserReadsAndDeletes(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSyncServer(t, e)
		m := s.proSubscriber(t)
		s.syncPut(t, m, "notes", "n1", payloadOf(4, 'a'), http.StatusCreated, "If-None-Match", "*")
		if res := s.syncDo(t, m, "PUT", "/v1/sync/keys/master", `{"envelope":"`+payloadOf(8, 'k')+`"}`, "If-None-Match", "*"); res.status != http.StatusCreated {
			t.Fatalf("put key = %d %s", res.status, res.body)
		}
		created := s.syncDo(t, m, "POST", "/v1/sync/devices", `{"name":"laptop","public_key":"`+payloadOf(32, 'p')+`"}`)
		if created.status != http.StatusCreated {
			t.Fatalf("create device = %d %s", created.status, created.body)
		}
		var device struct {
			ID string `json:"id"`
		}
		created.data(t, &device)

		s.setSubscription(t, m, "pro", "canceled", s.clock.Now().Add(-time.Hour))
		if view, _ := s.entitlements(t, m); view.Tier != "core" {
			t.Fatalf("tier after the cancellation = %s, want core", view.Tier)
		}

		want := map[string]int{
			"info": 200, "changes": 200, "get item": 200, "list keys": 200, "get key": 200,
			"list devices": 200, "get device": 200,
			"put item": 403, "batch": 403, "put key": 403, "create device": 403,
			"delete item": 200, "delete device": 200,
		}
		for _, route := range syncRoutes(device.ID) {
			res := s.syncDo(t, m, route.method, route.path, route.body, route.headers...)
			if res.status != want[route.name] {
				t.Errorf("%s after the downgrade = %d %s, want %d", route.name, res.status, res.body, want[route.name])
				continue
			}
			if res.status == http.StatusForbidden && res.envelopeError(t).Code != "TIER_REQUIRED" {
				t.Errorf("%s after the downgrade: code %s, want TIER_REQUIRED", route.name, res.envelopeError(t).Code)
			}
			if res.status == http.StatusOK && res.header.Get("X-Sync-Bytes-Limit") != "0" {
				t.Errorf("%s: X-Sync-Bytes-Limit = %q, want Core's 0", route.name, res.header.Get("X-Sync-Bytes-Limit"))
			}
		}
	})
}

func TestSyncKeysAndDevices(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSyncServer(t, e)
		m := s.proSubscriber(t)
		first, second := payloadOf(40, '1'), payloadOf(40, '2')

		created := s.syncDo(t, m, "PUT", "/v1/sync/keys/master", `{"envelope":"`+first+`"}`, "If-None-Match", "*")
		if !expectStatus(t, "create key", created, http.StatusCreated) {
			t.FailNow()
		}
		expectHeader(t, "create key", created, "ETag", `"1"`)
		rotated := s.syncDo(t, m, "PUT", "/v1/sync/keys/master", `{"envelope":"`+second+`"}`, "If-Match", `"1"`)
		if !expectStatus(t, "rotate key", rotated, http.StatusOK) {
			t.FailNow()
		}
		expectHeader(t, "rotate key", rotated, "ETag", `"2"`)

		stale := s.syncDo(t, m, "PUT", "/v1/sync/keys/master", `{"envelope":"`+first+`"}`, "If-Match", `"1"`)
		if expectStatus(t, "rotation on a stale version", stale, http.StatusConflict) {
			current, _ := stale.envelopeError(t).Details["current"].(map[string]any)
			if current["version"] != float64(2) {
				t.Errorf("stale rotation: current.version = %v, want 2", current["version"])
			}
			if current["envelope"] != second {
				t.Errorf("stale rotation: current.envelope = %v, want the rotated envelope", current["envelope"])
			}
		}

		got := s.syncDo(t, m, "GET", "/v1/sync/keys/master", "")
		var key struct {
			Version  int64  `json:"version"`
			Envelope string `json:"envelope"`
		}
		got.data(t, &key)
		if key.Version != 2 {
			t.Errorf("GET key: version = %d, want 2", key.Version)
		}
		if key.Envelope != second {
			t.Errorf("GET key: envelope = %s, want the rotated envelope", key.Envelope)
		}
		if missing := s.syncDo(t, m, "GET", "/v1/sync/keys/other", ""); missing.status != http.StatusNotFound {
			t.Errorf("GET of a missing key = %d, want 404", missing.status)
		}

		body := `{"name":"  work laptop ","public_key":"` + payloadOf(32, 'p') + `"}`
		device := s.syncDo(t, m, "POST", "/v1/sync/devices", body, "Idempotency-Key", "device-1")
		replay := s.syncDo(t, m, "POST", "/v1/sync/devices", body, "Idempotency-Key", "device-1")
		if !expectStatus(t, "create device", device, http.StatusCreated) || !expectStatus(t, "create device again with the key", replay, http.StatusCreated) {
			t.FailNow()
		}
		if string(replay.body) != string(device.body) {
			t.Errorf("replayed device = %s, want the first response %s", replay.body, device.body)
		}
		var view struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		}
		device.data(t, &view)
		if view.Name != "work laptop" {
			t.Errorf("device name = %q, want the trimmed name", view.Name)
		}
		var list struct {
			Devices []struct {
				ID string `json:"id"`
			} `json:"devices"`
		}
		s.syncDo(t, m, "GET", "/v1/sync/devices", "").data(t, &list)
		if len(list.Devices) != 1 {
			t.Fatalf("devices = %+v, want the one device", list.Devices)
		}
		if list.Devices[0].ID != view.ID {
			t.Errorf("listed device = %s, want %s", list.Devices[0].ID, view.ID)
		}

		other := s.proSubscriber(t)
		if res := s.syncDo(t, other, "GET", "/v1/sync/devices/"+view.ID, ""); res.status != http.StatusNotFound {
			t.Errorf("another user's device = %d, want 404", res.status)
		}
		if res := s.syncDo(t, other, "DELETE", "/v1/sync/devices/"+view.ID, ""); res.status != http.StatusNotFound {
			t.Errorf("delete of another user's device = %d, want 404", res.status)
		}
		if res := s.syncDo(t, other, "GET", "/v1/sync/keys/master", ""); res.status != http.StatusNotFound {
			t.Errorf("another user's key = %d, want 404", res.status)
		}
		if res := s.syncDo(t, m, "DELETE", "/v1/sync/devices/"+view.ID, ""); res.status != http.StatusOK {
			t.Errorf("delete device = %d %s", res.status, res.body)
		}
		if res := s.syncDo(t, m, "GET", "/v1/sync/devices/"+view.ID, ""); res.status != http.StatusNotFound {
			t.Errorf("device after delete = %d, want 404", res.status)
		}
	})
}

func TestSyncAccountDeletionRemovesData(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSyncServer(t, e)
		m, other := s.proSubscriber(t), s.proSubscriber(t)
		for _, user := range []member{m, other} {
			s.syncPut(t, user, "notes", "n1", payloadOf(4, 'a'), http.StatusCreated, "If-None-Match", "*", "Idempotency-Key", "k1")
			s.syncPut(t, user, "notes", "n2", payloadOf(4, 'b'), http.StatusCreated, "If-None-Match", "*")
			s.syncDo(t, user, "DELETE", syncItemPath("notes", "n2"), "", "If-Match", `"1"`)
			s.syncDo(t, user, "PUT", "/v1/sync/keys/master", `{"envelope":"`+payloadOf(8, 'k')+`"}`, "If-None-Match", "*")
			s.syncDo(t, user, "POST", "/v1/sync/devices", `{"name":"phone","public_key":"`+payloadOf(8, 'p')+`"}`)
		}
		tables := []string{"sync_users", "sync_items", "sync_keys", "sync_devices", "sync_idempotency"}
		countRows := func(userID string) map[string]int {
			rows := map[string]int{}
			for _, table := range tables {
				rows[table] = s.count(t, `SELECT COUNT(*) FROM `+table+` WHERE user_id = $1`, userID)
			}
			return rows
		}
		for table, n := range countRows(m.id) {
			if n == 0 {
				t.Fatalf("%s has no row of the user before the deletion", table)
			}
		}

		// The hooks alone, while the user row still exists: rows removed
		// by a foreign key's cascade would not count.
		if err := runtime.RunAccountHooks(context.Background(), s.app.DB(), m.id); err != nil {
			t.Fatalf("run account hooks: %v", err)
		}
		for table, n := range countRows(m.id) {
			if n != 0 {
				t.Errorf("%s has %d rows of the user after the account hooks", table, n)
			}
		}
		for table, n := range countRows(other.id) {
			if n == 0 {
				t.Errorf("%s lost the other user's rows", table)
			}
		}

		if err := auth.NewAdmin(s.app.DB(), s.clock, nil).Delete(context.Background(), m.id); err != nil {
			t.Fatalf("delete account: %v", err)
		}
		if n := s.count(t, `SELECT COUNT(*) FROM users WHERE id = $1`, m.id); n != 0 {
			t.Errorf("the user row is still there")
		}
	})
}
