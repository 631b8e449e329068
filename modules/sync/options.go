package sync

import (
	"errors"
	"fmt"
	"time"
)

// maxWriteBodyBytes is the request body limit of the item PUT, batch and
// key PUT routes, and the largest max_batch_bytes allowed. It also becomes
// fasthttp's limit for every route, because the server's limit is the
// largest route limit. The handlers apply max_batch_bytes and the tiers'
// sync_item_bytes themselves, and Decode and Validate reject values that
// do not fit under this limit.
const maxWriteBodyBytes = 16 << 20

// maxItemBytesInBody is the largest payload whose base64 form, at 4 bytes
// for every 3, fits into a body of maxWriteBodyBytes with 1 KiB left for
// the JSON around it. A tier's sync_item_bytes may not exceed it.
const maxItemBytesInBody = (maxWriteBodyBytes - 1024) / 4 * 3

// Bounds of the module's options.
const (
	minTombstoneRetention   = time.Hour
	minPurgeInterval        = time.Second
	minIdempotencyRetention = time.Hour
	maxIdempotencyRetention = 30 * 24 * time.Hour
	minBatchBytes           = 1024
	maxPageMax              = 10000
)

// options is the module's config section, modules.sync. The defaults here
// match configs/nexus.yaml, which documents each key.
type options struct {
	// TombstoneRetention is how long a deleted item's tombstone stays in
	// the change feed before the purge removes it.
	TombstoneRetention time.Duration `koanf:"tombstone_retention"`
	// PurgeInterval is the time between two runs of the tombstone and
	// idempotency record purge.
	PurgeInterval time.Duration `koanf:"purge_interval"`
	// MaxBatchBytes is the largest request body of a batch, in bytes.
	MaxBatchBytes int `koanf:"max_batch_bytes"`
	// PageLimit is the number of changes in a feed page when the request
	// sets no limit.
	PageLimit int `koanf:"page_limit"`
	// PageMax is the largest limit a feed request may set.
	PageMax int `koanf:"page_max"`
	// IdempotencyRetention is how long the response to a request with an
	// Idempotency-Key is replayed for the same key.
	IdempotencyRetention time.Duration `koanf:"idempotency_retention"`
}

func defaultOptions() options {
	return options{
		TombstoneRetention:   30 * 24 * time.Hour,
		PurgeInterval:        time.Hour,
		MaxBatchBytes:        16 << 20,
		PageLimit:            100,
		PageMax:              1000,
		IdempotencyRetention: 24 * time.Hour,
	}
}

// validate checks ranges; each error names its key under modules.sync.
func (o options) validate() error {
	var problems []error
	add := func(key, message string) {
		problems = append(problems, fmt.Errorf("modules.sync.%s: %s", key, message))
	}

	if o.TombstoneRetention < minTombstoneRetention {
		add("tombstone_retention", fmt.Sprintf("must be at least %s, got %s", minTombstoneRetention, o.TombstoneRetention))
	}
	if o.PurgeInterval < minPurgeInterval {
		add("purge_interval", fmt.Sprintf("must be at least %s, got %s", minPurgeInterval, o.PurgeInterval))
	}
	if o.MaxBatchBytes < minBatchBytes || o.MaxBatchBytes > maxWriteBodyBytes {
		add("max_batch_bytes", fmt.Sprintf("must be between %d and %d, got %d", minBatchBytes, maxWriteBodyBytes, o.MaxBatchBytes))
	}
	if o.PageMax < 1 || o.PageMax > maxPageMax {
		add("page_max", fmt.Sprintf("must be between 1 and %d, got %d", maxPageMax, o.PageMax))
	}
	if o.PageLimit < 1 || o.PageLimit > o.PageMax {
		add("page_limit", fmt.Sprintf("must be between 1 and page_max (%d), got %d", o.PageMax, o.PageLimit))
	}
	if o.IdempotencyRetention < minIdempotencyRetention || o.IdempotencyRetention > maxIdempotencyRetention {
		add("idempotency_retention", fmt.Sprintf("must be between %s and %s, got %s", minIdempotencyRetention, maxIdempotencyRetention, o.IdempotencyRetention))
	}
	return errors.Join(problems...)
}
