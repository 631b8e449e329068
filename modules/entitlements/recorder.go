package entitlements

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/storage"
)

// rearmTimeout bounds the store read that re-arms the expiry timer after a
// subscription changed.
const rearmTimeout = 5 * time.Second

// Recorder writes users' subscriptions into entitlement_subscriptions. It
// implements runtime.SubscriptionRecorder; the module provides it as
// runtime.ServiceSubscriptions.
type Recorder struct {
	store  *store
	clock  clock.Clock
	users  runtime.UserNotifier
	expiry *expiry
	logger *slog.Logger
}

// NewRecorder returns a Recorder on db for tools that run without a server,
// such as `nexus billing reconcile`. It arms no timer, and it reaches the
// actors of running servers only through notifier, which may be nil: they
// then pick the change up when they resolve their entitlements again.
func NewRecorder(db *storage.DB, clk clock.Clock, logger *slog.Logger, notifier runtime.UserNotifier) *Recorder {
	return &Recorder{store: &store{db: db}, clock: clk, logger: logger, users: notifier}
}

// RecordSubscription upserts rec inside tx when rec.StripeCreated is after
// the stored row's stripe_created; see runtime.SubscriptionRecorder.
func (r *Recorder) RecordSubscription(ctx context.Context, tx *sql.Tx, rec runtime.SubscriptionRecord, pastDueGrace time.Duration) (runtime.RecordOutcome, error) {
	created := rec.StripeCreated.UnixMilli()

	var stored subscription
	var storedCreated, periodEnd int64
	var grace sql.NullInt64
	err := tx.QueryRowContext(ctx,
		`SELECT tier, status, current_period_end, cancel_at_period_end, grace_until, stripe_created
		 FROM entitlement_subscriptions WHERE user_id = $1`, rec.UserID).
		Scan(&stored.Tier, &stored.Status, &periodEnd, &stored.CancelAtPeriodEnd, &grace, &storedCreated)
	exists := true
	switch {
	case errors.Is(err, sql.ErrNoRows):
		exists = false
	case err != nil:
		return 0, fmt.Errorf("load subscription of user %s: %w", rec.UserID, err)
	}
	stored.CurrentPeriodEnd = fromMillis(periodEnd)
	stored.GraceUntil = timePointer(grace)

	if exists && created < storedCreated {
		return runtime.RecordStale, nil
	}
	if exists && created == storedCreated {
		same := stored.Tier == rec.Tier && stored.Status == rec.Status &&
			stored.CurrentPeriodEnd.Equal(rec.CurrentPeriodEnd.Truncate(time.Millisecond)) &&
			stored.CancelAtPeriodEnd == rec.CancelAtPeriodEnd
		if same {
			return runtime.RecordStale, nil
		}
		return runtime.RecordTied, nil
	}

	// A subscription that stays past_due keeps the grace end it got when it
	// became past_due, however many updates Stripe sends meanwhile.
	var graceUntil *time.Time
	if rec.Status == statusPastDue {
		if exists && stored.Status == statusPastDue && stored.GraceUntil != nil {
			graceUntil = stored.GraceUntil
		} else {
			end := rec.StripeCreated.Add(pastDueGrace)
			graceUntil = &end
		}
	}

	_, err = tx.ExecContext(ctx,
		`INSERT INTO entitlement_subscriptions
		   (user_id, tier, status, current_period_end, cancel_at_period_end, grace_until, stripe_created, updated_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		 ON CONFLICT (user_id) DO UPDATE SET tier = excluded.tier, status = excluded.status,
		   current_period_end = excluded.current_period_end, cancel_at_period_end = excluded.cancel_at_period_end,
		   grace_until = excluded.grace_until, stripe_created = excluded.stripe_created, updated_at = excluded.updated_at`,
		rec.UserID, rec.Tier, rec.Status, rec.CurrentPeriodEnd.UnixMilli(), rec.CancelAtPeriodEnd,
		nullableMillis(graceUntil), created, r.clock.Now().UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("upsert subscription of user %s: %w", rec.UserID, err)
	}
	return runtime.RecordApplied, nil
}

// Subscription returns the user's stored subscription row.
func (r *Recorder) Subscription(ctx context.Context, userID string) (runtime.SubscriptionRecord, bool, error) {
	var rec runtime.SubscriptionRecord
	var periodEnd, created int64
	var grace sql.NullInt64
	err := r.store.db.QueryRowContext(ctx,
		`SELECT tier, status, current_period_end, cancel_at_period_end, grace_until, stripe_created
		 FROM entitlement_subscriptions WHERE user_id = $1`, userID).
		Scan(&rec.Tier, &rec.Status, &periodEnd, &rec.CancelAtPeriodEnd, &grace, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return runtime.SubscriptionRecord{}, false, nil
	}
	if err != nil {
		return runtime.SubscriptionRecord{}, false, fmt.Errorf("load subscription of user %s: %w", userID, err)
	}
	rec.UserID = userID
	rec.CurrentPeriodEnd = fromMillis(periodEnd)
	rec.GraceUntil = timePointer(grace)
	rec.StripeCreated = fromMillis(created)
	return rec, true, nil
}

// SubscriptionChanged refreshes the user's actor and re-arms the expiry
// timer for a new grace or period end.
func (r *Recorder) SubscriptionChanged(userID string) {
	if r.users != nil {
		r.users.RefreshEntitlements(userID)
	}
	if r.expiry != nil {
		ctx, cancel := context.WithTimeout(context.Background(), rearmTimeout)
		defer cancel()
		r.expiry.rearm(ctx)
	}
}
