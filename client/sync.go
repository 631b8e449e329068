package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The Sync routes store opaque ciphertext: callers encrypt before a write
// and decrypt after a read. Payloads are []byte here and travel as
// standard base64, which is how encoding/json encodes a []byte.

// SyncInfo is the caller's sync state: cursor, usage, limits and
// collections.
type SyncInfo struct {
	Cursor      string           `json:"cursor"`
	BytesUsed   int64            `json:"bytes_used"`
	BytesLimit  int64            `json:"bytes_limit"`
	ItemCount   int64            `json:"item_count"`
	Limits      SyncLimits       `json:"limits"`
	Collections []SyncCollection `json:"collections"`
}

// SyncLimits are the size limits that apply to the caller.
type SyncLimits struct {
	ItemBytes                 int64 `json:"item_bytes"`
	BatchItems                int64 `json:"batch_items"`
	BatchBytes                int64 `json:"batch_bytes"`
	PageMax                   int   `json:"page_max"`
	KeyEnvelopeBytes          int64 `json:"key_envelope_bytes"`
	Keys                      int   `json:"keys"`
	Devices                   int   `json:"devices"`
	TombstoneRetentionSeconds int64 `json:"tombstone_retention_seconds"`
}

// SyncCollection is one collection that holds an item or a tombstone.
type SyncCollection struct {
	Name           string `json:"name"`
	Cursor         string `json:"cursor"`
	Bytes          int64  `json:"bytes"`
	ItemCount      int64  `json:"item_count"`
	TombstoneCount int64  `json:"tombstone_count"`
}

// SyncItemVersion is an item or a tombstone after a write, without its
// payload.
type SyncItemVersion struct {
	Collection string    `json:"collection"`
	ID         string    `json:"id"`
	Version    int64     `json:"version"`
	Deleted    bool      `json:"deleted"`
	Size       int64     `json:"size"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// SyncItem is a live item with its payload.
type SyncItem struct {
	SyncItemVersion
	Payload []byte `json:"payload"`
}

// SyncChange is an entry of the change feed: an item with its payload, or
// a tombstone (Deleted, with a nil Payload).
type SyncChange struct {
	ID        string    `json:"id"`
	Version   int64     `json:"version"`
	Deleted   bool      `json:"deleted"`
	Size      int64     `json:"size"`
	UpdatedAt time.Time `json:"updated_at"`
	Payload   []byte    `json:"payload"`
}

// SyncChangesPage is one page of the change feed.
type SyncChangesPage struct {
	Changes    []SyncChange `json:"changes"`
	NextCursor string       `json:"next_cursor"`
	Done       bool         `json:"done"`
}

// SyncCurrent is the current state of an item in a conflict; Payload is
// nil for a tombstone.
type SyncCurrent struct {
	Version int64  `json:"version"`
	Deleted bool   `json:"deleted"`
	Payload []byte `json:"payload"`
}

// SyncConflict is one item whose precondition did not hold. Current is nil
// when the item does not exist, not even as a tombstone.
type SyncConflict struct {
	ID      string       `json:"id"`
	Current *SyncCurrent `json:"current"`
}

// Precondition is the condition a write is based on: the version it
// replaces (IfMatch) or, with Create, that no live version exists
// (If-None-Match: *). Build one with IfMatch or IfNoneMatch.
type Precondition struct {
	Version int64
	Create  bool
}

// IfMatch bases a write on version.
func IfMatch(version int64) Precondition { return Precondition{Version: version} }

// IfNoneMatch makes a write create the item, also over its tombstone.
func IfNoneMatch() Precondition { return Precondition{Create: true} }

// header returns the precondition as request headers.
func (p Precondition) header() (http.Header, error) {
	switch {
	case p.Create && p.Version != 0:
		return nil, errors.New("a precondition has either a version or Create, not both")
	case p.Create:
		return http.Header{"If-None-Match": {"*"}}, nil
	case p.Version > 0:
		return http.Header{"If-Match": {strconv.Quote(strconv.FormatInt(p.Version, 10))}}, nil
	default:
		return nil, errors.New("a write needs a precondition: IfMatch(version) or IfNoneMatch()")
	}
}

// MutationOption changes one mutating sync request.
type MutationOption func(*Request)

// WithIdempotencyKey sends key as the request's Idempotency-Key instead of
// a generated one. Use the same key when a request is sent again after the
// process restarted, so the server returns the first response.
func WithIdempotencyKey(key string) MutationOption {
	return func(r *Request) { r.IdempotencyKey = key }
}

// NewIdempotencyKey returns a random key of 32 hex digits.
func NewIdempotencyKey() string {
	var b [16]byte
	// Since Go 1.24, crypto/rand.Read crashes the program rather than
	// return an error.
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// mutation builds a mutating request with an Idempotency-Key, so that the
// retry strategy may repeat it: the server returns the stored response to
// a repeated key instead of applying the write twice.
func mutation(req Request, opts []MutationOption) Request {
	for _, opt := range opts {
		opt(&req)
	}
	if req.IdempotencyKey == "" {
		req.IdempotencyKey = NewIdempotencyKey()
	}
	return req
}

// ParseETag returns the version of an ETag such as "3"; a weak tag (W/"3")
// and a bare number are accepted too.
func ParseETag(etag string) (int64, error) {
	value := strings.TrimPrefix(strings.TrimSpace(etag), "W/")
	if unquoted, err := strconv.Unquote(value); err == nil && strings.HasPrefix(value, `"`) {
		value = unquoted
	}
	version, err := strconv.ParseInt(value, 10, 64)
	if err != nil || version < 1 {
		return 0, fmt.Errorf("invalid ETag %q: want a quoted version such as \"3\"", etag)
	}
	return version, nil
}

func syncItemPath(collection, id string) string {
	return "/v1/sync/collections/" + url.PathEscape(collection) + "/items/" + url.PathEscape(id)
}

// SyncInfo returns the caller's sync cursor, usage, limits and collections.
func (c *Client) SyncInfo(ctx context.Context) (SyncInfo, error) {
	var info SyncInfo
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: "/v1/sync/info"}, &info)
	return info, err
}

// SyncChanges returns one page of the collection's changes after since,
// with at most limit changes (0 for the server's default). An empty since
// starts from the beginning. A cursor the server can no longer continue
// from is a CONFLICT with details.reason "resync_required"; see
// IsResyncRequired.
func (c *Client) SyncChanges(ctx context.Context, collection, since string, limit int) (SyncChangesPage, error) {
	query := url.Values{}
	if since != "" {
		query.Set("since", since)
	}
	if limit > 0 {
		query.Set("limit", strconv.Itoa(limit))
	}
	path := "/v1/sync/collections/" + url.PathEscape(collection) + "/changes"
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	var page SyncChangesPage
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: path}, &page)
	return page, err
}

// EachSyncChange pages the collection's change feed from since until done,
// calls fn for each change in order, and returns the cursor to keep for
// the next sync. It stops at fn's first error and returns it.
func (c *Client) EachSyncChange(ctx context.Context, collection, since string, limit int, fn func(SyncChange) error) (string, error) {
	cursor := since
	for {
		page, err := c.SyncChanges(ctx, collection, cursor, limit)
		if err != nil {
			return cursor, err
		}
		for _, change := range page.Changes {
			if err := fn(change); err != nil {
				return cursor, err
			}
		}
		if page.NextCursor == "" {
			return cursor, errors.New("sync changes: the server returned no next_cursor")
		}
		cursor = page.NextCursor
		if page.Done {
			return cursor, nil
		}
	}
}

// IsResyncRequired reports whether err is the change feed's error for a
// cursor it cannot continue from. The caller then syncs again from an
// empty cursor.
func IsResyncRequired(err error) bool {
	var apiErr *Error
	return errors.As(err, &apiErr) && apiErr.Code == "CONFLICT" && apiErr.Details["reason"] == "resync_required"
}

// GetSyncItem returns a live item. A deleted item is a NOT_FOUND error
// with details.deleted true.
func (c *Client) GetSyncItem(ctx context.Context, collection, id string) (SyncItem, error) {
	res, err := c.Do(ctx, Request{Method: http.MethodGet, Path: syncItemPath(collection, id)})
	if err != nil {
		return SyncItem{}, err
	}
	var item SyncItem
	if err := res.Decode(&item); err != nil {
		return SyncItem{}, err
	}
	if etag := res.Header.Get("ETag"); etag != "" {
		version, err := ParseETag(etag)
		if err != nil {
			return SyncItem{}, err
		}
		if version != item.Version {
			return SyncItem{}, fmt.Errorf("sync item %s: ETag version %d differs from the body's %d", id, version, item.Version)
		}
	}
	return item, nil
}

// PutSyncItem creates or replaces an item with payload, based on pre. A
// precondition that does not hold is a CONFLICT error; SyncConflictOf
// returns the item's current state from it.
func (c *Client) PutSyncItem(ctx context.Context, collection, id string, payload []byte, pre Precondition, opts ...MutationOption) (SyncItemVersion, error) {
	header, err := pre.header()
	if err != nil {
		return SyncItemVersion{}, err
	}
	req := mutation(Request{Method: http.MethodPut, Path: syncItemPath(collection, id), Header: header,
		Body: map[string][]byte{"payload": payload}}, opts)
	var written SyncItemVersion
	err = c.Call(ctx, req, &written)
	return written, err
}

// DeleteSyncItem replaces the item's version by a tombstone.
func (c *Client) DeleteSyncItem(ctx context.Context, collection, id string, version int64, opts ...MutationOption) (SyncItemVersion, error) {
	header, err := IfMatch(version).header()
	if err != nil {
		return SyncItemVersion{}, err
	}
	req := mutation(Request{Method: http.MethodDelete, Path: syncItemPath(collection, id), Header: header}, opts)
	var tombstone SyncItemVersion
	err = c.Call(ctx, req, &tombstone)
	return tombstone, err
}

// SyncOperation is one write of a batch: a put with Payload, or a delete
// (Delete true). A put needs Pre; a delete needs Pre.Version.
type SyncOperation struct {
	ID      string
	Delete  bool
	Payload []byte
	Pre     Precondition
}

type syncOperationBody struct {
	Op          string `json:"op"`
	ID          string `json:"id"`
	Payload     []byte `json:"payload,omitempty"`
	IfMatch     int64  `json:"if_match,omitempty"`
	IfNoneMatch string `json:"if_none_match,omitempty"`
}

// SyncBatch applies the operations all or nothing and returns the new
// version of each item in their order. When a precondition does not hold,
// nothing is written and the CONFLICT error lists every conflict; see
// SyncConflictsOf.
func (c *Client) SyncBatch(ctx context.Context, collection string, operations []SyncOperation, opts ...MutationOption) ([]SyncItemVersion, error) {
	body := make([]syncOperationBody, 0, len(operations))
	for i, op := range operations {
		entry := syncOperationBody{ID: op.ID, IfMatch: op.Pre.Version}
		switch {
		case op.Pre.Create && op.Pre.Version != 0:
			return nil, fmt.Errorf("sync batch operation %d (%s): a precondition has either a version or Create, not both", i, op.ID)
		case op.Delete && op.Pre.Version == 0:
			return nil, fmt.Errorf("sync batch operation %d (%s): a delete needs the version it removes", i, op.ID)
		case op.Delete:
			entry.Op = "delete"
		case !op.Pre.Create && op.Pre.Version == 0:
			return nil, fmt.Errorf("sync batch operation %d (%s): a put needs IfMatch(version) or IfNoneMatch()", i, op.ID)
		default:
			entry.Op, entry.Payload = "put", op.Payload
			if op.Pre.Create {
				entry.IfNoneMatch = "*"
			}
		}
		body = append(body, entry)
	}
	req := mutation(Request{Method: http.MethodPost, Path: "/v1/sync/collections/" + url.PathEscape(collection) + "/batch",
		Body: map[string]any{"operations": body}}, opts)
	var result struct {
		Items []SyncItemVersion `json:"items"`
	}
	err := c.Call(ctx, req, &result)
	return result.Items, err
}

// SyncConflictOf returns the conflict of a single item write (PUT or
// DELETE), or false when err is not one.
func SyncConflictOf(err error) (SyncConflict, bool) {
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Code != "CONFLICT" {
		return SyncConflict{}, false
	}
	if _, ok := apiErr.Details["current"]; !ok {
		return SyncConflict{}, false
	}
	var conflict SyncConflict
	if apiErr.DecodeDetails(&conflict) != nil {
		return SyncConflict{}, false
	}
	return conflict, true
}

// SyncConflictsOf returns every conflict of a batch, or false when err is
// not a batch conflict.
func SyncConflictsOf(err error) ([]SyncConflict, bool) {
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Code != "CONFLICT" {
		return nil, false
	}
	var details struct {
		Conflicts []SyncConflict `json:"conflicts"`
	}
	if apiErr.DecodeDetails(&details) != nil || len(details.Conflicts) == 0 {
		return nil, false
	}
	return details.Conflicts, true
}

// SyncKeyVersion is a key envelope without its contents.
type SyncKeyVersion struct {
	ID        string    `json:"id"`
	Version   int64     `json:"version"`
	Size      int64     `json:"size"`
	UpdatedAt time.Time `json:"updated_at"`
}

// SyncKey is a wrapped key envelope with its contents.
type SyncKey struct {
	SyncKeyVersion
	Envelope []byte `json:"envelope"`
}

// SyncKeyConflictOf returns the current version and envelope of a key
// write whose precondition did not hold; current is nil when the key does
// not exist. ok is false when err is not such a conflict.
func SyncKeyConflictOf(err error) (current *SyncKey, ok bool) {
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Code != "CONFLICT" {
		return nil, false
	}
	if _, present := apiErr.Details["current"]; !present {
		return nil, false
	}
	var details struct {
		Current *SyncKey `json:"current"`
	}
	if apiErr.DecodeDetails(&details) != nil {
		return nil, false
	}
	return details.Current, true
}

func syncKeyPath(keyID string) string { return "/v1/sync/keys/" + url.PathEscape(keyID) }

// SyncKeys lists the caller's key envelopes without their contents.
func (c *Client) SyncKeys(ctx context.Context) ([]SyncKeyVersion, error) {
	var result struct {
		Keys []SyncKeyVersion `json:"keys"`
	}
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: "/v1/sync/keys"}, &result)
	return result.Keys, err
}

// GetSyncKey returns a key envelope.
func (c *Client) GetSyncKey(ctx context.Context, keyID string) (SyncKey, error) {
	var key SyncKey
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: syncKeyPath(keyID)}, &key)
	return key, err
}

// PutSyncKey stores (IfNoneMatch) or rotates (IfMatch) a wrapped key
// envelope of up to 64 KiB. The envelope must be wrapped already, because
// the server stores it as sent.
func (c *Client) PutSyncKey(ctx context.Context, keyID string, envelope []byte, pre Precondition, opts ...MutationOption) (SyncKeyVersion, error) {
	header, err := pre.header()
	if err != nil {
		return SyncKeyVersion{}, err
	}
	req := mutation(Request{Method: http.MethodPut, Path: syncKeyPath(keyID), Header: header,
		Body: map[string][]byte{"envelope": envelope}}, opts)
	var written SyncKeyVersion
	err = c.Call(ctx, req, &written)
	return written, err
}

// SyncDevice is a device record with its public key.
type SyncDevice struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	PublicKey []byte    `json:"public_key"`
	CreatedAt time.Time `json:"created_at"`
}

// SyncDevices lists the caller's devices, oldest first.
func (c *Client) SyncDevices(ctx context.Context) ([]SyncDevice, error) {
	var result struct {
		Devices []SyncDevice `json:"devices"`
	}
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: "/v1/sync/devices"}, &result)
	return result.Devices, err
}

// GetSyncDevice returns one device record.
func (c *Client) GetSyncDevice(ctx context.Context, deviceID string) (SyncDevice, error) {
	var device SyncDevice
	err := c.Call(ctx, Request{Method: http.MethodGet, Path: "/v1/sync/devices/" + url.PathEscape(deviceID)}, &device)
	return device, err
}

// CreateSyncDevice records a device with a display name and its public
// key, which the server stores as sent.
func (c *Client) CreateSyncDevice(ctx context.Context, name string, publicKey []byte, opts ...MutationOption) (SyncDevice, error) {
	req := mutation(Request{Method: http.MethodPost, Path: "/v1/sync/devices",
		Body: map[string]any{"name": name, "public_key": publicKey}}, opts)
	var device SyncDevice
	err := c.Call(ctx, req, &device)
	return device, err
}

// DeleteSyncDevice removes a device record.
func (c *Client) DeleteSyncDevice(ctx context.Context, deviceID string, opts ...MutationOption) error {
	req := mutation(Request{Method: http.MethodDelete, Path: "/v1/sync/devices/" + url.PathEscape(deviceID)}, opts)
	return c.Call(ctx, req, nil)
}
