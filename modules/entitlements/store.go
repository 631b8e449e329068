package entitlements

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nexus-suite/nexus/storage"
)

// Errors of the store.
var (
	errNotFound   = errors.New("not found")
	errTrialTaken = errors.New("the account already had its trial")
)

// History actions.
const (
	actionTrialStarted    = "trial_started"
	actionTrialEnded      = "trial_ended"
	actionOverrideSet     = "override_set"
	actionOverrideCleared = "override_cleared"
	actionOverrideExpired = "override_expired"
)

// actorSystem is the history actor of changes that the expiry timer makes.
const actorSystem = "system"

// subscription is a row of entitlement_subscriptions.
type subscription struct {
	Tier              string
	Status            string
	CurrentPeriodEnd  time.Time
	CancelAtPeriodEnd bool
	GraceUntil        *time.Time
}

// trial is a row of entitlement_trials.
type trial struct {
	UserID    string
	Tier      string
	StartedAt time.Time
	EndsAt    time.Time
	EndedAt   *time.Time
}

// override is a row of entitlement_overrides.
type override struct {
	UserID    string
	Tier      string
	Features  []string
	ExpiresAt *time.Time
	Reason    string
	Actor     string
	CreatedAt time.Time
	EndedAt   *time.Time
}

// activeAt reports whether the override applies at now.
func (o override) activeAt(now time.Time) bool {
	return o.EndedAt == nil && (o.ExpiresAt == nil || now.Before(*o.ExpiresAt))
}

// historyEntry is a row of entitlement_history.
type historyEntry struct {
	ID        int64
	UserID    string
	Actor     string
	Action    string
	Detail    json.RawMessage
	Reason    string
	CreatedAt time.Time
}

// state is everything the resolver reads for one user; nil means no row.
type state struct {
	Override     *override
	Subscription *subscription
	Trial        *trial
}

// querier is the part of *sql.DB and *sql.Tx that the store uses.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// store is the module's SQL, the same on both engines.
type store struct {
	db *storage.DB
}

// inTx runs fn in a transaction and commits when it returns nil.
func (s *store) inTx(ctx context.Context, step string, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", step, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", step, err)
	}
	return nil
}

// loadState reads the user's override, subscription and trial rows.
func (s *store) loadState(ctx context.Context, userID string) (state, error) {
	var st state
	o, err := s.override(ctx, s.db, userID)
	switch {
	case err == nil:
		st.Override = &o
	case !errors.Is(err, errNotFound):
		return state{}, err
	}
	sub, err := s.subscription(ctx, userID)
	switch {
	case err == nil:
		st.Subscription = &sub
	case !errors.Is(err, errNotFound):
		return state{}, err
	}
	t, err := s.trial(ctx, s.db, userID)
	switch {
	case err == nil:
		st.Trial = &t
	case !errors.Is(err, errNotFound):
		return state{}, err
	}
	return st, nil
}

func (s *store) subscription(ctx context.Context, userID string) (subscription, error) {
	var sub subscription
	var periodEnd int64
	var grace sql.NullInt64
	err := s.db.QueryRowContext(ctx,
		`SELECT tier, status, current_period_end, cancel_at_period_end, grace_until
		 FROM entitlement_subscriptions WHERE user_id = $1`, userID).
		Scan(&sub.Tier, &sub.Status, &periodEnd, &sub.CancelAtPeriodEnd, &grace)
	if errors.Is(err, sql.ErrNoRows) {
		return subscription{}, errNotFound
	}
	if err != nil {
		return subscription{}, fmt.Errorf("load subscription of user %s: %w", userID, err)
	}
	sub.CurrentPeriodEnd = fromMillis(periodEnd)
	sub.GraceUntil = timePointer(grace)
	return sub, nil
}

func (s *store) trial(ctx context.Context, q querier, userID string) (trial, error) {
	t := trial{UserID: userID}
	var started, ends int64
	var ended sql.NullInt64
	err := q.QueryRowContext(ctx,
		`SELECT tier, started_at, ends_at, ended_at FROM entitlement_trials WHERE user_id = $1`, userID).
		Scan(&t.Tier, &started, &ends, &ended)
	if errors.Is(err, sql.ErrNoRows) {
		return trial{}, errNotFound
	}
	if err != nil {
		return trial{}, fmt.Errorf("load trial of user %s: %w", userID, err)
	}
	t.StartedAt, t.EndsAt, t.EndedAt = fromMillis(started), fromMillis(ends), timePointer(ended)
	return t, nil
}

// insertTrial starts the user's trial and records it in the history. It
// returns errTrialTaken when the user already has a trial row, also when a
// concurrent call inserted it first.
func (s *store) insertTrial(ctx context.Context, t trial, actor string) error {
	return s.inTx(ctx, "start trial of user "+t.UserID, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO entitlement_trials (user_id, tier, started_at, ends_at) VALUES ($1, $2, $3, $4)`,
			t.UserID, t.Tier, t.StartedAt.UnixMilli(), t.EndsAt.UnixMilli())
		if storage.IsUniqueViolation(err) {
			return errTrialTaken
		}
		if err != nil {
			return fmt.Errorf("insert trial of user %s: %w", t.UserID, err)
		}
		detail := map[string]any{"tier": t.Tier, "ends_at": t.EndsAt}
		return s.appendHistory(ctx, tx, t.UserID, actor, actionTrialStarted, detail, "", t.StartedAt)
	})
}

// dueTrials returns the trials that reached their end by now and are not marked ended.
func (s *store) dueTrials(ctx context.Context, now time.Time) ([]trial, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT user_id, tier, started_at, ends_at FROM entitlement_trials
		 WHERE ended_at IS NULL AND ends_at <= $1 ORDER BY ends_at`, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("list due trials: %w", err)
	}
	defer rows.Close()

	var due []trial
	for rows.Next() {
		var t trial
		var started, ends int64
		if err := rows.Scan(&t.UserID, &t.Tier, &started, &ends); err != nil {
			return nil, fmt.Errorf("scan due trial: %w", err)
		}
		t.StartedAt, t.EndsAt = fromMillis(started), fromMillis(ends)
		due = append(due, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list due trials: %w", err)
	}
	return due, nil
}

// endTrial marks the trial ended at its end time and records it, and
// reports false when another node or an earlier run ended it already.
func (s *store) endTrial(ctx context.Context, t trial, now time.Time) (bool, error) {
	ended := false
	err := s.inTx(ctx, "end trial of user "+t.UserID, func(tx *sql.Tx) error {
		result, err := tx.ExecContext(ctx,
			`UPDATE entitlement_trials SET ended_at = ends_at WHERE user_id = $1 AND ended_at IS NULL`, t.UserID)
		if err != nil {
			return fmt.Errorf("end trial of user %s: %w", t.UserID, err)
		}
		if n, _ := result.RowsAffected(); n == 0 {
			return nil
		}
		ended = true
		detail := map[string]any{"tier": t.Tier, "ended_at": t.EndsAt}
		return s.appendHistory(ctx, tx, t.UserID, actorSystem, actionTrialEnded, detail, "", now)
	})
	return ended, err
}

const overrideColumns = `user_id, tier, features, expires_at, reason, actor, created_at, ended_at`

func scanOverride(row interface{ Scan(...any) error }) (override, error) {
	var o override
	var features string
	var expires, ended sql.NullInt64
	var created int64
	err := row.Scan(&o.UserID, &o.Tier, &features, &expires, &o.Reason, &o.Actor, &created, &ended)
	if errors.Is(err, sql.ErrNoRows) {
		return override{}, errNotFound
	}
	if err != nil {
		return override{}, err
	}
	if err := json.Unmarshal([]byte(features), &o.Features); err != nil {
		return override{}, fmt.Errorf("decode features %q: %w", features, err)
	}
	o.ExpiresAt, o.EndedAt = timePointer(expires), timePointer(ended)
	o.CreatedAt = fromMillis(created)
	return o, nil
}

// override returns the user's override row, which may have ended.
func (s *store) override(ctx context.Context, q querier, userID string) (override, error) {
	o, err := scanOverride(q.QueryRowContext(ctx,
		`SELECT `+overrideColumns+` FROM entitlement_overrides WHERE user_id = $1`, userID))
	if err != nil && !errors.Is(err, errNotFound) {
		return override{}, fmt.Errorf("load override of user %s: %w", userID, err)
	}
	return o, err
}

// setOverride replaces the user's override and records it in the history.
func (s *store) setOverride(ctx context.Context, o override) error {
	features, err := json.Marshal(o.Features)
	if err != nil {
		return fmt.Errorf("encode features: %w", err)
	}
	return s.inTx(ctx, "set override of user "+o.UserID, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO entitlement_overrides (user_id, tier, features, expires_at, reason, actor, created_at, ended_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)
			 ON CONFLICT (user_id) DO UPDATE SET tier = excluded.tier, features = excluded.features,
			   expires_at = excluded.expires_at, reason = excluded.reason, actor = excluded.actor,
			   created_at = excluded.created_at, ended_at = NULL`,
			o.UserID, o.Tier, string(features), nullableMillis(o.ExpiresAt), o.Reason, o.Actor, o.CreatedAt.UnixMilli())
		if err != nil {
			return fmt.Errorf("upsert override of user %s: %w", o.UserID, err)
		}
		detail := map[string]any{"tier": o.Tier, "features": o.Features, "expires_at": o.ExpiresAt}
		return s.appendHistory(ctx, tx, o.UserID, o.Actor, actionOverrideSet, detail, o.Reason, o.CreatedAt)
	})
}

// endOverride ends the user's active override, as action (cleared or
// expired) at the time at, and records it. It returns errNotFound when the
// user has no override active at that time.
func (s *store) endOverride(ctx context.Context, userID, actor, action, reason string, at time.Time) error {
	return s.inTx(ctx, action+" of user "+userID, func(tx *sql.Tx) error {
		o, err := s.override(ctx, tx, userID)
		if err != nil {
			return err
		}
		switch {
		case action == actionOverrideExpired:
			// An expiring override ends exactly at its expiry, however late the timer ran.
			if o.EndedAt != nil || o.ExpiresAt == nil || o.ExpiresAt.After(at) {
				return errNotFound
			}
			at = *o.ExpiresAt
		case !o.activeAt(at):
			return errNotFound
		}

		result, err := tx.ExecContext(ctx,
			`UPDATE entitlement_overrides SET ended_at = $2 WHERE user_id = $1 AND ended_at IS NULL`,
			userID, at.UnixMilli())
		if err != nil {
			return fmt.Errorf("end override of user %s: %w", userID, err)
		}
		if n, _ := result.RowsAffected(); n == 0 {
			return errNotFound
		}
		detail := map[string]any{"tier": o.Tier, "features": o.Features, "expires_at": o.ExpiresAt}
		return s.appendHistory(ctx, tx, userID, actor, action, detail, reason, at)
	})
}

// dueOverrides returns the ids of users whose override expired by now and is not marked ended.
func (s *store) dueOverrides(ctx context.Context, now time.Time) ([]string, error) {
	return s.userIDs(ctx, "list expired overrides",
		`SELECT user_id FROM entitlement_overrides
		 WHERE ended_at IS NULL AND expires_at IS NOT NULL AND expires_at <= $1 ORDER BY expires_at`,
		now.UnixMilli())
}

// subscriptionsPassing returns the ids of users whose subscription passed
// a grace end or a period end with cancellation in (after, until].
func (s *store) subscriptionsPassing(ctx context.Context, after, until time.Time) ([]string, error) {
	return s.userIDs(ctx, "list subscriptions passing a deadline",
		`SELECT user_id FROM entitlement_subscriptions
		 WHERE (status = 'past_due' AND grace_until > $1 AND grace_until <= $2)
		    OR (cancel_at_period_end AND status IN ('active', 'trialing')
		        AND current_period_end > $1 AND current_period_end <= $2)`,
		after.UnixMilli(), until.UnixMilli())
}

func (s *store) userIDs(ctx context.Context, step, query string, args ...any) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", step, err)
	}
	defer rows.Close()

	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("%s: %w", step, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", step, err)
	}
	return ids, nil
}

// nextDeadline returns the earliest time at which a resolved tier may
// change without a write: a trial end or an override expiry not yet
// handled, or a subscription's grace or cancellation end after the time
// after. ok is false when there is none.
func (s *store) nextDeadline(ctx context.Context, after time.Time) (next time.Time, ok bool, err error) {
	var deadline sql.NullInt64
	err = s.db.QueryRowContext(ctx,
		`SELECT MIN(t) FROM (
		   SELECT MIN(ends_at) AS t FROM entitlement_trials WHERE ended_at IS NULL
		   UNION ALL
		   SELECT MIN(expires_at) FROM entitlement_overrides WHERE ended_at IS NULL AND expires_at IS NOT NULL
		   UNION ALL
		   SELECT MIN(grace_until) FROM entitlement_subscriptions WHERE status = 'past_due' AND grace_until > $1
		   UNION ALL
		   SELECT MIN(current_period_end) FROM entitlement_subscriptions
		   WHERE cancel_at_period_end AND status IN ('active', 'trialing') AND current_period_end > $1
		 ) deadlines`, after.UnixMilli()).Scan(&deadline)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("find the next entitlement deadline: %w", err)
	}
	if !deadline.Valid {
		return time.Time{}, false, nil
	}
	return fromMillis(deadline.Int64), true, nil
}

// appendHistory adds one history row; detail is encoded as a JSON object.
func (s *store) appendHistory(ctx context.Context, q querier, userID, actor, action string, detail map[string]any, reason string, at time.Time) error {
	encoded, err := json.Marshal(detail)
	if err != nil {
		return fmt.Errorf("encode %s detail: %w", action, err)
	}
	_, err = q.ExecContext(ctx,
		`INSERT INTO entitlement_history (user_id, actor, action, detail, reason, created_at)
		 VALUES ($1, $2, $3, $4, $5, $6)`,
		userID, actor, action, string(encoded), reason, at.UnixMilli())
	if err != nil {
		return fmt.Errorf("append %s to the history of user %s: %w", action, userID, err)
	}
	return nil
}

// history returns the user's latest history entries, newest first.
func (s *store) history(ctx context.Context, userID string, limit int) ([]historyEntry, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT id, actor, action, detail, reason, created_at FROM entitlement_history
		 WHERE user_id = $1 ORDER BY id DESC LIMIT $2`, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("load history of user %s: %w", userID, err)
	}
	defer rows.Close()

	entries := []historyEntry{}
	for rows.Next() {
		entry := historyEntry{UserID: userID}
		var detail string
		var created int64
		if err := rows.Scan(&entry.ID, &entry.Actor, &entry.Action, &detail, &entry.Reason, &created); err != nil {
			return nil, fmt.Errorf("scan history of user %s: %w", userID, err)
		}
		entry.Detail = json.RawMessage(detail)
		entry.CreatedAt = fromMillis(created)
		entries = append(entries, entry)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load history of user %s: %w", userID, err)
	}
	return entries, nil
}

// userRole returns the role of the user, or errNotFound.
func (s *store) userRole(ctx context.Context, userID string) (string, error) {
	var role string
	err := s.db.QueryRowContext(ctx, `SELECT role FROM users WHERE id = $1`, userID).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errNotFound
	}
	if err != nil {
		return "", fmt.Errorf("load role of user %s: %w", userID, err)
	}
	return role, nil
}

// deleteUser removes every row of the user from the module's tables,
// history included. It is the account deletion hook.
func deleteUser(ctx context.Context, db *storage.DB, userID string) error {
	for _, table := range []string{"entitlement_history", "entitlement_overrides", "entitlement_trials", "entitlement_subscriptions"} {
		if _, err := db.ExecContext(ctx, `DELETE FROM `+table+` WHERE user_id = $1`, userID); err != nil {
			return fmt.Errorf("delete %s rows of user %s: %w", table, userID, err)
		}
	}
	return nil
}

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func timePointer(ms sql.NullInt64) *time.Time {
	if !ms.Valid {
		return nil
	}
	t := fromMillis(ms.Int64)
	return &t
}

func nullableMillis(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}
