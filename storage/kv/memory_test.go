package kv_test

import (
	"context"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/runtime/gcra"
	"github.com/nexus-suite/nexus/storage/kv"
	"github.com/nexus-suite/nexus/storage/kv/kvtest"
)

func newMemory(t *testing.T) (*kv.Memory, *clock.Fake) {
	fake := clock.NewFake(time.Now())
	store := kv.NewMemory(fake, "test:")
	t.Cleanup(func() { store.Close() })
	return store, fake
}

func TestMemoryConformance(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) (kv.Store, *clock.Fake) {
		return newMemory(t)
	})
}

func TestMemorySweepRemovesExpired(t *testing.T) {
	ctx := context.Background()
	store, fake := newMemory(t)

	if err := store.Set(ctx, "short", []byte("v"), time.Second); err != nil {
		t.Fatal(err)
	}
	if err := store.Set(ctx, "forever", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if got := store.Sweep(); got != 0 {
		t.Errorf("Sweep before expiry removed %d keys, want 0", got)
	}

	fake.Advance(time.Second)
	if got := store.Sweep(); got != 1 {
		t.Errorf("Sweep after expiry removed %d keys, want 1", got)
	}
	if got := store.Len(); got != 1 {
		t.Errorf("Len after Sweep = %d, want 1", got)
	}
}

func TestMemoryGCRAKeyExpires(t *testing.T) {
	ctx := context.Background()
	store, fake := newMemory(t)
	limit := gcra.Limit{Rate: 60, Period: time.Minute, Burst: 3}

	if _, err := store.GCRA(ctx, "ip", limit, fake.Now()); err != nil {
		t.Fatal(err)
	}
	if got := store.Len(); got != 1 {
		t.Fatalf("Len after GCRA = %d, want 1", got)
	}

	fake.Advance(limit.Interval())
	store.Sweep()
	if got := store.Len(); got != 0 {
		t.Errorf("Len after the TAT passed = %d, want 0", got)
	}
}

func TestMemoryGCRAMatchesDecide(t *testing.T) {
	ctx := context.Background()
	store, fake := newMemory(t)
	limit := gcra.Limit{Rate: 7, Period: time.Minute, Burst: 4}
	steps := []time.Duration{0, 0, time.Millisecond, 3 * time.Second, 0, 0, 0, 9 * time.Second, 20 * time.Second, 0}

	now := fake.Now()
	var tat time.Time
	for i, step := range steps {
		now = now.Add(step)
		fake.Set(now)

		want, next := gcra.Decide(limit, tat, now)
		tat = next
		got, err := store.GCRA(ctx, "ip", limit, now)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got != want {
			t.Errorf("step %d: decision = %+v, want %+v", i, got, want)
		}
	}
}

func TestMemoryPublishNeverBlocks(t *testing.T) {
	ctx := context.Background()
	store, _ := newMemory(t)

	release := make(chan struct{})
	cancel, err := store.Subscribe(ctx, "slow", func([]byte) { <-release })
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	defer close(release)

	// Far more messages than the subscriber's buffer: the excess is dropped
	// and Publish returns each time.
	for i := 0; i < 10_000; i++ {
		if err := store.Publish(ctx, "slow", []byte("m")); err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
	}
}

func TestMemoryValuesAreCopied(t *testing.T) {
	ctx := context.Background()
	store, _ := newMemory(t)

	value := []byte("abc")
	if err := store.Set(ctx, "k", value, 0); err != nil {
		t.Fatal(err)
	}
	value[0] = 'X'

	got, _, err := store.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "abc" {
		t.Errorf("Get = %q after the caller changed its slice, want \"abc\"", got)
	}
	got[1] = 'Y'
	again, _, _ := store.Get(ctx, "k")
	if string(again) != "abc" {
		t.Errorf("Get = %q after a caller changed a returned slice, want \"abc\"", again)
	}
}
