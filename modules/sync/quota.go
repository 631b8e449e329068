package sync

import (
	"fmt"

	"github.com/nexus-suite/nexus/edge"
)

// Scopes of a 413 QUOTA_EXCEEDED, in details.scope. The first three are
// tier limits of the same name, sync_batch_bytes is
// modules.sync.max_batch_bytes, and the rest are fixed limits below.
const (
	scopeSyncBytes      = "sync_bytes"
	scopeSyncItemBytes  = "sync_item_bytes"
	scopeSyncBatchItems = "sync_batch_items"
	scopeSyncBatchBytes = "sync_batch_bytes"
	scopeKeyBytes       = "sync_key_bytes"
	scopeKeys           = "sync_keys"
	scopeDevices        = "sync_devices"
)

// Fixed limits of key envelopes and devices. They are small records that
// do not count against sync_bytes, so they are bounded here instead.
const (
	maxKeyEnvelopeBytes = 64 << 10
	maxKeysPerUser      = 256
	maxDevicesPerUser   = 64
	maxPublicKeyBytes   = 8 << 10
	maxDeviceNameLength = 100
)

// quotaExceeded returns a 413 QUOTA_EXCEEDED. used is what the limited
// quantity contains before the request (0 for a limit per request), and
// requested is what the request would add.
func quotaExceeded(scope string, used, limit, requested int64) *edge.Error {
	return edge.NewError(edge.CodeQuotaExceeded,
		fmt.Sprintf("%s limit of %d exceeded: %d used, %d requested", scope, limit, used, requested),
		map[string]any{"scope": scope, "used": used, "limit": limit, "requested": requested})
}

// checkStorage rejects a write that would take the user's live bytes above
// the tier's sync_bytes. A write that frees or keeps bytes always passes,
// so a user over the quota after a downgrade can still shrink and delete.
func checkStorage(used, delta, limit int64) error {
	if delta > 0 && used+delta > limit {
		return quotaExceeded(scopeSyncBytes, used, limit, delta)
	}
	return nil
}

// checkItemSize rejects a payload over the tier's sync_item_bytes. The
// limit applies to each payload on its own, so details.used is 0.
func checkItemSize(size, limit int64) error {
	if size > limit {
		return quotaExceeded(scopeSyncItemBytes, 0, limit, size)
	}
	return nil
}
