// Package kvtest is the conformance suite that every kv.Store passes, so the
// in-process store and the Redis store behave alike.
package kvtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/runtime/gcra"
	"github.com/nexus-suite/nexus/storage/kv"
)

// Factory returns a new, empty store and the fake clock it reads. Each call
// must return a store with its own prefix on the same backend, and the
// factory closes the store and removes its keys at t's cleanup. The fake
// clock should start at the wall-clock time, because a Redis server expires
// keys by its own clock.
type Factory func(t *testing.T) (kv.Store, *clock.Fake)

// expiryWait bounds how long a test waits for a key to disappear. The
// in-process store drops the key as soon as the fake clock passes its ttl;
// Redis drops it once the server's clock passes the same short ttl.
const expiryWait = 5 * time.Second

// shortTTL is long enough for a check right after a write to see the key on
// Redis, and short enough for the expiry tests to stay fast.
const shortTTL = 300 * time.Millisecond

// messageWait bounds how long a test waits for a published message.
const messageWait = 5 * time.Second

// Run runs the conformance suite against the stores that newStore returns.
func Run(t *testing.T, newStore Factory) {
	t.Run("Ping", func(t *testing.T) { testPing(t, newStore) })
	t.Run("GetSet", func(t *testing.T) { testGetSet(t, newStore) })
	t.Run("TTLExpiry", func(t *testing.T) { testTTLExpiry(t, newStore) })
	t.Run("NegativeTTL", func(t *testing.T) { testNegativeTTL(t, newStore) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, newStore) })
	t.Run("SetNX", func(t *testing.T) { testSetNX(t, newStore) })
	t.Run("SetNXRace", func(t *testing.T) { testSetNXRace(t, newStore) })
	t.Run("IncrBy", func(t *testing.T) { testIncrBy(t, newStore) })
	t.Run("IncrByTTLOnCreate", func(t *testing.T) { testIncrByTTLOnCreate(t, newStore) })
	t.Run("GCRABurstThenReject", func(t *testing.T) { testGCRABurstThenReject(t, newStore) })
	t.Run("GCRAConcurrent", func(t *testing.T) { testGCRAConcurrent(t, newStore) })
	t.Run("PubSub", func(t *testing.T) { testPubSub(t, newStore) })
	t.Run("PubSubCancel", func(t *testing.T) { testPubSubCancel(t, newStore) })
	t.Run("PrefixIsolation", func(t *testing.T) { testPrefixIsolation(t, newStore) })
	t.Run("Close", func(t *testing.T) { testClose(t, newStore) })
}

func testPing(t *testing.T, newStore Factory) {
	store, _ := newStore(t)
	if err := store.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testGetSet(t *testing.T, newStore Factory) {
	ctx := context.Background()
	store, _ := newStore(t)

	if _, ok := mustGet(t, store, "missing"); ok {
		t.Error("Get of a missing key reported it exists")
	}

	mustSet(t, store, "k", "one", 0)
	if got, ok := mustGet(t, store, "k"); !ok || got != "one" {
		t.Errorf("Get after Set = %q, %v; want \"one\", true", got, ok)
	}

	mustSet(t, store, "k", "two", 0)
	if got, _ := mustGet(t, store, "k"); got != "two" {
		t.Errorf("Get after overwrite = %q, want \"two\"", got)
	}

	if err := store.Set(ctx, "empty", []byte{}, 0); err != nil {
		t.Fatalf("Set empty value: %v", err)
	}
	if got, ok := mustGet(t, store, "empty"); !ok || got != "" {
		t.Errorf("Get of empty value = %q, %v; want \"\", true", got, ok)
	}

	binary := []byte{0, 1, 255, '\n'}
	if err := store.Set(ctx, "binary", binary, 0); err != nil {
		t.Fatalf("Set binary value: %v", err)
	}
	if got, _ := mustGet(t, store, "binary"); got != string(binary) {
		t.Errorf("Get of binary value = %q, want %q", got, binary)
	}
}

func testTTLExpiry(t *testing.T, newStore Factory) {
	store, fake := newStore(t)

	mustSet(t, store, "short", "v", shortTTL)
	mustSet(t, store, "long", "v", time.Hour)
	mustSet(t, store, "forever", "v", 0)

	if _, ok := mustGet(t, store, "short"); !ok {
		t.Fatal("key with a ttl is missing right after Set")
	}

	fake.Advance(shortTTL)
	waitGone(t, store, "short")

	fake.Advance(59 * time.Minute)
	if _, ok := mustGet(t, store, "long"); !ok {
		t.Error("key expired before its ttl")
	}
	if _, ok := mustGet(t, store, "forever"); !ok {
		t.Error("key without a ttl expired")
	}
}

func testNegativeTTL(t *testing.T, newStore Factory) {
	ctx := context.Background()
	store, _ := newStore(t)

	if err := store.Set(ctx, "k", []byte("v"), -time.Second); err == nil {
		t.Error("Set with a negative ttl succeeded, want an error")
	}
	if _, err := store.SetNX(ctx, "k", []byte("v"), -time.Second); err == nil {
		t.Error("SetNX with a negative ttl succeeded, want an error")
	}
	if _, err := store.IncrBy(ctx, "n", 1, -time.Second); err == nil {
		t.Error("IncrBy with a negative ttl succeeded, want an error")
	}
}

func testDelete(t *testing.T, newStore Factory) {
	ctx := context.Background()
	store, _ := newStore(t)

	mustSet(t, store, "a", "1", 0)
	mustSet(t, store, "b", "2", 0)
	mustSet(t, store, "c", "3", 0)

	if err := store.Delete(ctx, "a", "b", "missing"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, ok := mustGet(t, store, "a"); ok {
		t.Error("key a exists after Delete")
	}
	if _, ok := mustGet(t, store, "b"); ok {
		t.Error("key b exists after Delete")
	}
	if _, ok := mustGet(t, store, "c"); !ok {
		t.Error("key c, not deleted, is missing")
	}
	if err := store.Delete(ctx); err != nil {
		t.Errorf("Delete with no keys: %v", err)
	}
}

func testSetNX(t *testing.T, newStore Factory) {
	ctx := context.Background()
	store, fake := newStore(t)

	ok, err := store.SetNX(ctx, "k", []byte("first"), shortTTL)
	if err != nil {
		t.Fatalf("first SetNX: %v", err)
	}
	if !ok {
		t.Error("first SetNX reported the key existed")
	}

	ok, err = store.SetNX(ctx, "k", []byte("second"), shortTTL)
	if err != nil {
		t.Fatalf("second SetNX: %v", err)
	}
	if ok {
		t.Error("second SetNX stored the value over an existing key")
	}
	if got, _ := mustGet(t, store, "k"); got != "first" {
		t.Errorf("value after second SetNX = %q, want \"first\"", got)
	}

	fake.Advance(shortTTL)
	waitGone(t, store, "k")
	ok, err = store.SetNX(ctx, "k", []byte("third"), 0)
	if err != nil {
		t.Fatalf("SetNX after expiry: %v", err)
	}
	if !ok {
		t.Error("SetNX after expiry reported the key existed")
	}
}

func testSetNXRace(t *testing.T, newStore Factory) {
	const goroutines = 50
	store, _ := newStore(t)

	var (
		wins  atomic.Int32
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make(chan error, goroutines)
	)
	for i := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ok, err := store.SetNX(context.Background(), "lock", []byte(fmt.Sprint(i)), time.Minute)
			if err != nil {
				errs <- err
				return
			}
			if ok {
				wins.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)

	for err := range errs {
		t.Errorf("SetNX: %v", err)
	}
	if got := wins.Load(); got != 1 {
		t.Errorf("SetNX winners = %d, want exactly 1", got)
	}
}

func testIncrBy(t *testing.T, newStore Factory) {
	ctx := context.Background()
	store, _ := newStore(t)

	steps := []struct {
		delta int64
		want  int64
	}{{1, 1}, {4, 5}, {-7, -2}, {0, -2}}
	for _, step := range steps {
		got, err := store.IncrBy(ctx, "n", step.delta, 0)
		if err != nil {
			t.Fatalf("IncrBy %d: %v", step.delta, err)
		}
		if got != step.want {
			t.Errorf("IncrBy %d = %d, want %d", step.delta, got, step.want)
		}
	}

	if got, _ := mustGet(t, store, "n"); got != "-2" {
		t.Errorf("Get of counter = %q, want \"-2\"", got)
	}

	mustSet(t, store, "text", "abc", 0)
	if _, err := store.IncrBy(ctx, "text", 1, 0); err == nil {
		t.Error("IncrBy of a non-integer value succeeded, want an error")
	}
}

func testIncrByTTLOnCreate(t *testing.T, newStore Factory) {
	ctx := context.Background()
	store, fake := newStore(t)

	if got, err := store.IncrBy(ctx, "window", 1, shortTTL); err != nil || got != 1 {
		t.Fatalf("first IncrBy = %d, %v; want 1, nil", got, err)
	}
	fake.Advance(shortTTL / 2)
	// A later increment with a long ttl must not extend the window.
	if got, err := store.IncrBy(ctx, "window", 1, time.Hour); err != nil || got != 2 {
		t.Fatalf("second IncrBy = %d, %v; want 2, nil", got, err)
	}

	fake.Advance(shortTTL / 2)
	waitGone(t, store, "window")

	if got, err := store.IncrBy(ctx, "window", 1, shortTTL); err != nil || got != 1 {
		t.Errorf("IncrBy after expiry = %d, %v; want 1, nil", got, err)
	}
}

func testGCRABurstThenReject(t *testing.T, newStore Factory) {
	ctx := context.Background()
	store, fake := newStore(t)
	limit := gcra.Limit{Rate: 60, Period: time.Minute, Burst: 5}
	now := fake.Now().Truncate(time.Millisecond)

	for i := range limit.Burst {
		decision, err := store.GCRA(ctx, "ip", limit, now)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		if !decision.Allowed {
			t.Fatalf("request %d rejected within the burst", i+1)
		}
		if want := limit.Burst - 1 - i; decision.Remaining != want {
			t.Errorf("request %d: remaining = %d, want %d", i+1, decision.Remaining, want)
		}
	}

	decision, err := store.GCRA(ctx, "ip", limit, now)
	if err != nil {
		t.Fatalf("request after the burst: %v", err)
	}
	if decision.Allowed {
		t.Fatal("request after the burst admitted")
	}
	if decision.RetryAfter != time.Second {
		t.Errorf("retry after = %v, want 1s", decision.RetryAfter)
	}
	if got := gcra.RetryAfterSeconds(decision.RetryAfter); got != 1 {
		t.Errorf("retry after seconds = %d, want 1", got)
	}
	if decision.ResetAfter != 5*time.Second {
		t.Errorf("reset after = %v, want 5s", decision.ResetAfter)
	}

	other, err := store.GCRA(ctx, "other-ip", limit, now)
	if err != nil {
		t.Fatalf("request on another key: %v", err)
	}
	if !other.Allowed {
		t.Error("another key was limited by the first key's requests")
	}

	now = now.Add(limit.Interval())
	decision, err = store.GCRA(ctx, "ip", limit, now)
	if err != nil {
		t.Fatalf("request after one interval: %v", err)
	}
	if !decision.Allowed {
		t.Error("request after one interval rejected")
	}
}

func testGCRAConcurrent(t *testing.T, newStore Factory) {
	const requests = 200
	store, fake := newStore(t)
	limit := gcra.Limit{Rate: 1, Period: time.Hour, Burst: 10}
	now := fake.Now().Truncate(time.Millisecond)

	var (
		admitted atomic.Int32
		wg       sync.WaitGroup
		start    = make(chan struct{})
		errs     = make(chan error, requests)
	)
	for range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			decision, err := store.GCRA(context.Background(), "shared", limit, now)
			if err != nil {
				errs <- err
				return
			}
			if decision.Allowed {
				admitted.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)

	for err := range errs {
		t.Errorf("GCRA: %v", err)
	}
	if got := admitted.Load(); got != int32(limit.Burst) {
		t.Errorf("admitted = %d of %d concurrent requests, want exactly the burst %d", got, requests, limit.Burst)
	}
}

func testPubSub(t *testing.T, newStore Factory) {
	ctx := context.Background()
	store, _ := newStore(t)

	first := subscribe(t, store, "events")
	second := subscribe(t, store, "events")
	unrelated := subscribe(t, store, "other")

	for _, message := range []string{"m1", "m2", "m3"} {
		if err := store.Publish(ctx, "events", []byte(message)); err != nil {
			t.Fatalf("Publish %s: %v", message, err)
		}
	}

	for _, message := range []string{"m1", "m2", "m3"} {
		if got := first.next(t); got != message {
			t.Errorf("first subscriber got %q, want %q", got, message)
		}
		if got := second.next(t); got != message {
			t.Errorf("second subscriber got %q, want %q", got, message)
		}
	}

	// A marker on the unrelated channel arrives after anything misrouted.
	if err := store.Publish(ctx, "other", []byte("marker")); err != nil {
		t.Fatalf("Publish marker: %v", err)
	}
	if got := unrelated.next(t); got != "marker" {
		t.Errorf("subscriber of another channel got %q, want only \"marker\"", got)
	}
}

func testPubSubCancel(t *testing.T, newStore Factory) {
	ctx := context.Background()
	store, _ := newStore(t)

	canceled := subscribe(t, store, "events")
	live := subscribe(t, store, "events")

	canceled.cancel()
	canceled.cancel() // a second call is harmless
	if err := store.Publish(ctx, "events", []byte("after cancel")); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	if got := live.next(t); got != "after cancel" {
		t.Errorf("live subscriber got %q, want \"after cancel\"", got)
	}
	select {
	case got := <-canceled.messages:
		t.Errorf("canceled subscriber got %q", got)
	case <-time.After(100 * time.Millisecond):
	}
}

func testPrefixIsolation(t *testing.T, newStore Factory) {
	ctx := context.Background()
	storeA, fakeA := newStore(t)
	storeB, _ := newStore(t)

	mustSet(t, storeA, "shared-name", "a", 0)
	if _, ok := mustGet(t, storeB, "shared-name"); ok {
		t.Error("store B sees a key set through store A")
	}

	if _, err := storeB.IncrBy(ctx, "shared-name", 1, 0); err != nil {
		t.Errorf("IncrBy in store B on a name store A holds as text: %v", err)
	}

	limit := gcra.Limit{Rate: 1, Period: time.Hour, Burst: 1}
	now := fakeA.Now().Truncate(time.Millisecond)
	if d, err := storeA.GCRA(ctx, "limit", limit, now); err != nil || !d.Allowed {
		t.Fatalf("store A first GCRA = %+v, %v; want admitted", d, err)
	}
	if d, err := storeB.GCRA(ctx, "limit", limit, now); err != nil || !d.Allowed {
		t.Errorf("store B GCRA = %+v, %v; want admitted, as its key is its own", d, err)
	}

	inB := subscribe(t, storeB, "events")
	if err := storeA.Publish(ctx, "events", []byte("from A")); err != nil {
		t.Fatalf("Publish through A: %v", err)
	}
	if err := storeB.Publish(ctx, "events", []byte("from B")); err != nil {
		t.Fatalf("Publish through B: %v", err)
	}
	if got := inB.next(t); got != "from B" {
		t.Errorf("subscriber of B got %q, want only \"from B\"", got)
	}
}

func testClose(t *testing.T, newStore Factory) {
	ctx := context.Background()
	store, _ := newStore(t)
	subscribe(t, store, "events")

	if err := store.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := store.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, _, err := store.Get(ctx, "k"); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
	if err := store.Publish(ctx, "events", []byte("x")); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
	if err := store.Ping(ctx); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Ping after Close = %v, want ErrClosed", err)
	}
}

// subscription collects the messages of one Subscribe call.
type subscription struct {
	messages chan string
	cancel   func()
}

func subscribe(t *testing.T, store kv.Store, channel string) *subscription {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), messageWait)
	defer cancel()

	s := &subscription{messages: make(chan string, 100)}
	stop, err := store.Subscribe(ctx, channel, func(message []byte) {
		s.messages <- string(message)
	})
	if err != nil {
		t.Fatalf("Subscribe %s: %v", channel, err)
	}
	s.cancel = stop
	t.Cleanup(stop)
	return s
}

func (s *subscription) next(t *testing.T) string {
	t.Helper()

	select {
	case message := <-s.messages:
		return message
	case <-time.After(messageWait):
		t.Fatalf("no message within %v", messageWait)
		return ""
	}
}

func mustSet(t *testing.T, store kv.Store, key, value string, ttl time.Duration) {
	t.Helper()
	if err := store.Set(context.Background(), key, []byte(value), ttl); err != nil {
		t.Fatalf("Set %s: %v", key, err)
	}
}

func mustGet(t *testing.T, store kv.Store, key string) (string, bool) {
	t.Helper()
	value, ok, err := store.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	return string(value), ok
}

// waitGone polls until key is missing, failing after expiryWait.
func waitGone(t *testing.T, store kv.Store, key string) {
	t.Helper()

	deadline := time.Now().Add(expiryWait)
	for {
		if _, ok := mustGet(t, store, key); !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("key %s still exists %v after its ttl", key, expiryWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
