package entitlements

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/runtime/clock"
)

// Bounds of the expiry timer.
const (
	// maxExpiryDelay is the longest the timer waits before it reads the
	// store again, so that trials and overrides written by another node or
	// by `nexus admin` are ended on time even when this node never armed
	// a timer for them.
	maxExpiryDelay = 5 * time.Minute
	// expiryStoreTimeout bounds the store work of one timer run.
	expiryStoreTimeout = 30 * time.Second
)

// expiry keeps one clock timer for the earliest upcoming change of any
// user's tier that no request causes: a trial end, an override expiry, a
// subscription's grace end or cancellation at the period end. When the
// timer fires, it ends what is due, records it in the history, makes the
// users' actors resolve their entitlements again and arms the timer for
// the next deadline.
type expiry struct {
	store  *store
	clock  clock.Clock
	users  *runtime.Users
	logger *slog.Logger
	// failures receives the error of a timer run that failed; the module's
	// Run returns it so the supervisor restarts the module.
	failures chan error

	mu      sync.Mutex
	timer   clock.Timer
	stopped bool
	// swept is the time up to which subscription deadlines were handled.
	swept time.Time
}

func newExpiry(s *store, clk clock.Clock, users *runtime.Users, logger *slog.Logger) *expiry {
	return &expiry{store: s, clock: clk, users: users, logger: logger, failures: make(chan error, 1), stopped: true}
}

// start ends whatever came due while no timer ran, such as during a
// restart, and arms the timer from the store.
func (e *expiry) start(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()

	e.stopped = false
	e.swept = e.clock.Now()
	if err := e.expireDue(ctx); err != nil {
		return err
	}
	return e.arm(ctx)
}

// stop cancels the timer and waits for a run in progress to finish.
func (e *expiry) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()

	e.stopped = true
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
}

// rearm reads the next deadline again after a change, such as a new trial.
func (e *expiry) rearm(ctx context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()

	if e.stopped {
		return
	}
	if err := e.arm(ctx); err != nil {
		e.fail(err)
	}
}

// arm replaces the timer with one for the next deadline, at most
// maxExpiryDelay away. e.mu must be held.
func (e *expiry) arm(ctx context.Context) error {
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	next, ok, err := e.store.nextDeadline(ctx, e.swept)
	if err != nil {
		return err
	}

	delay := maxExpiryDelay
	if ok {
		delay = min(delay, next.Sub(e.clock.Now()))
	}
	e.timer = e.clock.AfterFunc(delay, e.fire)
	return nil
}

// fire is the timer's function.
func (e *expiry) fire() {
	e.mu.Lock()
	defer e.mu.Unlock()

	if e.stopped {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), expiryStoreTimeout)
	defer cancel()

	err := e.expireDue(ctx)
	if err == nil {
		err = e.arm(ctx)
	}
	if err != nil {
		e.fail(err)
	}
}

// fail logs err and hands it to Run. Without a timer until the restart,
// nothing expires, so the supervisor's restart is what retries.
func (e *expiry) fail(err error) {
	e.logger.Error("entitlement expiry failed", slog.String("error", err.Error()))
	select {
	case e.failures <- err:
	default:
	}
}

// expireDue ends the trials and overrides due by now and refreshes the
// users whose subscription passed a deadline since the last run. e.mu
// must be held.
func (e *expiry) expireDue(ctx context.Context) error {
	now := e.clock.Now()

	trials, err := e.store.dueTrials(ctx, now)
	if err != nil {
		return err
	}
	for _, t := range trials {
		ended, err := e.store.endTrial(ctx, t, now)
		if err != nil {
			return err
		}
		if ended {
			e.refresh(t.UserID)
			e.logger.Info("trial ended", slog.String("user_id", t.UserID), slog.String("tier", t.Tier))
		}
	}

	overrides, err := e.store.dueOverrides(ctx, now)
	if err != nil {
		return err
	}
	for _, userID := range overrides {
		err := e.store.endOverride(ctx, userID, actorSystem, actionOverrideExpired, "", now)
		if errors.Is(err, errNotFound) {
			continue // another node ended it first
		}
		if err != nil {
			return err
		}
		e.refresh(userID)
		e.logger.Info("entitlement override expired", slog.String("user_id", userID))
	}

	passing, err := e.store.subscriptionsPassing(ctx, e.swept, now)
	if err != nil {
		return fmt.Errorf("refresh subscriptions: %w", err)
	}
	for _, userID := range passing {
		e.refresh(userID)
		e.logger.Info("subscription passed its grace or period end", slog.String("user_id", userID))
	}
	if now.After(e.swept) {
		e.swept = now
	}
	return nil
}

func (e *expiry) refresh(userID string) {
	if e.users != nil {
		e.users.RefreshEntitlements(userID)
	}
}
