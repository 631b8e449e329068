// Package gcra implements the generic cell rate algorithm (GCRA) used for
// every rate limit in Nexus: per user in the user's actor, per client IP in
// the key-value store.
//
// A limit of Rate requests per Period with a Burst of B admits B requests
// back to back after an idle period and then one request every Period/Rate.
// The whole state is one timestamp, the theoretical arrival time (TAT).
package gcra

import "time"

// Limit describes a rate limit.
type Limit struct {
	// Rate is the number of requests admitted per Period in the steady state.
	Rate int
	// Period is the window that Rate refers to, usually one minute.
	Period time.Duration
	// Burst is the number of requests admitted back to back from idle. It is at least 1.
	Burst int
}

// Interval returns the emission interval: the steady-state time between two
// admitted requests.
func (l Limit) Interval() time.Duration {
	if l.Rate <= 0 {
		return l.Period
	}
	return l.Period / time.Duration(l.Rate)
}

// tolerance is how far the TAT may run ahead of now while a request is still admitted.
func (l Limit) tolerance() time.Duration {
	burst := l.Burst
	if burst < 1 {
		burst = 1
	}
	return l.Interval() * time.Duration(burst-1)
}

// Decision is the outcome of one admission check.
type Decision struct {
	Allowed bool
	// Remaining is the number of requests that could still be admitted right now.
	Remaining int
	// RetryAfter is how long a rejected caller must wait; zero when Allowed.
	RetryAfter time.Duration
	// ResetAfter is how long until the limiter is back to its full burst.
	ResetAfter time.Duration
}

// Decide checks one request arriving at now against the state tat and
// returns the decision and the new TAT, which equals tat when the request is
// rejected. A zero tat means the key is idle.
func Decide(l Limit, tat, now time.Time) (Decision, time.Time) {
	interval := l.Interval()
	tolerance := l.tolerance()

	if tat.Before(now) {
		tat = now
	}
	newTAT := tat.Add(interval)
	allowAt := newTAT.Add(-interval - tolerance)

	if now.Before(allowAt) {
		return Decision{
			Allowed:    false,
			Remaining:  0,
			RetryAfter: allowAt.Sub(now),
			ResetAfter: tat.Sub(now),
		}, tat
	}

	return Decision{
		Allowed:    true,
		Remaining:  remaining(interval, tolerance, newTAT.Sub(now)),
		ResetAfter: newTAT.Sub(now),
	}, newTAT
}

// remaining counts how many more requests fit before the TAT passes now+tolerance+interval.
func remaining(interval, tolerance, ahead time.Duration) int {
	if interval <= 0 {
		return 0
	}
	free := tolerance + interval - ahead
	if free < 0 {
		return 0
	}
	return int(free / interval)
}

// RetryAfterSeconds rounds a wait up to whole seconds, as the Retry-After header needs.
func RetryAfterSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}
