package bearer

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestCacheHit(t *testing.T) {
	f := newFixture(t, 100)
	token := validToken(t)

	first, err := f.verifier.Verify(token)
	if err != nil {
		t.Fatalf("first Verify: %v", err)
	}
	second, err := f.verifier.Verify(token)
	if err != nil {
		t.Fatalf("second Verify: %v", err)
	}

	if second != first {
		t.Errorf("cached claims = %+v, expected %+v", second, first)
	}
	if n := f.signatureCalls.Load(); n != 1 {
		t.Errorf("%d signature checks for two Verify calls, expected 1", n)
	}
	if n := f.keys.lookups.Load(); n != 2 {
		t.Errorf("%d key lookups for two Verify calls, expected 2", n)
	}
}

func TestCacheDisabled(t *testing.T) {
	f := newFixture(t, 0)
	token := validToken(t)

	for range 2 {
		if _, err := f.verifier.Verify(token); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	if n := f.signatureCalls.Load(); n != 2 {
		t.Errorf("%d signature checks for two Verify calls without a cache, expected 2", n)
	}
}

func TestCacheExpiry(t *testing.T) {
	f := newFixture(t, 100)
	token := validToken(t)
	if _, err := f.verifier.Verify(token); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	f.clock.Advance(15*time.Minute + testLeeway - time.Millisecond)
	if _, err := f.verifier.Verify(token); err != nil {
		t.Errorf("Verify 1ms before exp+leeway returned %v", err)
	}

	f.clock.Advance(time.Millisecond)
	if _, err := f.verifier.Verify(token); !errors.Is(err, ErrExpired) {
		t.Errorf("Verify at exp+leeway returned %v, expected ErrExpired", err)
	}
	if n := f.verifier.cache.len(); n != 0 {
		t.Errorf("cache has %d entries after the token expired, expected 0", n)
	}
}

func TestCacheRemovedKey(t *testing.T) {
	f := newFixture(t, 100)
	token := validToken(t)
	if _, err := f.verifier.Verify(token); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	f.keys.remove(testKID)
	_, err := f.verifier.Verify(token)
	var unknown *UnknownKeyError
	if !errors.As(err, &unknown) {
		t.Fatalf("Verify after the key was removed returned %v, expected *UnknownKeyError", err)
	}
	if unknown.KeyID != testKID {
		t.Errorf("UnknownKeyError.KeyID = %q, expected %q", unknown.KeyID, testKID)
	}
}

func TestCacheReplacedKey(t *testing.T) {
	f := newFixture(t, 100)
	_, other := rsaKeys(t)
	token := validToken(t)
	if _, err := f.verifier.Verify(token); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	f.keys.mu.Lock()
	f.keys.keys[testKID] = &other.PublicKey
	f.keys.mu.Unlock()

	if _, err := f.verifier.Verify(token); !errors.Is(err, ErrSignature) {
		t.Errorf("Verify after the kid was given another key returned %v, expected ErrSignature", err)
	}
}

func TestCacheFailuresNotCached(t *testing.T) {
	f := newFixture(t, 100)
	_, other := rsaKeys(t)
	token := signToken(t, other, rs256Header(), validClaims())

	for range 2 {
		if _, err := f.verifier.Verify(token); !errors.Is(err, ErrSignature) {
			t.Fatalf("Verify returned %v, expected ErrSignature", err)
		}
	}
	if n := f.verifier.cache.len(); n != 0 {
		t.Errorf("cache has %d entries after failed verifications, expected 0", n)
	}
}

func TestCacheBounded(t *testing.T) {
	const entries = 8
	f := newFixture(t, entries)
	signing, _ := rsaKeys(t)

	for i := range 50 {
		claims := validClaims()
		claims["jti"] = fmt.Sprintf("token-%d", i)
		if _, err := f.verifier.Verify(signToken(t, signing, rs256Header(), claims)); err != nil {
			t.Fatalf("Verify token %d: %v", i, err)
		}
	}

	if n := f.verifier.cache.len(); n > entries {
		t.Errorf("cache has %d entries, expected at most %d", n, entries)
	}
}

func TestCacheShardSizes(t *testing.T) {
	tests := []struct {
		maxEntries   int
		shards       int
		shardEntries int
	}{
		{1, 1, 1},
		{3, 2, 1},
		{100, 64, 1},
		{10000, 64, 156},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.maxEntries), func(t *testing.T) {
			c := newCache(tt.maxEntries)
			if len(c.shards) != tt.shards {
				t.Errorf("%d shards, expected %d", len(c.shards), tt.shards)
			}
			if c.shardEntries != tt.shardEntries {
				t.Errorf("%d entries per shard, expected %d", c.shardEntries, tt.shardEntries)
			}
		})
	}
}

func TestCacheEvictsExpiredFirst(t *testing.T) {
	c := newCache(3)
	now := testNow
	digest := func(i int) [sha256.Size]byte { return sha256.Sum256([]byte{byte(i)}) }

	// The cache has 2 shards of 1 entry, so use digests in one shard.
	shard := c.shard(digest(0))
	var same [][sha256.Size]byte
	for i := 0; len(same) < 2; i++ {
		if c.shard(digest(i)) == shard {
			same = append(same, digest(i))
		}
	}

	c.put(same[0], cacheEntry{validUntil: now.Add(time.Minute)}, now)
	c.put(same[1], cacheEntry{validUntil: now.Add(time.Hour)}, now.Add(2*time.Minute))

	if _, ok := c.get(same[0]); ok {
		t.Error("expired entry is still cached")
	}
	if _, ok := c.get(same[1]); !ok {
		t.Error("new entry is not cached")
	}
}

func TestCacheEvictsWhenNoneExpired(t *testing.T) {
	c := newCache(2)
	c.shards = c.shards[:1]
	c.shardMask = 0
	c.shardEntries = 2
	now := testNow
	first, second, third := sha256.Sum256([]byte("first")), sha256.Sum256([]byte("second")), sha256.Sum256([]byte("third"))

	c.put(first, cacheEntry{validUntil: now.Add(time.Hour)}, now)
	c.put(second, cacheEntry{validUntil: now.Add(time.Minute)}, now)
	c.put(third, cacheEntry{validUntil: now.Add(time.Hour)}, now)

	if n := c.len(); n != 2 {
		t.Errorf("cache has %d entries, expected 2", n)
	}
	if _, ok := c.get(third); !ok {
		t.Error("new entry is not cached")
	}
}

func TestCacheEvictsAllExpired(t *testing.T) {
	c := newCache(4)
	c.shards = c.shards[:1]
	c.shardMask = 0
	c.shardEntries = 4
	now := testNow
	for i := range 4 {
		c.put(sha256.Sum256([]byte{byte(i)}), cacheEntry{validUntil: now.Add(time.Duration(i+1) * time.Minute)}, now)
	}
	live := sha256.Sum256([]byte("live"))

	c.put(live, cacheEntry{validUntil: now.Add(time.Hour)}, now.Add(3*time.Minute))

	if n := c.len(); n != 2 {
		t.Errorf("cache has %d entries, expected the one live old entry and the new one", n)
	}
	if _, ok := c.get(sha256.Sum256([]byte{3})); !ok {
		t.Error("old entry that has not expired was evicted")
	}
}
