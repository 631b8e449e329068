package billing

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/nexus-suite/nexus/storage"
)

// errNotFound is returned by the store when a row does not exist.
var errNotFound = errors.New("not found")

// errDuplicateEvent is returned by insertEvent for an event id that was
// applied before.
var errDuplicateEvent = errors.New("event already applied")

// customer is a row of billing_customers.
type customer struct {
	UserID         string
	CustomerID     string
	SubscriptionID string
	TrialEnd       *time.Time
	ClaimedAt      time.Time
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

type rowScanner interface{ Scan(...any) error }

const customerColumns = `user_id, customer_id, subscription_id, trial_end, claimed_at`

func scanCustomer(row rowScanner) (customer, error) {
	var c customer
	var customerID, subscriptionID sql.NullString
	var trialEnd sql.NullInt64
	var claimed int64
	err := row.Scan(&c.UserID, &customerID, &subscriptionID, &trialEnd, &claimed)
	if errors.Is(err, sql.ErrNoRows) {
		return customer{}, errNotFound
	}
	if err != nil {
		return customer{}, err
	}
	c.CustomerID, c.SubscriptionID = customerID.String, subscriptionID.String
	if trialEnd.Valid {
		t := fromMillis(trialEnd.Int64)
		c.TrialEnd = &t
	}
	c.ClaimedAt = fromMillis(claimed)
	return c, nil
}

// customerOf returns the user's row, which may be a claim without a customer id.
func (s *store) customerOf(ctx context.Context, userID string) (customer, error) {
	c, err := scanCustomer(s.db.QueryRowContext(ctx,
		`SELECT `+customerColumns+` FROM billing_customers WHERE user_id = $1`, userID))
	if err != nil && !errors.Is(err, errNotFound) {
		return customer{}, fmt.Errorf("load billing customer of user %s: %w", userID, err)
	}
	return c, err
}

// userOfCustomer returns the id of the user whose Stripe customer id is customerID.
func (s *store) userOfCustomer(ctx context.Context, q querier, customerID string) (string, error) {
	var userID string
	err := q.QueryRowContext(ctx, `SELECT user_id FROM billing_customers WHERE customer_id = $1`, customerID).Scan(&userID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errNotFound
	}
	if err != nil {
		return "", fmt.Errorf("find the user of customer %s: %w", customerID, err)
	}
	return userID, nil
}

// claimCustomer inserts the user's row without a customer id, or takes
// over a claim older than staleBefore whose holder never finished. It
// reports whether the caller now holds the claim and must create the customer.
func (s *store) claimCustomer(ctx context.Context, userID string, now, staleBefore time.Time) (bool, error) {
	result, err := s.db.ExecContext(ctx,
		`INSERT INTO billing_customers (user_id, claimed_at, updated_at) VALUES ($1, $2, $2)
		 ON CONFLICT (user_id) DO NOTHING`, userID, now.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("claim billing customer of user %s: %w", userID, err)
	}
	if n, _ := result.RowsAffected(); n == 1 {
		return true, nil
	}

	result, err = s.db.ExecContext(ctx,
		`UPDATE billing_customers SET claimed_at = $2, updated_at = $2
		 WHERE user_id = $1 AND customer_id IS NULL AND claimed_at < $3`,
		userID, now.UnixMilli(), staleBefore.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("take over billing customer claim of user %s: %w", userID, err)
	}
	n, _ := result.RowsAffected()
	return n == 1, nil
}

// setCustomerID completes the user's claim with the Stripe customer id.
func (s *store) setCustomerID(ctx context.Context, userID, customerID string, now time.Time) error {
	_, err := s.db.ExecContext(ctx,
		`UPDATE billing_customers SET customer_id = $2, updated_at = $3 WHERE user_id = $1`,
		userID, customerID, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("store customer %s of user %s: %w", customerID, userID, err)
	}
	return nil
}

// releaseClaim deletes the user's claim after creating the customer
// failed, so that the next checkout tries again at once.
func (s *store) releaseClaim(ctx context.Context, userID string) error {
	_, err := s.db.ExecContext(ctx,
		`DELETE FROM billing_customers WHERE user_id = $1 AND customer_id IS NULL`, userID)
	if err != nil {
		return fmt.Errorf("release billing customer claim of user %s: %w", userID, err)
	}
	return nil
}

// setSubscription stores the user's latest subscription id and trial end.
func (s *store) setSubscription(ctx context.Context, q querier, userID, subscriptionID string, trialEnd *time.Time, now time.Time) error {
	var trial sql.NullInt64
	if trialEnd != nil {
		trial = sql.NullInt64{Int64: trialEnd.UnixMilli(), Valid: true}
	}
	_, err := q.ExecContext(ctx,
		`UPDATE billing_customers SET subscription_id = $2, trial_end = $3, updated_at = $4 WHERE user_id = $1`,
		userID, subscriptionID, trial, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("store subscription %s of user %s: %w", subscriptionID, userID, err)
	}
	return nil
}

// subscribedCustomers returns the rows that name a subscription, for reconciliation.
func (s *store) subscribedCustomers(ctx context.Context) ([]customer, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT `+customerColumns+` FROM billing_customers WHERE subscription_id IS NOT NULL ORDER BY user_id`)
	if err != nil {
		return nil, fmt.Errorf("list subscribed customers: %w", err)
	}
	defer rows.Close()

	var customers []customer
	for rows.Next() {
		c, err := scanCustomer(rows)
		if err != nil {
			return nil, fmt.Errorf("scan subscribed customer: %w", err)
		}
		customers = append(customers, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list subscribed customers: %w", err)
	}
	return customers, nil
}

// insertEvent records the event id inside tx. It returns errDuplicateEvent
// when the id was recorded before, also by a concurrent transaction.
func (s *store) insertEvent(ctx context.Context, tx *sql.Tx, id, eventType, userID string, created, now time.Time) error {
	_, err := tx.ExecContext(ctx,
		`INSERT INTO billing_events (event_id, event_type, user_id, stripe_created, received_at)
		 VALUES ($1, $2, $3, $4, $5)`,
		id, eventType, userID, created.UnixMilli(), now.UnixMilli())
	if storage.IsUniqueViolation(err) {
		return errDuplicateEvent
	}
	if err != nil {
		return fmt.Errorf("record event %s: %w", id, err)
	}
	return nil
}

// querier is the part of *sql.DB and *sql.Tx that the store uses.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// deleteUser removes the user's billing rows. It is the account deletion
// hook; the Stripe customer itself stays in Stripe for the operator.
func deleteUser(ctx context.Context, db *storage.DB, userID string) error {
	for _, table := range []string{"billing_events", "billing_customers"} {
		if _, err := db.ExecContext(ctx, `DELETE FROM `+table+` WHERE user_id = $1`, userID); err != nil {
			return fmt.Errorf("delete %s rows of user %s: %w", table, userID, err)
		}
	}
	return nil
}

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
