// Package sync is the Sync API section: end-to-end encrypted collections
// of opaque items with versions, a per-user change feed, quotas per tier,
// and wrapped key envelopes and device records.
package sync
