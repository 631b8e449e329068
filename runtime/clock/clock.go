// Package clock provides the time source that everything with an expiry
// uses, so tests can move time forward instead of sleeping.
package clock

import (
	"sort"
	"sync"
	"time"
)

// Clock is the source of the current time and of timers that follow it.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f once d has passed on this clock, and returns a
	// Timer that can cancel the call. A d of zero or less calls f at once,
	// in its own goroutine.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call of Clock.AfterFunc.
type Timer interface {
	// Stop cancels the call. It returns false when the call already
	// started or the timer was stopped before.
	Stop() bool
}

// System is the wall clock.
type System struct{}

// Now returns time.Now().
func (System) Now() time.Time { return time.Now() }

// AfterFunc calls time.AfterFunc, so f runs in its own goroutine.
func (System) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Fake is a manually advanced clock for tests. It is safe for concurrent
// use. Its timers fire only when Advance or Set moves the time to or past
// their due time, and those calls return after the timers' functions have.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers map[*fakeTimer]struct{}
}

// fakeTimer is one pending AfterFunc of a Fake.
type fakeTimer struct {
	fake *Fake
	due  time.Time
	// seq orders timers with the same due time by creation.
	seq uint64
	f   func()
}

// NewFake returns a fake clock set to start.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, timers: map[*fakeTimer]struct{}{}}
}

// Now returns the fake clock's current time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// AfterFunc registers fn to run when the fake clock reaches now+d. A d of
// zero or less runs fn at once in its own goroutine, as time.AfterFunc does.
func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	f.mu.Lock()
	defer f.mu.Unlock()

	f.seq++
	timer := &fakeTimer{fake: f, due: f.now.Add(d), seq: f.seq, f: fn}
	if d <= 0 {
		go fn()
		return timer
	}
	if f.timers == nil {
		f.timers = map[*fakeTimer]struct{}{}
	}
	f.timers[timer] = struct{}{}
	return timer
}

// Stop removes the timer if it has not fired.
func (t *fakeTimer) Stop() bool {
	t.fake.mu.Lock()
	defer t.fake.mu.Unlock()

	if _, pending := t.fake.timers[t]; !pending {
		return false
	}
	delete(t.fake.timers, t)
	return true
}

// Advance moves the fake clock forward by d and runs the timers that
// became due, in due-time order.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	due := f.takeDue()
	f.mu.Unlock()

	fire(due)
}

// Set moves the fake clock to t and runs the timers that became due, in
// due-time order. Moving it backwards fires nothing.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	f.now = t
	due := f.takeDue()
	f.mu.Unlock()

	fire(due)
}

// Pending returns the number of timers that have not fired or been stopped.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// takeDue removes and returns the timers due at f.now; f.mu must be held.
func (f *Fake) takeDue() []*fakeTimer {
	var due []*fakeTimer
	for timer := range f.timers {
		if !timer.due.After(f.now) {
			due = append(due, timer)
			delete(f.timers, timer)
		}
	}
	sort.Slice(due, func(i, j int) bool {
		if due[i].due.Equal(due[j].due) {
			return due[i].seq < due[j].seq
		}
		return due[i].due.Before(due[j].due)
	})
	return due
}

// fire runs the functions of due timers on the calling goroutine, outside
// the fake's lock, so they may use the clock themselves.
func fire(due []*fakeTimer) {
	for _, timer := range due {
		timer.f()
	}
}
