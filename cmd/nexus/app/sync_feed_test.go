package app_test

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestSyncFeedPagingWhileWriting(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSyncServer(t, e)
		m := s.proSubscriber(t)
		token := s.token(t, m.id, m.session, nil)

		const writers, itemsPerWriter, rounds = 3, 6, 4
		// Each writer creates its items, then replaces each of them several
		// times and deletes every third one, while the reader pages.
		final := make(map[string]int64)
		var finalMu sync.Mutex
		var wg sync.WaitGroup
		failures := make(chan string, writers)
		for w := range writers {
			wg.Go(func() {
				for i := range itemsPerWriter {
					id := fmt.Sprintf("w%d-%d", w, i)
					version := int64(0)
					for round := range rounds {
						headers := []string{"If-Match", strconv.FormatInt(version, 10)}
						if round == 0 {
							headers = []string{"If-None-Match", "*"}
						}
						req := syncRequest{method: "PUT", path: syncItemPath("notes", id), body: putBody(payloadOf(16, byte('a'+round))), token: token, headers: headers}
						res, err := s.syncSend(req)
						if err != nil || (res.status != http.StatusOK && res.status != http.StatusCreated) {
							failures <- fmt.Sprintf("PUT %s round %d: %v %d %s", id, round, err, res.status, res.body)
							return
						}
						version++
					}
					if i%3 == 0 {
						req := syncRequest{method: "DELETE", path: syncItemPath("notes", id), token: token, headers: []string{"If-Match", strconv.FormatInt(version, 10)}}
						if res, err := s.syncSend(req); err != nil || res.status != http.StatusOK {
							failures <- fmt.Sprintf("DELETE %s: %v %d %s", id, err, res.status, res.body)
							return
						}
						version++
					}
					finalMu.Lock()
					final[id] = version
					finalMu.Unlock()
				}
			})
		}

		// The reader pages with a small limit until the writers are done and
		// the feed reports done once more after that.
		seen := map[string]int64{}
		pairs := map[string]bool{}
		cursor := ""
		writersDone := make(chan struct{})
		go func() { wg.Wait(); close(writersDone) }()
		for finished := false; ; {
			select {
			case <-writersDone:
				finished = true
			default:
			}
			page := s.syncFeedPage(t, m, "notes", cursor, 5)
			for _, change := range page.Changes {
				pair := fmt.Sprintf("%s@%d", change.ID, change.Version)
				if pairs[pair] {
					t.Errorf("change %s seen twice", pair)
				}
				pairs[pair] = true
				if change.Version <= seen[change.ID] {
					t.Errorf("%s went from version %d back to %d", change.ID, seen[change.ID], change.Version)
				}
				seen[change.ID] = change.Version
			}
			if cursorSeq(t, page.NextCursor) < cursorSeq(t, cursorOrStart(cursor)) {
				t.Fatalf("next_cursor %s is behind since %s", page.NextCursor, cursor)
			}
			cursor = page.NextCursor
			if finished && page.Done {
				break
			}
		}
		close(failures)
		for failure := range failures {
			t.Error(failure)
		}

		if len(final) != writers*itemsPerWriter {
			t.Fatalf("writers finished %d items, want %d", len(final), writers*itemsPerWriter)
		}
		for id, version := range final {
			if seen[id] != version {
				t.Errorf("reader's last version of %s = %d, want the final %d", id, seen[id], version)
			}
		}
	})
}

// cursorOrStart returns the cursor of sequence number 0 for the empty since.
func cursorOrStart(cursor string) string {
	if cursor == "" {
		return "AQAAAAAAAAAA"
	}
	return cursor
}

func TestSyncTombstonePurge(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		s := startSyncServer(t, e)
		m := s.proSubscriber(t)

		s.syncPut(t, m, "notes", "keep", payloadOf(4, 'k'), http.StatusCreated, "If-None-Match", "*")
		s.syncPut(t, m, "notes", "drop", payloadOf(4, 'd'), http.StatusCreated, "If-None-Match", "*")
		s.syncPut(t, m, "notes", "drop", payloadOf(4, 'e'), http.StatusOK, "If-Match", `"1"`)
		_, beforeDelete := s.syncFeed(t, m, "notes", "", 0)
		if res := s.syncDo(t, m, "DELETE", syncItemPath("notes", "drop"), "", "If-Match", `"2"`); res.status != http.StatusOK {
			t.Fatalf("delete = %d %s", res.status, res.body)
		}
		changes, afterDelete := s.syncFeed(t, m, "notes", beforeDelete, 0)
		if len(changes) != 1 {
			t.Fatalf("changes after the delete = %+v, want the tombstone", changes)
		}
		if !changes[0].Deleted {
			t.Fatalf("change after the delete = %+v, want a tombstone", changes[0])
		}

		// Within tombstone_retention (1h in these tests) nothing is purged.
		s.clock.Advance(50 * time.Minute)
		if res := s.syncDo(t, m, "GET", "/v1/sync/collections/notes/changes?since="+beforeDelete, ""); res.status != http.StatusOK {
			t.Fatalf("feed before the retention ends = %d %s", res.status, res.body)
		}

		// The purge runs every purge_interval (1m) inside the fake clock's
		// timer, so once Advance returns after the retention, it has run.
		s.clock.Advance(11 * time.Minute)
		s.clock.Advance(time.Minute)
		stale := s.syncDo(t, m, "GET", "/v1/sync/collections/notes/changes?since="+beforeDelete, "")
		if !expectStatus(t, "feed from before the purged tombstone", stale, http.StatusConflict) {
			t.FailNow()
		}
		expectDetails(t, "feed from before the purged tombstone", stale, map[string]any{"reason": "resync_required"})
		if res := s.syncDo(t, m, "GET", "/v1/sync/collections/notes/changes?since="+afterDelete, ""); res.status != http.StatusOK {
			t.Errorf("feed from after the tombstone = %d %s, want 200", res.status, res.body)
		}
		full, _ := s.syncFeed(t, m, "notes", "", 0)
		if len(full) != 1 {
			t.Fatalf("full sync after the purge = %+v, want only keep", full)
		}
		if full[0].ID != "keep" {
			t.Errorf("full sync after the purge holds %s, want keep", full[0].ID)
		}
		info := s.syncState(t, m)
		if len(info.Collections) != 1 {
			t.Fatalf("collections after the purge = %+v, want notes", info.Collections)
		}
		if info.Collections[0].Tombstones != 0 {
			t.Errorf("tombstones after the purge = %d, want 0", info.Collections[0].Tombstones)
		}
		if res := s.syncDo(t, m, "GET", "/v1/sync/collections/notes/changes?since="+info.Collections[0].Cursor, ""); res.status != http.StatusOK {
			t.Errorf("feed from the collection's cursor in /info = %d, want 200", res.status)
		}
		if rows := s.count(t, `SELECT COUNT(*) FROM sync_items WHERE user_id = $1 AND deleted`, m.id); rows != 0 {
			t.Errorf("%d tombstones left after the purge", rows)
		}

		// A device that still holds version 2 cannot overwrite the item
		// created again after the purge: versions continue above the tombstone's.
		recreated := s.syncPut(t, m, "notes", "drop", payloadOf(4, 'n'), http.StatusCreated, "If-None-Match", "*")
		if recreated.Version != 4 {
			t.Errorf("version of the item created after the purge = %d, want 4", recreated.Version)
		}
		if res := s.syncDo(t, m, "PUT", syncItemPath("notes", "drop"), putBody(payloadOf(4, 's')), "If-Match", `"2"`); res.status != http.StatusConflict {
			t.Errorf("stale base after the purge = %d, want 409", res.status)
		}
	})
}
