// Package sync is the Sync API section: end-to-end encrypted collections
// of opaque items with versions, a per-user change feed, quotas per tier,
// and wrapped key envelopes and device records.
//
// Payloads, key envelopes and device public keys are base64 that the
// server decodes, stores as bytes and never interprets or logs. Each item
// has a version, and every write names the version it is based on
// (If-Match), or If-None-Match: * to create, so no client overwrites a
// change it has not seen. Deleting an item leaves a tombstone, which the
// change feed carries to other devices until the purge removes it after
// modules.sync.tombstone_retention.
//
// Every write of a user runs in one transaction that first locks the
// user's sync_users row, which contains the user's change sequence and
// storage use. So writes of one user run one at a time, and sequence
// numbers become visible in commit order, which means a feed reader skips
// none. The quota check counts every earlier write. Idempotency records are
// written in the same transaction as the write whose response they store.
//
// Writes need the sync feature. A user without it who still has sync
// data, such as after a downgrade to Core, can still read, page the feed
// and delete. Any other user without the feature gets 403 TIER_REQUIRED.
package sync
