package runtime

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
)

// Services is a registry of the values that modules offer each other, keyed
// by name. A module provides its service at Provision, and a module that
// requires it looks it up at its own Provision, which the manager runs
// after its dependencies. It is safe for concurrent use.
type Services struct {
	mu     sync.RWMutex
	byName map[string]any
}

// NewServices returns an empty registry.
func NewServices() *Services {
	return &Services{byName: map[string]any{}}
}

// Provide stores service under name, replacing an earlier value, such as
// the one of a module that a reload started again.
func Provide[T any](s *Services, name string, service T) {
	s.mu.Lock()
	defer s.mu.Unlock()

	s.byName[name] = service
}

// Lookup returns the service stored under name. It returns an error when
// nothing is stored there or when the stored value is not a T.
func Lookup[T any](s *Services, name string) (T, error) {
	var zero T
	if s == nil {
		return zero, fmt.Errorf("service %s: the host has no service registry", name)
	}

	s.mu.RLock()
	value, ok := s.byName[name]
	s.mu.RUnlock()

	if !ok {
		return zero, fmt.Errorf("service %s: not provided; is its module enabled?", name)
	}
	service, ok := value.(T)
	if !ok {
		return zero, fmt.Errorf("service %s: provided as %T, expected %T", name, value, zero)
	}
	return service, nil
}

// Names of the services that the process provides.
const (
	// ServiceSubscriptions is the SubscriptionRecorder of the entitlements module.
	ServiceSubscriptions = "entitlements.subscriptions"
	// ServiceMetrics is the prometheus.Registerer whose collectors /metrics serves.
	ServiceMetrics = "metrics"
)

// SubscriptionRecord is a user's paid subscription as the entitlements
// resolver reads it. Status is Stripe's subscription status.
type SubscriptionRecord struct {
	UserID            string
	Tier              string
	Status            string
	CurrentPeriodEnd  time.Time
	CancelAtPeriodEnd bool
	// GraceUntil is the end of a past_due subscription's grace period, nil
	// for any other status. RecordSubscription computes it.
	GraceUntil *time.Time
	// StripeCreated is the Stripe creation time of the event (or of the
	// read from Stripe) that the record comes from. A record only replaces
	// an older one, so events may arrive in any order.
	StripeCreated time.Time
}

// RecordOutcome is the result of RecordSubscription for one record.
type RecordOutcome int

const (
	// RecordApplied means the record replaced the stored one or was the first.
	RecordApplied RecordOutcome = iota
	// RecordStale means the stored record is newer, so nothing changed.
	RecordStale
	// RecordTied means the stored record has the same StripeCreated but
	// other values, so nothing changed and the order of the two is unknown.
	// The caller should read the subscription from Stripe again.
	RecordTied
)

// SubscriptionRecorder stores users' subscriptions for the entitlements
// resolver. The billing module writes through it.
type SubscriptionRecorder interface {
	// RecordSubscription upserts the user's subscription inside tx, so the
	// caller can commit it together with its own rows. It applies rec only
	// when rec.StripeCreated is after the stored record's. A past_due
	// record gets a grace period of pastDueGrace from its StripeCreated,
	// but a subscription that was already past_due keeps its grace end.
	// After the commit, the caller must call SubscriptionChanged.
	RecordSubscription(ctx context.Context, tx *sql.Tx, rec SubscriptionRecord, pastDueGrace time.Duration) (RecordOutcome, error)
	// Subscription returns the user's stored subscription; ok is false when
	// the user has none.
	Subscription(ctx context.Context, userID string) (rec SubscriptionRecord, ok bool, err error)
	// SubscriptionChanged makes the user's actor resolve its entitlements
	// again, and re-arms the timer of grace and period ends.
	SubscriptionChanged(userID string)
}
