package kv

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/runtime/gcra"
)

// memorySweepInterval is how often, in wall-clock time, a Memory store
// removes expired keys that are not read again.
const memorySweepInterval = time.Minute

// subscriberBufferSize is how many messages a Memory subscriber may have
// waiting before newer messages to it are dropped.
const subscriberBufferSize = 256

// dropLogEvery limits the warning about dropped messages to the first drop
// of a subscriber and then one in every dropLogEvery drops.
const dropLogEvery = 1000

// Memory is the in-process Store, used when no Redis is configured. Keys
// expire by the injected clock: an expired key is gone for every read, and
// a background sweep frees its memory. It is safe for concurrent use.
//
// Publish does not wait for subscribers to handle a message, because each
// subscriber has its own goroutine and a buffer of subscriberBufferSize
// messages, delivered in order. When a
// subscriber's buffer is full, Publish drops the message for that subscriber
// and logs a warning. Redis pub/sub gives no delivery guarantee either.
type Memory struct {
	clock  clock.Clock
	prefix string

	mu          sync.Mutex
	entries     map[string]memoryEntry
	subscribers map[string]map[*memorySubscriber]struct{}
	closed      bool

	stopSweep chan struct{}
	sweepDone chan struct{}
}

type memoryEntry struct {
	value []byte
	// expiresAt is zero for a key without a ttl.
	expiresAt time.Time
}

type memorySubscriber struct {
	channel  string
	messages chan []byte
	done     chan struct{}
	once     sync.Once
	dropped  int
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-process store that reads time from c and
// adds prefix to every key and channel. It starts the sweep goroutine, which
// Close stops.
func NewMemory(c clock.Clock, prefix string) *Memory {
	m := &Memory{
		clock:       c,
		prefix:      prefix,
		entries:     make(map[string]memoryEntry),
		subscribers: make(map[string]map[*memorySubscriber]struct{}),
		stopSweep:   make(chan struct{}),
		sweepDone:   make(chan struct{}),
	}
	go m.sweepLoop()
	return m
}

func (m *Memory) sweepLoop() {
	defer close(m.sweepDone)

	ticker := time.NewTicker(memorySweepInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			m.Sweep()
		case <-m.stopSweep:
			return
		}
	}
}

// Sweep removes every key that has expired by the store's clock and returns
// how many it removed. The sweep goroutine calls it; tests may too.
func (m *Memory) Sweep() int {
	m.mu.Lock()
	defer m.mu.Unlock()

	now := m.clock.Now()
	removed := 0
	for key, entry := range m.entries {
		if entry.expired(now) {
			delete(m.entries, key)
			removed++
		}
	}
	return removed
}

// Len returns the number of keys held, expired or not, for tests of the sweep.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

func (e memoryEntry) expired(now time.Time) bool {
	return !e.expiresAt.IsZero() && !now.Before(e.expiresAt)
}

// lookup returns the live entry under the prefixed key, deleting it when
// it has expired. The caller holds m.mu.
func (m *Memory) lookup(key string, now time.Time) (memoryEntry, bool) {
	entry, ok := m.entries[key]
	if !ok {
		return memoryEntry{}, false
	}
	if entry.expired(now) {
		delete(m.entries, key)
		return memoryEntry{}, false
	}
	return entry, true
}

func (m *Memory) expiry(now time.Time, ttl time.Duration) time.Time {
	if ttl == 0 {
		return time.Time{}
	}
	return now.Add(ttl)
}

// Ping returns ErrClosed after Close and nil otherwise.
func (m *Memory) Ping(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	return nil
}

// Get returns a copy of the value of key and whether it exists.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, false, ErrClosed
	}

	entry, ok := m.lookup(m.prefix+key, m.clock.Now())
	if !ok {
		return nil, false, nil
	}
	return clone(entry.value), true, nil
}

// Set stores a copy of value under key. A negative ttl is an error.
func (m *Memory) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL(key, ttl); err != nil {
		return err
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}

	m.entries[m.prefix+key] = memoryEntry{value: clone(value), expiresAt: m.expiry(m.clock.Now(), ttl)}
	return nil
}

// SetNX stores a copy of value under key only when key does not exist.
func (m *Memory) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL(key, ttl); err != nil {
		return false, err
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false, ErrClosed
	}

	now := m.clock.Now()
	if _, ok := m.lookup(m.prefix+key, now); ok {
		return false, nil
	}
	m.entries[m.prefix+key] = memoryEntry{value: clone(value), expiresAt: m.expiry(now, ttl)}
	return true, nil
}

// Delete removes keys; missing keys are not an error.
func (m *Memory) Delete(ctx context.Context, keys ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}

	for _, key := range keys {
		delete(m.entries, m.prefix+key)
	}
	return nil
}

// IncrBy adds delta to the decimal integer under key, as Redis INCRBY does,
// and sets ttl only when the call creates the key. A value that is not a
// decimal int64, or a sum that overflows, is an error.
func (m *Memory) IncrBy(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := checkTTL(key, ttl); err != nil {
		return 0, err
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}

	now := m.clock.Now()
	entry, ok := m.lookup(m.prefix+key, now)
	if !ok {
		entry = memoryEntry{value: []byte("0"), expiresAt: m.expiry(now, ttl)}
	}
	current, err := strconv.ParseInt(string(entry.value), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("increment %s: the value is not an integer", key)
	}
	sum := current + delta
	if (delta > 0 && sum < current) || (delta < 0 && sum > current) {
		return 0, fmt.Errorf("increment %s by %d: integer overflow", key, delta)
	}

	entry.value = strconv.AppendInt(nil, sum, 10)
	m.entries[m.prefix+key] = entry
	return sum, nil
}

// GCRA applies gcra.Decide to the TAT stored under key, as decimal Unix
// nanoseconds. The key expires when the TAT passes, because an idle key and
// a passed TAT lead to the same decision.
func (m *Memory) GCRA(ctx context.Context, key string, limit gcra.Limit, now time.Time) (gcra.Decision, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return gcra.Decision{}, ErrClosed
	}

	var tat time.Time
	if entry, ok := m.lookup(m.prefix+key, m.clock.Now()); ok {
		ns, err := strconv.ParseInt(string(entry.value), 10, 64)
		if err != nil {
			return gcra.Decision{}, fmt.Errorf("rate limit %s: the stored TAT is not an integer", key)
		}
		tat = time.Unix(0, ns)
	}

	decision, next := gcra.Decide(limit, tat, now)
	if decision.Allowed {
		m.entries[m.prefix+key] = memoryEntry{
			value:     strconv.AppendInt(nil, next.UnixNano(), 10),
			expiresAt: next,
		}
	}
	return decision, nil
}

// Publish queues message for every subscriber of channel in this process.
func (m *Memory) Publish(ctx context.Context, channel string, message []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}

	for subscriber := range m.subscribers[m.prefix+channel] {
		select {
		case subscriber.messages <- clone(message):
		default:
			subscriber.dropped++
			if subscriber.dropped%dropLogEvery == 1 {
				slog.WarnContext(ctx, "kv: subscriber buffer full, message dropped",
					slog.String("channel", channel),
					slog.Int("dropped_total", subscriber.dropped))
			}
		}
	}
	return nil
}

// Subscribe calls handle, from one goroutine per subscription, for each
// message published on channel after Subscribe returns. Once cancel returns,
// no further message is taken from the queue, but a call of handle that
// already took one may still run. Cancel may be called more than once and
// from inside handle.
func (m *Memory) Subscribe(ctx context.Context, channel string, handle func(message []byte)) (func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}

	subscriber := &memorySubscriber{
		channel:  m.prefix + channel,
		messages: make(chan []byte, subscriberBufferSize),
		done:     make(chan struct{}),
	}
	if m.subscribers[subscriber.channel] == nil {
		m.subscribers[subscriber.channel] = make(map[*memorySubscriber]struct{})
	}
	m.subscribers[subscriber.channel][subscriber] = struct{}{}

	go subscriber.deliver(handle)
	return func() { m.unsubscribe(subscriber) }, nil
}

func (s *memorySubscriber) deliver(handle func(message []byte)) {
	for {
		select {
		case <-s.done:
			return
		case message := <-s.messages:
			// Both cases may be ready at once; cancel wins.
			select {
			case <-s.done:
				return
			default:
			}
			handle(message)
		}
	}
}

func (m *Memory) unsubscribe(subscriber *memorySubscriber) {
	subscriber.once.Do(func() {
		m.mu.Lock()
		delete(m.subscribers[subscriber.channel], subscriber)
		if len(m.subscribers[subscriber.channel]) == 0 {
			delete(m.subscribers, subscriber.channel)
		}
		m.mu.Unlock()

		close(subscriber.done)
	})
}

// Close cancels every subscription, stops the sweep and drops all keys.
// Later calls return ErrClosed; closing twice is not an error.
func (m *Memory) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	var subscribers []*memorySubscriber
	for _, set := range m.subscribers {
		for subscriber := range set {
			subscribers = append(subscribers, subscriber)
		}
	}
	m.entries = nil
	m.mu.Unlock()

	for _, subscriber := range subscribers {
		m.unsubscribe(subscriber)
	}
	close(m.stopSweep)
	<-m.sweepDone
	return nil
}

func checkTTL(key string, ttl time.Duration) error {
	if ttl < 0 {
		return fmt.Errorf("set %s: ttl %v is negative, want 0 for no expiry or a positive duration", key, ttl)
	}
	return nil
}

func clone(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return append([]byte(nil), b...)
}
