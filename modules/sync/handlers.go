package sync

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nexus-suite/nexus/edge"
)

// featureSync is the entitlement feature that sync writes need.
const featureSync = "sync"

// Limits of names and ids.
const (
	maxCollectionNameLength = 64
	maxItemIDLength         = 128
)

// Names of the headers that the module reads and writes.
const (
	headerETag           = "ETag"
	headerBytesUsed      = "X-Sync-Bytes-Used"
	headerBytesLimit     = "X-Sync-Bytes-Limit"
	headerIfMatch        = "If-Match"
	headerIfNoneMatch    = "If-None-Match"
	headerIdempotencyKey = "Idempotency-Key"
	headerReplayed       = "Idempotent-Replayed"
)

// requireWriter rejects a caller whose tier does not grant sync with 403
// TIER_REQUIRED, as the edge's feature gate would.
func (m *Module) requireWriter(r *edge.Request) error {
	entitlements := r.Principal.Entitlements
	if entitlements.HasFeature(featureSync) {
		return nil
	}
	return edge.TierRequired(featureSync, m.requiredTier, entitlements.Tier)
}

// requireReader lets in a caller whose tier grants sync, and a caller
// without it who still has sync data, such as after a downgrade, so that
// the data stays readable and deletable. Anyone else gets 403 TIER_REQUIRED.
func (m *Module) requireReader(r *edge.Request) error {
	if r.Principal.Entitlements.HasFeature(featureSync) {
		return nil
	}
	has, err := m.store.hasData(r.Context(), r.Principal.UserID)
	if err != nil {
		return err
	}
	if has {
		return nil
	}
	return m.requireWriter(r)
}

// validCollection checks a collection name: 1 to 64 of a-z, 0-9, '_' and '-'.
func validCollection(name string) error {
	if name == "" || len(name) > maxCollectionNameLength {
		return edge.Validation("collection", fmt.Sprintf("collection name must be 1 to %d characters", maxCollectionNameLength))
	}
	for i := range len(name) {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return edge.Validation("collection", "collection name may contain only a-z, 0-9, '_' and '-'")
		}
	}
	return nil
}

// validID checks an item or key id: 1 to 128 printable ASCII characters,
// space to '~'.
func validID(field, id string) error {
	if id == "" || len(id) > maxItemIDLength {
		return edge.Validation(field, fmt.Sprintf("%s must be 1 to %d characters", field, maxItemIDLength))
	}
	for i := range len(id) {
		if id[i] < ' ' || id[i] > '~' {
			return edge.Validation(field, field+" may contain only printable ASCII characters")
		}
	}
	return nil
}

// pathParam returns a path parameter with its percent escapes decoded. The
// router matches the path as the client sent it, before any decoding
// (fasthttp/router v1.5.4 routes on URI().PathOriginal()). So "a%2Fb" is
// one segment whose value is "a/b", and "." and ".." segments are values,
// not directions. A malformed escape is a 400 naming field.
func pathParam(r *edge.Request, name, field string) (string, error) {
	value, err := url.PathUnescape(r.Param(name))
	if err != nil {
		return "", edge.Validation(field, field+" has a malformed percent escape")
	}
	return value, nil
}

// collectionParam returns the valid collection name of the request's path.
func collectionParam(r *edge.Request) (string, error) {
	collection, err := pathParam(r, "collection", "collection")
	if err != nil {
		return "", err
	}
	if err := validCollection(collection); err != nil {
		return "", err
	}
	return collection, nil
}

// idParam returns the valid item or key id of the request's path.
func idParam(r *edge.Request, name, field string) (string, error) {
	id, err := pathParam(r, name, field)
	if err != nil {
		return "", err
	}
	if err := validID(field, id); err != nil {
		return "", err
	}
	return id, nil
}

// itemAddress returns the collection and item id of the request's path.
func itemAddress(r *edge.Request) (collection, id string, err error) {
	collection, err = collectionParam(r)
	if err != nil {
		return "", "", err
	}
	id, err = idParam(r, "id", "id")
	if err != nil {
		return "", "", err
	}
	return collection, id, nil
}

// precondition is the version a write is based on: IfNoneMatch for a
// create, else the version that the item must have.
type precondition struct {
	IfNoneMatch bool
	Version     int64
}

// matches reports whether current, nil when there is no row, satisfies p
// for a put. A tombstone counts as absent for If-None-Match, and as its
// own version for If-Match.
func (p precondition) matches(current *item) bool {
	if p.IfNoneMatch {
		return !current.live()
	}
	return current != nil && current.Version == p.Version
}

// headerPrecondition reads If-Match or If-None-Match. A write needs
// exactly one of them, so no client replaces a version it has not seen.
func headerPrecondition(r *edge.Request, allowCreate bool) (precondition, error) {
	ifMatch := strings.TrimSpace(string(r.Ctx.Request.Header.Peek(headerIfMatch)))
	ifNoneMatch := strings.TrimSpace(string(r.Ctx.Request.Header.Peek(headerIfNoneMatch)))

	switch {
	case ifMatch != "" && ifNoneMatch != "":
		return precondition{}, edge.Validation(headerIfNoneMatch, "send either If-Match or If-None-Match, not both")
	case ifNoneMatch != "":
		if !allowCreate {
			return precondition{}, edge.Validation(headerIfNoneMatch, "If-None-Match is not allowed here, send If-Match with the current version")
		}
		if ifNoneMatch != "*" {
			return precondition{}, edge.Validation(headerIfNoneMatch, `If-None-Match must be "*"`)
		}
		return precondition{IfNoneMatch: true}, nil
	case ifMatch != "":
		version, ok := parseETag(ifMatch)
		if !ok {
			return precondition{}, edge.Validation(headerIfMatch, `If-Match must be one version as an entity tag, such as "3"`)
		}
		return precondition{Version: version}, nil
	case allowCreate:
		return precondition{}, edge.Validation(headerIfMatch,
			`If-Match with the current version, or If-None-Match: * to create, is required`)
	default:
		return precondition{}, edge.Validation(headerIfMatch, "If-Match with the current version is required")
	}
}

// parseETag reads a version from an entity tag, "3", or leniently from a
// bare number.
func parseETag(value string) (int64, bool) {
	if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
		value = value[1 : len(value)-1]
	}
	version, err := strconv.ParseInt(value, 10, 64)
	if err != nil || version < 1 || value[0] == '+' {
		return 0, false
	}
	return version, true
}

// formatETag returns the entity tag of a version.
func formatETag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// decodeBase64 decodes a required standard, padded base64 field. Line
// breaks, which Go's decoder would skip, are rejected as well.
func decodeBase64(field string, value *string) ([]byte, error) {
	if value == nil {
		return nil, edge.Validation(field, field+" is required")
	}
	if *value == "" {
		return nil, edge.Validation(field, field+" must not be empty")
	}
	if strings.ContainsAny(*value, "\r\n") {
		return nil, edge.Validation(field, field+" must be standard base64 without line breaks")
	}
	decoded, err := base64.StdEncoding.DecodeString(*value)
	if err != nil {
		return nil, edge.Validation(field, field+" must be standard base64 with padding")
	}
	return decoded, nil
}

// encodeBase64 returns data as standard base64, or nil for nil data.
func encodeBase64(data []byte) *string {
	if data == nil {
		return nil
	}
	encoded := base64.StdEncoding.EncodeToString(data)
	return &encoded
}

// setUsageHeaders writes the caller's sync storage use and quota.
func setUsageHeaders(r *edge.Request, bytesUsed int64) {
	header := &r.Ctx.Response.Header
	header.Set(headerBytesUsed, strconv.FormatInt(bytesUsed, 10))
	header.Set(headerBytesLimit, strconv.FormatInt(r.Principal.Entitlements.Limits.SyncBytes, 10))
}

// readJSON writes data with the caller's usage headers, for read routes.
func (m *Module) readJSON(r *edge.Request, data any) error {
	user, err := m.store.user(r.Context(), r.Principal.UserID)
	if err != nil {
		return err
	}
	setUsageHeaders(r, user.BytesUsed)
	return r.JSON(http.StatusOK, data)
}

// itemView is an item or tombstone in responses, without its payload.
// Collection is omitted in the change feed, whose request names it.
type itemView struct {
	Collection string    `json:"collection,omitempty"`
	ID         string    `json:"id"`
	Version    int64     `json:"version"`
	Deleted    bool      `json:"deleted"`
	Size       int64     `json:"size"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// itemWithPayload is an item with its payload, or a tombstone with a null payload.
type itemWithPayload struct {
	itemView
	Payload *string `json:"payload"`
}

func viewOf(collection string, it item) itemView {
	return itemView{Collection: collection, ID: it.ID, Version: it.Version, Deleted: it.Deleted, Size: it.Size, UpdatedAt: it.UpdatedAt}
}

// currentView is the current state of an item in a 409's details.
type currentView struct {
	Version int64   `json:"version"`
	Deleted bool    `json:"deleted"`
	Payload *string `json:"payload"`
}

// conflictView is one conflicting item of a 409. Current is null when the
// item does not exist.
type conflictView struct {
	ID      string       `json:"id"`
	Current *currentView `json:"current"`
}
