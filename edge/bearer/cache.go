package bearer

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
)

// maxCacheShards bounds the number of shards. Each shard has its own mutex,
// so many cores verifying at once rarely wait on each other.
const maxCacheShards = 64

// cache maps the SHA-256 digest of a verified token to its claims until the
// token expires. It holds at most the CacheEntries given to newCache.
type cache struct {
	shards       []cacheShard
	shardMask    uint64
	shardEntries int
}

type cacheShard struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]cacheEntry
	// earliestValidUntil is at or before the earliest validUntil in
	// entries, or zero when the shard is empty. Until that time no entry
	// has expired, so a full shard can skip the scan for expired entries.
	earliestValidUntil time.Time
	// The padding keeps neighboring shards' mutexes off one cache line.
	_ [24]byte
}

type cacheEntry struct {
	claims Claims
	// public is the key that verified the token, so a hit can detect that
	// its kid now names another key.
	public *rsa.PublicKey
	// validUntil is exp plus the leeway.
	validUntil time.Time
}

// newCache returns a cache of at most maxEntries entries, or nil when
// maxEntries is zero or less.
func newCache(maxEntries int) *cache {
	if maxEntries <= 0 {
		return nil
	}

	shardCount := 1
	for shardCount*2 <= maxEntries && shardCount*2 <= maxCacheShards {
		shardCount *= 2
	}

	c := &cache{
		shards:       make([]cacheShard, shardCount),
		shardMask:    uint64(shardCount - 1),
		shardEntries: maxEntries / shardCount,
	}
	for i := range c.shards {
		c.shards[i].entries = make(map[[sha256.Size]byte]cacheEntry)
	}
	return c
}

func (c *cache) shard(digest [sha256.Size]byte) *cacheShard {
	return &c.shards[binary.LittleEndian.Uint64(digest[:8])&c.shardMask]
}

func (c *cache) get(digest [sha256.Size]byte) (cacheEntry, bool) {
	shard := c.shard(digest)
	shard.mu.Lock()
	entry, ok := shard.entries[digest]
	shard.mu.Unlock()
	return entry, ok
}

func (c *cache) remove(digest [sha256.Size]byte) {
	shard := c.shard(digest)
	shard.mu.Lock()
	delete(shard.entries, digest)
	shard.mu.Unlock()
}

// put stores entry. When the shard is full, it first removes the entries
// that expired by now, and when none had, one arbitrary entry.
func (c *cache) put(digest [sha256.Size]byte, entry cacheEntry, now time.Time) {
	shard := c.shard(digest)
	shard.mu.Lock()
	defer shard.mu.Unlock()

	if _, ok := shard.entries[digest]; !ok && len(shard.entries) >= c.shardEntries {
		shard.evict(now, c.shardEntries)
	}
	shard.entries[digest] = entry
	if shard.earliestValidUntil.IsZero() || entry.validUntil.Before(shard.earliestValidUntil) {
		shard.earliestValidUntil = entry.validUntil
	}
}

// evict runs with mu held and leaves fewer than maxEntries entries. It
// scans the shard only when an entry may have expired, so a shard full of
// live tokens costs one map deletion per put.
func (s *cacheShard) evict(now time.Time, maxEntries int) {
	if !s.earliestValidUntil.IsZero() && !now.Before(s.earliestValidUntil) {
		s.earliestValidUntil = time.Time{}
		for digest, entry := range s.entries {
			if !now.Before(entry.validUntil) {
				delete(s.entries, digest)
				continue
			}
			if s.earliestValidUntil.IsZero() || entry.validUntil.Before(s.earliestValidUntil) {
				s.earliestValidUntil = entry.validUntil
			}
		}
		if len(s.entries) < maxEntries {
			return
		}
	}

	// Map iteration starts at a random entry, so this removes an arbitrary one.
	for digest := range s.entries {
		delete(s.entries, digest)
		return
	}
}

// len returns the number of cached entries, for tests.
func (c *cache) len() int {
	total := 0
	for i := range c.shards {
		c.shards[i].mu.Lock()
		total += len(c.shards[i].entries)
		c.shards[i].mu.Unlock()
	}
	return total
}
