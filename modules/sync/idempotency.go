package sync

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/nexus-suite/nexus/edge"
)

// maxIdempotencyKeyLength is the longest Idempotency-Key accepted, in bytes.
const maxIdempotencyKeyLength = 255

// reply is the successful response of a mutation.
type reply struct {
	status int
	data   any
	// etag is the ETag header value, empty for none.
	etag string
}

// mutation is the work of one write request inside the user's write
// transaction. An *edge.Error, such as a 409 or a 413, rolls the
// transaction back and becomes the response.
type mutation func(ctx context.Context, w *writeTx) (reply, error)

// dataEnvelope is the success envelope, built here rather than by the edge
// so that the stored response of an idempotent request is the exact bytes sent.
type dataEnvelope struct {
	Data any `json:"data"`
}

// mutate runs a write request in the user's write transaction and writes
// its response. With an Idempotency-Key, the first successful response for
// the key is stored in the same transaction as the write. A later request
// with the same key, method, path, precondition headers and body within
// modules.sync.idempotency_retention gets that response again, byte for
// byte, with the header Idempotent-Replayed: true, and does not run again.
// The same key with another request is a 409 CONFLICT. Error responses are
// not stored because they changed nothing, so a retry runs again.
func (m *Module) mutate(r *edge.Request, run mutation) error {
	key, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	hash := requestHash(r)
	ctx := r.Context()
	now := m.clock.Now()

	var response idempotencyRecord
	var replayed bool
	var bytesUsed int64
	err = m.store.write(ctx, r.Principal.UserID, now, func(w *writeTx) error {
		if key != "" {
			record, err := w.idempotencyRecord(ctx, key, now.Add(-m.opts.IdempotencyRetention))
			if err != nil {
				return err
			}
			if record != nil {
				if !bytes.Equal(record.RequestHash, hash) {
					return edge.NewError(edge.CodeConflict,
						"Idempotency-Key was already used for another request, send a new key",
						map[string]any{"field": headerIdempotencyKey, "reason": "idempotency_key_reused"})
				}
				response, replayed, bytesUsed = *record, true, w.user.BytesUsed
				return errRollback
			}
		}

		result, err := run(ctx, w)
		if err != nil {
			return err
		}
		body, err := json.Marshal(dataEnvelope{Data: result.data})
		if err != nil {
			return fmt.Errorf("encode sync response: %w", err)
		}
		response = idempotencyRecord{Key: key, RequestHash: hash, Status: result.status, ETag: result.etag, Body: body, CreatedAt: now}
		if key != "" {
			if err := w.saveIdempotency(ctx, response); err != nil {
				return err
			}
		}
		bytesUsed = w.user.BytesUsed
		return nil
	})
	if err != nil {
		return err
	}

	setUsageHeaders(r, bytesUsed)
	if response.ETag != "" {
		r.Ctx.Response.Header.Set(headerETag, response.ETag)
	}
	if replayed {
		r.Ctx.Response.Header.Set(headerReplayed, "true")
	}
	r.Raw(response.Status, "application/json", response.Body)
	return nil
}

// idempotencyKey returns the request's Idempotency-Key, "" when it has
// none. A key is 1 to 255 visible ASCII characters.
func idempotencyKey(r *edge.Request) (string, error) {
	value := r.Ctx.Request.Header.Peek(headerIdempotencyKey)
	if value == nil {
		return "", nil
	}
	if len(value) == 0 || len(value) > maxIdempotencyKeyLength {
		return "", edge.Validation(headerIdempotencyKey,
			fmt.Sprintf("Idempotency-Key must be 1 to %d characters", maxIdempotencyKeyLength))
	}
	for _, c := range value {
		if c <= ' ' || c > '~' {
			return "", edge.Validation(headerIdempotencyKey, "Idempotency-Key may contain only visible ASCII characters")
		}
	}
	return string(value), nil
}

// requestHash is the SHA-256 of what makes two requests the same: method,
// path, If-Match, If-None-Match and body, each prefixed by its length so
// that no two different requests hash the same input.
func requestHash(r *edge.Request) []byte {
	hash := sha256.New()
	for _, part := range [][]byte{
		r.Ctx.Method(),
		r.Ctx.Request.URI().PathOriginal(),
		r.Ctx.Request.Header.Peek(headerIfMatch),
		r.Ctx.Request.Header.Peek(headerIfNoneMatch),
		r.Ctx.Request.Body(),
	} {
		var length [8]byte
		binary.BigEndian.PutUint64(length[:], uint64(len(part)))
		hash.Write(length[:])
		hash.Write(part)
	}
	return hash.Sum(nil)
}
