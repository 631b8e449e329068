package kv_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/runtime/gcra"
	"github.com/nexus-suite/nexus/storage/kv"
	"github.com/nexus-suite/nexus/storage/kv/kvtest"
	"github.com/nexus-suite/nexus/storage/storagetest"
)

func TestRedisConformance(t *testing.T) {
	storagetest.Redis(t)

	kvtest.Run(t, func(t *testing.T) (kv.Store, *clock.Fake) {
		fake := clock.NewFake(time.Now())
		return storagetest.RedisStore(t, fake), fake
	})
}

// TestRedisGCRAMatchesDecide replays random request times through the Lua
// script and through gcra.Decide. Intervals are whole seconds, so the TAT key
// never expires in the real time that the test takes.
func TestRedisGCRAMatchesDecide(t *testing.T) {
	ctx := context.Background()
	fake := clock.NewFake(time.Now())
	store := storagetest.RedisStore(t, fake)
	random := rand.New(rand.NewPCG(1, 2))

	limits := []gcra.Limit{
		{Rate: 60, Period: time.Minute, Burst: 1},
		{Rate: 60, Period: time.Minute, Burst: 10},
		{Rate: 30, Period: time.Minute, Burst: 5},
		{Rate: 1, Period: time.Hour, Burst: 3},
		{Rate: 10, Period: 10 * time.Second, Burst: 0},
	}
	for li, limit := range limits {
		key := "limit-" + string(rune('a'+li))
		now := fake.Now().Truncate(time.Millisecond)
		var tat time.Time

		for step := 0; step < 200; step++ {
			// Mostly bursts, sometimes a pause of up to a few intervals.
			if random.IntN(4) == 0 {
				now = now.Add(time.Duration(random.Int64N(int64(3*limit.Interval()/time.Millisecond))) * time.Millisecond)
			}

			want, next := gcra.Decide(limit, tat, now)
			tat = next
			got, err := store.GCRA(ctx, key, limit, now)
			if err != nil {
				t.Fatalf("limit %d step %d: %v", li, step, err)
			}
			if got != want {
				t.Fatalf("limit %d step %d: decision = %+v, want %+v", li, step, got, want)
			}
		}
	}
}

func TestRedisKeysCarryPrefix(t *testing.T) {
	ctx := context.Background()
	redisURL := storagetest.Redis(t)
	prefix := storagetest.Prefix(t)
	fake := clock.NewFake(time.Now())

	prefixed, err := kv.NewRedis(ctx, redisURL, prefix, fake)
	if err != nil {
		t.Fatal(err)
	}
	defer prefixed.Close()
	// A store without a prefix reads keys by their full names.
	raw, err := kv.NewRedis(ctx, redisURL, "", fake)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()

	if err := prefixed.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	defer prefixed.Delete(ctx, "k")

	got, ok, err := raw.Get(ctx, prefix+"k")
	if err != nil {
		t.Fatal(err)
	}
	if !ok || string(got) != "v" {
		t.Errorf("Get %sk without prefix = %q, %v; want \"v\", true", prefix, got, ok)
	}
}

func TestNewRedisErrorHidesPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	// Port 1 on the loopback address refuses the connection at once.
	_, err := kv.NewRedis(ctx, "redis://user:s3cret-pw@127.0.0.1:1/0", "p:", clock.System{})
	if err == nil {
		t.Fatal("NewRedis to a closed port succeeded")
	}
	if strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("error %q contains the password", err)
	}
}

func TestNewRedisRejectsBadScheme(t *testing.T) {
	_, err := kv.NewRedis(context.Background(), "http://127.0.0.1:6379", "p:", clock.System{})
	if err == nil {
		t.Fatal("NewRedis with an http URL succeeded")
	}
}
