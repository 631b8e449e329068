package clock_test

import (
	"sync"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/runtime/clock"
)

var start = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func TestFakeTimerFiresOnAdvance(t *testing.T) {
	fake := clock.NewFake(start)
	fired := 0
	fake.AfterFunc(time.Minute, func() { fired++ })

	fake.Advance(59 * time.Second)
	if fired != 0 {
		t.Fatalf("fired %d times before its due time", fired)
	}
	fake.Advance(time.Second)
	if fired != 1 {
		t.Fatalf("fired %d times at its due time, want 1", fired)
	}
	fake.Advance(time.Hour)
	if fired != 1 {
		t.Errorf("fired %d times after a second advance, want 1", fired)
	}
	if fake.Pending() != 0 {
		t.Errorf("pending = %d, want 0", fake.Pending())
	}
}

func TestFakeTimersFireInTimeOrder(t *testing.T) {
	fake := clock.NewFake(start)
	var order []string
	fake.AfterFunc(3*time.Hour, func() { order = append(order, "third") })
	fake.AfterFunc(time.Hour, func() { order = append(order, "first") })
	fake.AfterFunc(2*time.Hour, func() { order = append(order, "second a") })
	fake.AfterFunc(2*time.Hour, func() { order = append(order, "second b") })
	fake.AfterFunc(4*time.Hour, func() { order = append(order, "not due") })

	fake.Set(start.Add(3 * time.Hour))

	want := []string{"first", "second a", "second b", "third"}
	if len(order) != len(want) {
		t.Fatalf("fired %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Errorf("fired[%d] = %q, want %q", i, order[i], want[i])
		}
	}
	if fake.Pending() != 1 {
		t.Errorf("pending = %d, want 1", fake.Pending())
	}
}

func TestFakeTimerStop(t *testing.T) {
	fake := clock.NewFake(start)
	fired := false
	timer := fake.AfterFunc(time.Minute, func() { fired = true })

	if !timer.Stop() {
		t.Error("first Stop = false, want true")
	}
	if timer.Stop() {
		t.Error("second Stop = true, want false")
	}
	fake.Advance(time.Hour)
	if fired {
		t.Error("a stopped timer fired")
	}
}

func TestFakeTimerStopAfterFire(t *testing.T) {
	fake := clock.NewFake(start)
	timer := fake.AfterFunc(time.Minute, func() {})
	fake.Advance(time.Minute)
	if timer.Stop() {
		t.Error("Stop after firing = true, want false")
	}
}

// A timer's function may use the clock, because it runs outside the lock.
func TestFakeTimerUsesClock(t *testing.T) {
	fake := clock.NewFake(start)
	var seen time.Time
	fake.AfterFunc(time.Minute, func() {
		seen = fake.Now()
		fake.AfterFunc(time.Minute, func() {})
	})

	fake.Advance(2 * time.Minute)
	if !seen.Equal(start.Add(2 * time.Minute)) {
		t.Errorf("time inside the timer = %v, want the advanced time", seen)
	}
	if fake.Pending() != 1 {
		t.Errorf("pending = %d, want the timer armed inside the first", fake.Pending())
	}
}

func TestFakeSetBackwardsFiresNothing(t *testing.T) {
	fake := clock.NewFake(start)
	fired := false
	fake.AfterFunc(time.Minute, func() { fired = true })

	fake.Set(start.Add(-time.Hour))
	if fired {
		t.Error("moving the clock backwards fired a timer")
	}
}

func TestFakeTimerDueNow(t *testing.T) {
	fake := clock.NewFake(start)
	var wg sync.WaitGroup
	wg.Add(1)
	fake.AfterFunc(0, wg.Done)
	wg.Wait()
	if fake.Pending() != 0 {
		t.Errorf("pending = %d, want 0", fake.Pending())
	}
}

func TestSystemAfterFunc(t *testing.T) {
	done := make(chan struct{})
	clock.System{}.AfterFunc(time.Millisecond, func() { close(done) })
	<-done

	timer := clock.System{}.AfterFunc(time.Hour, func() { t.Error("a stopped system timer fired") })
	if !timer.Stop() {
		t.Error("Stop of a pending system timer = false")
	}
}
