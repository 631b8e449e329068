package sync

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/nexus-suite/nexus/edge"
)

// batchInput is the body of POST /v1/sync/collections/{collection}/batch.
type batchInput struct {
	Operations []batchOperation `json:"operations"`
}

// batchOperation is one operation of a batch: a put with a payload and
// either if_match or if_none_match, or a delete with if_match.
type batchOperation struct {
	Op          string  `json:"op"`
	ID          string  `json:"id"`
	Payload     *string `json:"payload"`
	IfMatch     *int64  `json:"if_match"`
	IfNoneMatch *string `json:"if_none_match"`
}

// batchResult is the response body of a batch: the new version of each item, in
// the order of the operations.
type batchResult struct {
	Items []itemView `json:"items"`
}

// batch applies a list of puts and deletes to one collection, all or
// nothing. Limits, in the order checked: the body against
// modules.sync.max_batch_bytes, the number of operations against the
// tier's sync_batch_items, each payload against sync_item_bytes, then under
// the user's lock every precondition (a 409 lists every conflict) and the
// storage quota.
func (m *Module) batch(r *edge.Request) error {
	collection, err := collectionParam(r)
	if err != nil {
		return err
	}
	if err := m.requireWriter(r); err != nil {
		return err
	}
	if size := len(r.Ctx.Request.Body()); size > m.opts.MaxBatchBytes {
		return quotaExceeded(scopeSyncBatchBytes, 0, int64(m.opts.MaxBatchBytes), int64(size))
	}
	var input batchInput
	if err := r.Decode(&input); err != nil {
		return err
	}
	limits := r.Principal.Entitlements.Limits
	if len(input.Operations) > limits.SyncBatchItems {
		return quotaExceeded(scopeSyncBatchItems, 0, int64(limits.SyncBatchItems), int64(len(input.Operations)))
	}
	ops, err := batchOps(input.Operations, limits.SyncItemBytes)
	if err != nil {
		return err
	}

	return m.mutate(r, func(ctx context.Context, w *writeTx) (reply, error) {
		result, err := applyOps(ctx, w, collection, ops, limits.SyncBytes)
		var conflict *conflictError
		if errors.As(err, &conflict) {
			return reply{}, edge.NewError(edge.CodeConflict,
				fmt.Sprintf("%d of %d operations do not match the current versions, nothing was written", len(conflict.conflicts), len(ops)),
				map[string]any{"conflicts": conflict.conflicts})
		}
		if err != nil {
			return reply{}, err
		}
		views := make([]itemView, len(result.rows))
		for i, row := range result.rows {
			views[i] = viewOf(collection, row)
		}
		return reply{status: http.StatusOK, data: batchResult{Items: views}}, nil
	})
}

// batchOps validates the operations and converts them. Errors name the
// field as operations[i].name.
func batchOps(operations []batchOperation, itemLimit int64) ([]itemOp, error) {
	if len(operations) == 0 {
		return nil, edge.Validation("operations", "operations must hold at least one operation")
	}

	ops := make([]itemOp, len(operations))
	seen := make(map[string]int, len(operations))
	for i, operation := range operations {
		field := func(name string) string { return fmt.Sprintf("operations[%d].%s", i, name) }
		if err := validID(field("id"), operation.ID); err != nil {
			return nil, err
		}
		if first, ok := seen[operation.ID]; ok {
			return nil, edge.Validation(field("id"), fmt.Sprintf("id %q is also in operations[%d], each item may appear once", operation.ID, first))
		}
		seen[operation.ID] = i

		op, err := batchOp(operation, field, itemLimit)
		if err != nil {
			return nil, err
		}
		ops[i] = op
	}
	return ops, nil
}

// batchOp validates one operation whose id is already checked.
func batchOp(operation batchOperation, field func(string) string, itemLimit int64) (itemOp, error) {
	op := itemOp{ID: operation.ID}
	if operation.IfMatch != nil && operation.IfNoneMatch != nil {
		return op, edge.Validation(field("if_none_match"), "send either if_match or if_none_match, not both")
	}
	if operation.IfMatch != nil && *operation.IfMatch < 1 {
		return op, edge.Validation(field("if_match"), "if_match must be a version, 1 or more")
	}

	switch operation.Op {
	case "put":
		switch {
		case operation.IfNoneMatch != nil && *operation.IfNoneMatch != "*":
			return op, edge.Validation(field("if_none_match"), `if_none_match must be "*"`)
		case operation.IfNoneMatch != nil:
			op.Match = precondition{IfNoneMatch: true}
		case operation.IfMatch != nil:
			op.Match = precondition{Version: *operation.IfMatch}
		default:
			return op, edge.Validation(field("if_match"), `a put needs if_match with the current version, or if_none_match "*" to create`)
		}
		payload, err := decodeBase64(field("payload"), operation.Payload)
		if err != nil {
			return op, err
		}
		if size := int64(len(payload)); size > itemLimit {
			quota := quotaExceeded(scopeSyncItemBytes, 0, itemLimit, size)
			quota.Details["id"] = operation.ID
			return op, quota
		}
		op.Payload = payload

	case "delete":
		if operation.IfNoneMatch != nil {
			return op, edge.Validation(field("if_none_match"), "a delete takes if_match, not if_none_match")
		}
		if operation.IfMatch == nil {
			return op, edge.Validation(field("if_match"), "a delete needs if_match with the current version")
		}
		if operation.Payload != nil {
			return op, edge.Validation(field("payload"), "a delete takes no payload")
		}
		op.Delete, op.Match = true, precondition{Version: *operation.IfMatch}

	default:
		return op, edge.Validation(field("op"), `op must be "put" or "delete"`)
	}
	return op, nil
}
