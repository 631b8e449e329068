package sync

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/nexus-suite/nexus/edge"
)

// maxPagePayloadBytes bounds the decoded payloads of one feed page, so a
// page of large items does not keep the whole limit in memory at once. A
// page contains at least one change, however large.
const maxPagePayloadBytes = 16 << 20

// cursorFormat is the first byte of every cursor, so the format can change
// later without clients noticing.
const cursorFormat = 1

// encodeCursor returns the opaque cursor of a sequence number: base64url
// without padding of the format byte and the number as 8 bytes big-endian.
func encodeCursor(seq int64) string {
	var raw [9]byte
	raw[0] = cursorFormat
	binary.BigEndian.PutUint64(raw[1:], uint64(seq))
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

// decodeCursor returns the sequence number of a cursor, 0 for "" (the
// start). A cursor this API cannot have returned is a 400 naming since.
func decodeCursor(cursor string) (int64, error) {
	if cursor == "" {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(raw) != 9 || raw[0] != cursorFormat || binary.BigEndian.Uint64(raw[1:]) > math.MaxInt64 {
		return 0, edge.Validation("since", "since must be a cursor that this API returned, or empty to start from the beginning")
	}
	return int64(binary.BigEndian.Uint64(raw[1:])), nil
}

// changeView is one entry of the change feed: an item with its payload, or
// a tombstone with a null payload.
type changeView = itemWithPayload

// changesPage is a page of the change feed.
type changesPage struct {
	Changes []changeView `json:"changes"`
	// NextCursor is the since of the next request.
	NextCursor string `json:"next_cursor"`
	// Done is true when the page reached the end of the feed as it was read.
	Done bool `json:"done"`
}

// resyncRequired returns the 409 for a cursor that the server can no longer
// serve: older than the purge point, where tombstones it has not seen may be
// gone, or ahead of the user's last change, as after a restore from backup.
// The client drops its cursor and syncs again from the start.
func resyncRequired(message string) *edge.Error {
	return edge.NewError(edge.CodeConflict, message, map[string]any{"reason": "resync_required"})
}

// changes returns the items and tombstones of a collection changed after
// the cursor since, in the order of their last change. Each item appears
// once, at its last change. Writes take the user's lock and a sequence
// number in one transaction, so sequence numbers become visible in order.
// A reader that pages with next_cursor therefore misses no change and gets
// no change twice.
func (m *Module) changes(r *edge.Request) error {
	collection, err := collectionParam(r)
	if err != nil {
		return err
	}
	if err := m.requireReader(r); err != nil {
		return err
	}
	query := r.Ctx.QueryArgs()
	since, err := decodeCursor(string(query.Peek("since")))
	if err != nil {
		return err
	}
	limit, err := m.pageLimit(query.Peek("limit"))
	if err != nil {
		return err
	}

	// The user's sequence number is read before the changes: every change
	// up to it has committed, so the page contains all of them unless it is full.
	ctx := r.Context()
	userID := r.Principal.UserID
	before, err := m.store.user(ctx, userID)
	if err != nil {
		return err
	}
	if since > before.Seq {
		return resyncRequired("the cursor is ahead of the server's last change, sync again from the start")
	}
	rows, more, err := m.store.changes(ctx, userID, collection, since, limit, maxPagePayloadBytes)
	if err != nil {
		return err
	}
	// The purge point is read after the changes: a tombstone missing from
	// the page because the purge removed it meanwhile is below it.
	after, err := m.store.user(ctx, userID)
	if err != nil {
		return err
	}
	if since > 0 && since < after.PurgedSeq {
		return resyncRequired("tombstones after this cursor were purged, sync again from the start")
	}

	page := changesPage{Changes: make([]changeView, 0, len(rows)), Done: !more}
	next := since
	for _, row := range rows {
		page.Changes = append(page.Changes, changeView{itemView: viewOf("", row), Payload: encodeBase64(row.Payload)})
		next = row.Seq
	}
	if page.Done {
		next = max(next, before.Seq)
	}
	page.NextCursor = encodeCursor(next)

	setUsageHeaders(r, after.BytesUsed)
	return r.JSON(http.StatusOK, page)
}

// pageLimit reads the limit parameter: 1 to modules.sync.page_max,
// modules.sync.page_limit when absent.
func (m *Module) pageLimit(value []byte) (int, error) {
	if len(value) == 0 {
		return m.opts.PageLimit, nil
	}
	limit, err := strconv.Atoi(string(value))
	if err != nil || limit < 1 || limit > m.opts.PageMax {
		return 0, edge.Validation("limit", fmt.Sprintf("limit must be a whole number from 1 to %d", m.opts.PageMax))
	}
	return limit, nil
}
