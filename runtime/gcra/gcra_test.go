package gcra_test

import (
	"testing"
	"time"

	"github.com/nexus-suite/nexus/runtime/gcra"
)

func TestDecideBurstThenReject(t *testing.T) {
	limit := gcra.Limit{Rate: 60, Period: time.Minute, Burst: 60}
	now := time.Unix(1_700_000_000, 0)
	var tat time.Time

	for i := 0; i < 60; i++ {
		d, next := gcra.Decide(limit, tat, now)
		if !d.Allowed {
			t.Fatalf("request %d rejected, want admitted", i+1)
		}
		if d.Remaining != 59-i {
			t.Fatalf("request %d: remaining = %d, want %d", i+1, d.Remaining, 59-i)
		}
		tat = next
	}

	d, next := gcra.Decide(limit, tat, now)
	if d.Allowed {
		t.Fatal("61st request admitted, want rejected")
	}
	if !next.Equal(tat) {
		t.Fatal("a rejected request moved the TAT")
	}
	if d.RetryAfter != time.Second {
		t.Fatalf("retry after = %v, want 1s", d.RetryAfter)
	}
	if got := gcra.RetryAfterSeconds(d.RetryAfter); got != 1 {
		t.Fatalf("retry after seconds = %d, want 1", got)
	}
}

func TestDecideRefillsOverTime(t *testing.T) {
	limit := gcra.Limit{Rate: 60, Period: time.Minute, Burst: 2}
	now := time.Unix(1_700_000_000, 0)
	var tat time.Time

	for i := 0; i < 2; i++ {
		d, next := gcra.Decide(limit, tat, now)
		if !d.Allowed {
			t.Fatalf("request %d rejected", i+1)
		}
		tat = next
	}
	if d, _ := gcra.Decide(limit, tat, now); d.Allowed {
		t.Fatal("third request admitted with burst 2")
	}

	now = now.Add(time.Second)
	if d, _ := gcra.Decide(limit, tat, now); !d.Allowed {
		t.Fatal("request after one interval rejected")
	}
}

func TestRetryAfterSecondsRoundsUp(t *testing.T) {
	cases := map[time.Duration]int{0: 0, time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2}
	for in, want := range cases {
		if got := gcra.RetryAfterSeconds(in); got != want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", in, got, want)
		}
	}
}
