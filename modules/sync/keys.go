package sync

import (
	"context"
	"net/http"
	"time"

	"github.com/nexus-suite/nexus/edge"
)

// keyView is a key envelope in responses. Envelope is omitted in lists
// and write responses.
type keyView struct {
	ID        string    `json:"id"`
	Version   int64     `json:"version"`
	Size      int64     `json:"size"`
	UpdatedAt time.Time `json:"updated_at"`
	Envelope  *string   `json:"envelope,omitempty"`
}

func keyViewOf(key keyEnvelope) keyView {
	return keyView{ID: key.ID, Version: key.Version, Size: key.Size, UpdatedAt: key.UpdatedAt}
}

// keyList is the body of GET /v1/sync/keys.
type keyList struct {
	Keys []keyView `json:"keys"`
}

// keyInput is the body of PUT /v1/sync/keys/{key_id}.
type keyInput struct {
	Envelope *string `json:"envelope"`
}

// listKeys returns the caller's key envelopes without their contents.
func (m *Module) listKeys(r *edge.Request) error {
	if err := m.requireReader(r); err != nil {
		return err
	}

	keys, err := m.store.keys(r.Context(), r.Principal.UserID)
	if err != nil {
		return err
	}

	list := keyList{Keys: make([]keyView, 0, len(keys))}
	for _, key := range keys {
		list.Keys = append(list.Keys, keyViewOf(key))
	}
	return m.readJSON(r, list)
}

// getKey returns one key envelope with its contents and its version as ETag.
func (m *Module) getKey(r *edge.Request) error {
	keyID, err := idParam(r, "key_id", "key_id")
	if err != nil {
		return err
	}
	if err := m.requireReader(r); err != nil {
		return err
	}

	key, err := m.store.key(r.Context(), r.Principal.UserID, keyID)
	if err != nil {
		return err
	}
	if key == nil {
		return edge.NotFound("no key envelope with this id")
	}

	view := keyViewOf(*key)
	view.Envelope = encodeBase64(key.Envelope)
	r.Ctx.Response.Header.Set(headerETag, formatETag(key.Version))
	return m.readJSON(r, view)
}

// putKey stores a new key envelope (If-None-Match: *, 201) or rotates one
// (If-Match with the current version, 200). A write takes a sequence
// number, so the user's cursor in GET /v1/sync/info moves.
func (m *Module) putKey(r *edge.Request) error {
	keyID, err := idParam(r, "key_id", "key_id")
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
	var input keyInput
	if err := r.Decode(&input); err != nil {
		return err
	}
	envelope, err := decodeBase64("envelope", input.Envelope)
	if err != nil {
		return err
	}
	if len(envelope) > maxKeyEnvelopeBytes {
		return quotaExceeded(scopeKeyBytes, 0, maxKeyEnvelopeBytes, int64(len(envelope)))
	}

	return m.mutate(r, func(ctx context.Context, w *writeTx) (reply, error) {
		current, err := w.key(ctx, keyID)
		if err != nil {
			return reply{}, err
		}
		if (match.IfNoneMatch && current != nil) || (!match.IfNoneMatch && (current == nil || current.Version != match.Version)) {
			return reply{}, keyConflict(current)
		}
		if current == nil {
			count, err := w.countKeys(ctx)
			if err != nil {
				return reply{}, err
			}
			if count >= maxKeysPerUser {
				return reply{}, quotaExceeded(scopeKeys, int64(count), maxKeysPerUser, 1)
			}
		}

		key := keyEnvelope{ID: keyID, Version: 1, Envelope: envelope, Size: int64(len(envelope)), UpdatedAt: w.now}
		status := http.StatusCreated
		if current != nil {
			key.Version, status = current.Version+1, http.StatusOK
		}
		if err := w.saveKey(ctx, key, w.nextSeq()); err != nil {
			return reply{}, err
		}
		return reply{status: status, data: keyViewOf(key), etag: formatETag(key.Version)}, nil
	})
}

// keyConflict returns the 409 of a key write whose precondition failed,
// with details.current {version, envelope}, null when there is no key.
func keyConflict(current *keyEnvelope) error {
	details := map[string]any{"current": nil}
	if current != nil {
		details["current"] = map[string]any{"version": current.Version, "envelope": encodeBase64(current.Envelope)}
	}
	return edge.NewError(edge.CodeConflict, "the key envelope's current version does not match the precondition", details)
}
