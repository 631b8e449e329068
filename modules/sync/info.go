package sync

import (
	"net/http"

	"github.com/nexus-suite/nexus/edge"
)

// infoView is the body of GET /v1/sync/info.
type infoView struct {
	// Cursor is the position of the user's last change of any kind,
	// including key envelope writes.
	Cursor      string           `json:"cursor"`
	BytesUsed   int64            `json:"bytes_used"`
	BytesLimit  int64            `json:"bytes_limit"`
	ItemCount   int64            `json:"item_count"`
	Limits      limitsView       `json:"limits"`
	Collections []collectionView `json:"collections"`
}

// limitsView are the size limits that apply to the caller.
type limitsView struct {
	ItemBytes                 int64 `json:"item_bytes"`
	BatchItems                int   `json:"batch_items"`
	BatchBytes                int   `json:"batch_bytes"`
	PageMax                   int   `json:"page_max"`
	KeyEnvelopeBytes          int   `json:"key_envelope_bytes"`
	Keys                      int   `json:"keys"`
	Devices                   int   `json:"devices"`
	TombstoneRetentionSeconds int64 `json:"tombstone_retention_seconds"`
}

// collectionView is one collection with at least one item or tombstone.
type collectionView struct {
	Name string `json:"name"`
	// Cursor is the position of the collection's last change, raised to the
	// purge point, so that it is always a valid since for the feed.
	Cursor     string `json:"cursor"`
	Bytes      int64  `json:"bytes"`
	ItemCount  int64  `json:"item_count"`
	Tombstones int64  `json:"tombstone_count"`
}

// info returns the caller's cursor, usage, limits and collections.
func (m *Module) info(r *edge.Request) error {
	if err := m.requireReader(r); err != nil {
		return err
	}

	ctx := r.Context()
	user, err := m.store.user(ctx, r.Principal.UserID)
	if err != nil {
		return err
	}
	collections, err := m.store.collections(ctx, r.Principal.UserID)
	if err != nil {
		return err
	}

	limits := r.Principal.Entitlements.Limits
	view := infoView{
		Cursor:     encodeCursor(user.Seq),
		BytesUsed:  user.BytesUsed,
		BytesLimit: limits.SyncBytes,
		ItemCount:  user.ItemCount,
		Limits: limitsView{
			ItemBytes:                 limits.SyncItemBytes,
			BatchItems:                limits.SyncBatchItems,
			BatchBytes:                m.opts.MaxBatchBytes,
			PageMax:                   m.opts.PageMax,
			KeyEnvelopeBytes:          maxKeyEnvelopeBytes,
			Keys:                      maxKeysPerUser,
			Devices:                   maxDevicesPerUser,
			TombstoneRetentionSeconds: int64(m.opts.TombstoneRetention.Seconds()),
		},
		Collections: make([]collectionView, 0, len(collections)),
	}
	for _, c := range collections {
		view.Collections = append(view.Collections, collectionView{
			Name: c.Name, Cursor: encodeCursor(max(c.MaxSeq, user.PurgedSeq)),
			Bytes: c.Bytes, ItemCount: c.Items, Tombstones: c.Tombstones,
		})
	}

	setUsageHeaders(r, user.BytesUsed)
	return r.JSON(http.StatusOK, view)
}
