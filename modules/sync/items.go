package sync

import (
	"context"
	"errors"
	"net/http"

	"github.com/nexus-suite/nexus/edge"
)

// itemOp is one put or delete of an item, from a PUT, a DELETE or a batch.
type itemOp struct {
	ID string
	// Delete is true for a delete, which needs an If-Match precondition.
	Delete  bool
	Payload []byte
	Match   precondition
}

// conflictError is a 409 whose details list every item whose precondition failed.
type conflictError struct {
	conflicts []conflictView
}

func (e *conflictError) Error() string { return "sync precondition failed" }

// applied is the outcome of applyOps: the new rows, in the order of the
// operations, and whether each put created its item (no live version before).
type applied struct {
	rows    []item
	created []bool
}

// applyOps applies ops to collection, all or nothing: it checks every
// precondition against the rows as they are under the user's lock, then
// the tier's storage quota, then writes each change with its own sequence
// number. A failed precondition anywhere returns a *conflictError listing
// every one, and nothing is written. storageLimit is the tier's sync_bytes.
func applyOps(ctx context.Context, w *writeTx, collection string, ops []itemOp, storageLimit int64) (applied, error) {
	ids := make([]string, len(ops))
	for i, op := range ops {
		ids[i] = op.ID
	}
	current, err := w.items(ctx, collection, ids)
	if err != nil {
		return applied{}, err
	}

	var conflicts []conflictView
	var conflictIDs []string
	var bytesDelta, itemsDelta int64
	for _, op := range ops {
		cur := current[op.ID]
		ok := op.Match.matches(cur)
		if op.Delete {
			ok = ok && cur.live()
		}
		if !ok {
			conflicts = append(conflicts, conflictView{ID: op.ID, Current: currentOf(cur)})
			if cur.live() {
				conflictIDs = append(conflictIDs, op.ID)
			}
			continue
		}

		if cur.live() {
			bytesDelta -= cur.Size
			itemsDelta--
		}
		if !op.Delete {
			bytesDelta += int64(len(op.Payload))
			itemsDelta++
		}
	}
	if len(conflicts) > 0 {
		return applied{}, conflictWithPayloads(ctx, w, collection, conflicts, conflictIDs)
	}
	if err := checkStorage(w.user.BytesUsed, bytesDelta, storageLimit); err != nil {
		return applied{}, err
	}

	result := applied{rows: make([]item, len(ops)), created: make([]bool, len(ops))}
	for i, op := range ops {
		cur := current[op.ID]
		// A new item starts above the versions of purged tombstones, so a
		// base version from before a purge never matches it.
		row := item{ID: op.ID, Version: w.user.VersionFloor + 1, Seq: w.nextSeq(), UpdatedAt: w.now}
		if cur != nil {
			row.Version = cur.Version + 1
		}
		if op.Delete {
			row.Deleted = true
		} else {
			row.Payload, row.Size = op.Payload, int64(len(op.Payload))
		}
		result.rows[i], result.created[i] = row, !op.Delete && !cur.live()
	}
	if err := w.saveItems(ctx, collection, result.rows); err != nil {
		return applied{}, err
	}
	w.addUsage(bytesDelta, itemsDelta)
	return result, nil
}

// currentOf returns the state of cur for a 409, nil when there is no row.
// Its payload is filled in by conflictWithPayloads.
func currentOf(cur *item) *currentView {
	if cur == nil {
		return nil
	}
	return &currentView{Version: cur.Version, Deleted: cur.Deleted}
}

// conflictWithPayloads reads the payloads of the live conflicting items
// and returns the *conflictError.
func conflictWithPayloads(ctx context.Context, w *writeTx, collection string, conflicts []conflictView, liveIDs []string) error {
	payloads, err := w.payloads(ctx, collection, liveIDs)
	if err != nil {
		return err
	}
	for _, conflict := range conflicts {
		if conflict.Current != nil && !conflict.Current.Deleted {
			conflict.Current.Payload = encodeBase64(payloads[conflict.ID])
		}
	}
	return &conflictError{conflicts: conflicts}
}

// getItem returns an item with its payload. A tombstone is 404 NOT_FOUND
// with details.deleted and details.version, so a client can tell it from
// an item that never existed.
func (m *Module) getItem(r *edge.Request) error {
	collection, id, err := itemAddress(r)
	if err != nil {
		return err
	}
	if err := m.requireReader(r); err != nil {
		return err
	}

	it, err := m.store.item(r.Context(), r.Principal.UserID, collection, id)
	if err != nil {
		return err
	}
	if it == nil {
		return edge.NotFound("no item with this id in the collection")
	}
	if it.Deleted {
		return edge.NewError(edge.CodeNotFound, "the item was deleted",
			map[string]any{"deleted": true, "version": it.Version})
	}

	r.Ctx.Response.Header.Set(headerETag, formatETag(it.Version))
	return m.readJSON(r, itemWithPayload{itemView: viewOf(collection, *it), Payload: encodeBase64(it.Payload)})
}

// putInput is the body of PUT /v1/sync/collections/{collection}/items/{id}.
type putInput struct {
	Payload *string `json:"payload"`
}

// putItem creates or replaces an item. The status is 201 when the item had
// no live version before (new, or re-created over its tombstone) and 200
// when it replaced one. If-Match on an item that does not exist is 404.
func (m *Module) putItem(r *edge.Request) error {
	collection, id, err := itemAddress(r)
	if err != nil {
		return err
	}
	if err := m.requireWriter(r); err != nil {
		return err
	}
	match, err := headerPrecondition(r, true)
	if err != nil {
		return err
	}
	var input putInput
	if err := r.Decode(&input); err != nil {
		return err
	}
	payload, err := decodeBase64("payload", input.Payload)
	if err != nil {
		return err
	}
	limits := r.Principal.Entitlements.Limits
	if err := checkItemSize(int64(len(payload)), limits.SyncItemBytes); err != nil {
		return err
	}

	op := itemOp{ID: id, Payload: payload, Match: match}
	return m.mutate(r, func(ctx context.Context, w *writeTx) (reply, error) {
		result, err := applyOps(ctx, w, collection, []itemOp{op}, limits.SyncBytes)
		if err != nil {
			return reply{}, singleItemError(err)
		}
		row := result.rows[0]
		status := http.StatusOK
		if result.created[0] {
			status = http.StatusCreated
		}
		return reply{status: status, data: viewOf(collection, row), etag: formatETag(row.Version)}, nil
	})
}

// deleteItem replaces a live item by a tombstone. It needs If-Match with
// the current version. An item that does not exist or is already deleted
// is 404 NOT_FOUND.
func (m *Module) deleteItem(r *edge.Request) error {
	collection, id, err := itemAddress(r)
	if err != nil {
		return err
	}
	if err := m.requireReader(r); err != nil {
		return err
	}
	match, err := headerPrecondition(r, false)
	if err != nil {
		return err
	}

	op := itemOp{ID: id, Delete: true, Match: match}
	return m.mutate(r, func(ctx context.Context, w *writeTx) (reply, error) {
		result, err := applyOps(ctx, w, collection, []itemOp{op}, 0)
		var conflict *conflictError
		if errors.As(err, &conflict) {
			if current := conflict.conflicts[0].Current; current == nil || current.Deleted {
				return reply{}, edge.NotFound("no item with this id in the collection")
			}
		}
		if err != nil {
			return reply{}, singleItemError(err)
		}
		row := result.rows[0]
		return reply{status: http.StatusOK, data: viewOf(collection, row), etag: formatETag(row.Version)}, nil
	})
}

// singleItemError turns the *conflictError of one item into the 409 with
// details.id and details.current. An If-Match on an item that does not
// exist, not even as a tombstone, is 404 instead: there is nothing to
// conflict with.
func singleItemError(err error) error {
	var conflict *conflictError
	if !errors.As(err, &conflict) {
		return err
	}
	first := conflict.conflicts[0]
	if first.Current == nil {
		return edge.NotFound("no item with this id in the collection")
	}
	return edge.NewError(edge.CodeConflict, "the item's current version does not match the precondition",
		map[string]any{"id": first.ID, "current": first.Current})
}
