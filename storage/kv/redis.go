package kv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/runtime/gcra"
)

// gcraScript is gcra.Decide in Lua, run atomically by Redis. All times are
// integer milliseconds: ARGV[1] is now as Unix time, ARGV[2] the emission
// interval and ARGV[3] the tolerance, Interval*(Burst-1). The TAT is stored
// as decimal Unix milliseconds and expires with PX when it passes. It returns
// {allowed (0 or 1), remaining, retry-after, reset-after}.
var gcraScript = rueidis.NewLuaScript(`
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])

local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then
  tat = tonumber(stored)
  if tat == nil then
    return redis.error_reply('stored TAT is not a number')
  end
  if tat < now then
    tat = now
  end
end

local new_tat = tat + interval
local allow_at = new_tat - interval - tolerance
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end

local remaining = 0
if interval > 0 then
  local free = tolerance + interval - (new_tat - now)
  if free > 0 then
    remaining = math.floor(free / interval)
  end
end

if new_tat > now then
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', string.format('%.0f', new_tat - now))
else
  redis.call('DEL', KEYS[1])
end
return {1, remaining, 0, new_tat - now}
`)

// incrByScript is INCRBY that sets the ttl in ARGV[2] milliseconds only when
// it creates the key, so later increments never extend the window.
var incrByScript = rueidis.NewLuaScript(`
local existed = redis.call('EXISTS', KEYS[1])
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if existed == 0 and tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
`)

// Redis is the Store on a Redis server through rueidis, shared by every node
// that uses the same server and prefix. Keys expire by the server's clock,
// and GCRA uses the now its caller passes. It is safe for concurrent use.
type Redis struct {
	client rueidis.Client
	prefix string
	// clock is not read yet: expiry follows the server's clock.
	clock clock.Clock

	mu            sync.Mutex
	closed        bool
	subscriptions map[*redisSubscription]struct{}
}

type redisSubscription struct {
	stop context.CancelFunc
	done chan struct{}
}

var _ Store = (*Redis)(nil)

// NewRedis connects to the Redis server at rawURL (redis:// or rediss://,
// as rueidis.ParseURL reads them), pings it with ctx and returns a store
// that adds prefix to every key and channel. Errors never contain the
// URL's password.
func NewRedis(ctx context.Context, rawURL, prefix string, c clock.Clock) (*Redis, error) {
	redacted := redactURL(rawURL)

	option, err := rueidis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse redis URL %s: %w", redacted, err)
	}
	option.DisableCache = true

	client, err := rueidis.NewClient(option)
	if err != nil {
		return nil, fmt.Errorf("connect to redis %s: %w", redacted, err)
	}
	if err := client.Do(ctx, client.B().Ping().Build()).Error(); err != nil {
		client.Close()
		return nil, fmt.Errorf("ping redis %s: %w", redacted, err)
	}

	return &Redis{
		client:        client,
		prefix:        prefix,
		clock:         c,
		subscriptions: make(map[*redisSubscription]struct{}),
	}, nil
}

// check returns ErrClosed after Close.
func (r *Redis) check() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	return nil
}

// wrap names the step of a failed command, turning the client's closing
// error into ErrClosed after Close.
func (r *Redis) wrap(step, key string, err error) error {
	if errors.Is(err, rueidis.ErrClosing) && r.check() != nil {
		return ErrClosed
	}
	return fmt.Errorf("redis %s %s: %w", step, key, err)
}

// Ping sends PING.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.check(); err != nil {
		return err
	}
	if err := r.client.Do(ctx, r.client.B().Ping().Build()).Error(); err != nil {
		return r.wrap("ping", "", err)
	}
	return nil
}

// Get returns the value of key and whether it exists.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := r.check(); err != nil {
		return nil, false, err
	}

	value, err := r.client.Do(ctx, r.client.B().Get().Key(r.prefix+key).Build()).AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, r.wrap("get", key, err)
	}
	if value == nil {
		value = []byte{}
	}
	return value, true, nil
}

// Set stores value under key with SET, with PX when ttl is positive. A ttl
// below one millisecond is rounded up to one; a negative ttl is an error.
func (r *Redis) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL(key, ttl); err != nil {
		return err
	}
	if err := r.check(); err != nil {
		return err
	}

	set := r.client.B().Set().Key(r.prefix + key).Value(rueidis.BinaryString(value))
	var command rueidis.Completed
	if ttl > 0 {
		command = set.PxMilliseconds(ttlMillis(ttl)).Build()
	} else {
		command = set.Build()
	}
	if err := r.client.Do(ctx, command).Error(); err != nil {
		return r.wrap("set", key, err)
	}
	return nil
}

// SetNX stores value under key with SET NX, and PX when ttl is positive.
func (r *Redis) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL(key, ttl); err != nil {
		return false, err
	}
	if err := r.check(); err != nil {
		return false, err
	}

	set := r.client.B().Set().Key(r.prefix + key).Value(rueidis.BinaryString(value)).Nx()
	var command rueidis.Completed
	if ttl > 0 {
		command = set.PxMilliseconds(ttlMillis(ttl)).Build()
	} else {
		command = set.Build()
	}
	err := r.client.Do(ctx, command).Error()
	if rueidis.IsRedisNil(err) {
		return false, nil
	}
	if err != nil {
		return false, r.wrap("setnx", key, err)
	}
	return true, nil
}

// Delete removes keys with DEL.
func (r *Redis) Delete(ctx context.Context, keys ...string) error {
	if err := r.check(); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}

	prefixed := make([]string, len(keys))
	for i, key := range keys {
		prefixed[i] = r.prefix + key
	}
	if err := r.client.Do(ctx, r.client.B().Del().Key(prefixed...).Build()).Error(); err != nil {
		return r.wrap("delete", keys[0], err)
	}
	return nil
}

// IncrBy runs INCRBY and, when it created the key, PEXPIRE, in one script.
//
// NOTE: Redis hands integer replies to Lua as doubles, so a counter beyond
// 2^53 comes back rounded.
func (r *Redis) IncrBy(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := checkTTL(key, ttl); err != nil {
		return 0, err
	}
	if err := r.check(); err != nil {
		return 0, err
	}

	var ttlArg int64
	if ttl > 0 {
		ttlArg = ttlMillis(ttl)
	}
	args := []string{strconv.FormatInt(delta, 10), strconv.FormatInt(ttlArg, 10)}
	value, err := incrByScript.Exec(ctx, r.client, []string{r.prefix + key}, args).AsInt64()
	if err != nil {
		return 0, r.wrap("incrby", key, err)
	}
	return value, nil
}

// GCRA runs gcraScript, which makes the same decisions as gcra.Decide when
// now and the limit's interval are whole milliseconds.
//
// NOTE: now and the interval are truncated to milliseconds, so a limit whose
// interval has a fraction of a millisecond, such as 7 per minute, admits
// slightly more often than gcra.Decide would.
func (r *Redis) GCRA(ctx context.Context, key string, limit gcra.Limit, now time.Time) (gcra.Decision, error) {
	if err := r.check(); err != nil {
		return gcra.Decision{}, err
	}

	interval := limit.Interval().Milliseconds()
	burst := max(limit.Burst, 1)
	tolerance := interval * int64(burst-1)
	args := []string{
		strconv.FormatInt(now.UnixMilli(), 10),
		strconv.FormatInt(interval, 10),
		strconv.FormatInt(tolerance, 10),
	}

	reply, err := gcraScript.Exec(ctx, r.client, []string{r.prefix + key}, args).AsIntSlice()
	if err != nil {
		return gcra.Decision{}, r.wrap("rate limit", key, err)
	}
	if len(reply) != 4 {
		return gcra.Decision{}, fmt.Errorf("redis rate limit %s: the script returned %d values, want 4", key, len(reply))
	}
	return gcra.Decision{
		Allowed:    reply[0] == 1,
		Remaining:  int(reply[1]),
		RetryAfter: time.Duration(reply[2]) * time.Millisecond,
		ResetAfter: time.Duration(reply[3]) * time.Millisecond,
	}, nil
}

// Publish sends message with PUBLISH.
func (r *Redis) Publish(ctx context.Context, channel string, message []byte) error {
	if err := r.check(); err != nil {
		return err
	}

	command := r.client.B().Publish().Channel(r.prefix + channel).Message(rueidis.BinaryString(message)).Build()
	if err := r.client.Do(ctx, command).Error(); err != nil {
		return r.wrap("publish", channel, err)
	}
	return nil
}

// Subscribe holds a dedicated connection with SUBSCRIBE channel and returns
// once Redis has confirmed the subscription, so every message published
// after that is delivered. handle runs on the subscription's goroutine, one
// message at a time, and a slow handle delays only this subscription. Once
// cancel returns, handle is not called again, except for a call already
// running; cancel may be called more than once and from inside handle.
// A lost connection ends the subscription.
func (r *Redis) Subscribe(ctx context.Context, channel string, handle func(message []byte)) (func(), error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	receiveCtx, stop := context.WithCancel(context.Background())
	subscription := &redisSubscription{stop: stop, done: make(chan struct{})}
	r.subscriptions[subscription] = struct{}{}
	r.mu.Unlock()

	confirmed := make(chan struct{})
	var confirmOnce sync.Once
	hookCtx := rueidis.WithOnSubscriptionHook(receiveCtx, func(s rueidis.PubSubSubscription) {
		if s.Kind == "subscribe" {
			confirmOnce.Do(func() { close(confirmed) })
		}
	})

	dedicated, release := r.client.Dedicate()
	receiveErr := make(chan error, 1)
	go func() {
		defer close(subscription.done)
		defer r.forget(subscription)

		subscribe := dedicated.B().Subscribe().Channel(r.prefix + channel).Build()
		err := dedicated.Receive(hookCtx, subscribe, func(message rueidis.PubSubMessage) {
			if receiveCtx.Err() == nil {
				handle([]byte(message.Message))
			}
		})
		// The connection is still subscribed, so it must not go back to the pool.
		dedicated.Close()
		release()
		receiveErr <- err
	}()

	select {
	case <-confirmed:
		return stop, nil
	case err := <-receiveErr:
		stop()
		return nil, r.wrap("subscribe", channel, err)
	case <-ctx.Done():
		stop()
		return nil, fmt.Errorf("redis subscribe %s: %w", channel, ctx.Err())
	}
}

func (r *Redis) forget(subscription *redisSubscription) {
	r.mu.Lock()
	delete(r.subscriptions, subscription)
	r.mu.Unlock()
}

// Close cancels every subscription, waits for their goroutines and closes
// the client. Later calls return ErrClosed; closing twice is not an error.
// Close must not be called from inside a subscription's handle.
func (r *Redis) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	subscriptions := make([]*redisSubscription, 0, len(r.subscriptions))
	for subscription := range r.subscriptions {
		subscriptions = append(subscriptions, subscription)
	}
	r.mu.Unlock()

	for _, subscription := range subscriptions {
		subscription.stop()
		<-subscription.done
	}
	r.client.Close()
	return nil
}

// ttlMillis converts a positive ttl to the milliseconds PX takes, rounding a
// fraction of a millisecond up so that a short ttl still expires.
func ttlMillis(ttl time.Duration) int64 {
	return int64((ttl + time.Millisecond - 1) / time.Millisecond)
}

// redactURL hides the password of a Redis URL for errors and logs.
func redactURL(rawURL string) string {
	parsed, err := url.Parse(rawURL)
	if err != nil {
		return "<invalid URL>"
	}
	return parsed.Redacted()
}
