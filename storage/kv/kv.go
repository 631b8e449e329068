// Package kv is the key-value store that several Nexus nodes share: Redis
// through rueidis in production, or an in-process stand-in with the same
// behaviour when no Redis is configured.
package kv

import (
	"context"
	"errors"
	"time"

	"github.com/nexus-suite/nexus/runtime/gcra"
)

// ErrClosed is returned by calls on a closed store.
var ErrClosed = errors.New("kv: store closed")

// Store is implemented by the Redis client and the in-process stand-in.
// Keys are namespaced by the store's prefix; callers pass bare keys.
// A ttl of zero means the key does not expire.
type Store interface {
	// Ping checks that the store responds.
	Ping(ctx context.Context) error
	// Get returns the value of key and whether it exists.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Set stores value under key.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// SetNX stores value under key only when key does not exist, and reports whether it did.
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Delete removes keys; missing keys are not an error.
	Delete(ctx context.Context, keys ...string) error
	// IncrBy adds delta to the integer under key and returns the new value.
	// The ttl is set only when the call creates the key.
	IncrBy(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
	// GCRA admits or rejects one request against the rate limit kept under
	// key, atomically, as of now.
	GCRA(ctx context.Context, key string, limit gcra.Limit, now time.Time) (gcra.Decision, error)
	// Publish sends message to every subscriber of channel, on every node.
	Publish(ctx context.Context, channel string, message []byte) error
	// Subscribe calls handle for each message published on channel until
	// the returned cancel function is called.
	Subscribe(ctx context.Context, channel string, handle func(message []byte)) (cancel func(), err error)
	// Close releases the store's connections.
	Close() error
}
