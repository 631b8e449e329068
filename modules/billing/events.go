package billing

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nexus-suite/nexus/runtime"
)

// Event types that the webhook applies; every other type is acknowledged
// and ignored.
const (
	eventCheckoutCompleted     = "checkout.session.completed"
	eventSubscriptionCreated   = "customer.subscription.created"
	eventSubscriptionUpdated   = "customer.subscription.updated"
	eventSubscriptionDeleted   = "customer.subscription.deleted"
	eventSubscriptionPaused    = "customer.subscription.paused"
	eventSubscriptionResumed   = "customer.subscription.resumed"
	eventSubscriptionTrialEnds = "customer.subscription.trial_will_end"
	eventInvoicePaid           = "invoice.paid"
	eventInvoicePaymentFailed  = "invoice.payment_failed"
	statusCanceled             = "canceled"
	outcomeApplied             = "applied"
	outcomeDuplicate           = "duplicate"
	outcomeStale               = "stale"
	outcomeIgnored             = "ignored"
)

// event is the part of a Stripe event that the module reads. It is decoded
// with encoding/json rather than as stripe.Event, so that an event of
// another API version still decodes as long as these fields keep their shape.
type event struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Created    int64  `json:"created"`
	APIVersion string `json:"api_version"`
	Data       struct {
		Object json.RawMessage `json:"object"`
	} `json:"data"`
}

// expandable is a Stripe field that holds an id, or the object with the id
// when the request expanded it.
type expandable string

func (e *expandable) UnmarshalJSON(data []byte) error {
	var id string
	if err := json.Unmarshal(data, &id); err == nil {
		*e = expandable(id)
		return nil
	}
	var object struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(data, &object); err != nil {
		return fmt.Errorf("decode id or object: %w", err)
	}
	*e = expandable(object.ID)
	return nil
}

// subscriptionObject is the part of a Stripe subscription that the module reads.
type subscriptionObject struct {
	ID                string            `json:"id"`
	Customer          expandable        `json:"customer"`
	Status            string            `json:"status"`
	CurrentPeriodEnd  int64             `json:"current_period_end"`
	CancelAtPeriodEnd bool              `json:"cancel_at_period_end"`
	TrialEnd          int64             `json:"trial_end"`
	Metadata          map[string]string `json:"metadata"`
	Items             struct {
		Data []struct {
			// CurrentPeriodEnd is the period end in API versions from 2025-03-31 on.
			CurrentPeriodEnd int64 `json:"current_period_end"`
			Price            struct {
				ID string `json:"id"`
			} `json:"price"`
		} `json:"data"`
	} `json:"items"`
}

// decodeSubscription decodes a subscription object and checks that it has
// an id and a status.
func decodeSubscription(raw []byte) (subscriptionObject, error) {
	var sub subscriptionObject
	if err := json.Unmarshal(raw, &sub); err != nil {
		return subscriptionObject{}, fmt.Errorf("decode subscription: %w", err)
	}
	if sub.ID == "" || sub.Status == "" {
		return subscriptionObject{}, errors.New("decode subscription: id or status is missing")
	}
	return sub, nil
}

// periodEnd returns the end of the current period from the subscription,
// or from its first item in API versions that moved it there.
func (s subscriptionObject) periodEnd() time.Time {
	end := s.CurrentPeriodEnd
	if end == 0 && len(s.Items.Data) > 0 {
		end = s.Items.Data[0].CurrentPeriodEnd
	}
	return time.Unix(end, 0).UTC()
}

func (s subscriptionObject) trialEnd() *time.Time {
	if s.TrialEnd == 0 {
		return nil
	}
	end := time.Unix(s.TrialEnd, 0).UTC()
	return &end
}

// tier maps the subscription's price to a catalog tier through the
// catalog's prices, then falls back to the tier that checkout wrote into
// the metadata. ok is false when neither names a catalog tier.
func (m *service) tier(sub subscriptionObject) (string, bool) {
	for _, item := range sub.Items.Data {
		for id, tier := range m.tiers.Catalog {
			if item.Price.ID != "" && (item.Price.ID == tier.Prices.Month || item.Price.ID == tier.Prices.Year) {
				return id, true
			}
		}
	}
	if _, ok := m.tiers.Catalog[sub.Metadata["tier"]]; ok {
		return sub.Metadata["tier"], true
	}
	return "", false
}

// refetch is a subscription to read from Stripe after the webhook response.
type refetch struct {
	userID, subscriptionID string
}

// applyEvent applies one verified event: the event id and its effect are
// committed in one transaction, so a second delivery, also a concurrent
// one, finds the id and changes nothing. It returns the outcome and the
// subscription to read again from Stripe, if any.
func (m *service) applyEvent(ctx context.Context, ev event) (string, *refetch, error) {
	now := m.clock.Now()
	created := time.Unix(ev.Created, 0).UTC()
	logger := m.logger.With(slog.String("event_id", ev.ID), slog.String("event_type", ev.Type))

	switch ev.Type {
	case eventSubscriptionCreated, eventSubscriptionUpdated, eventSubscriptionDeleted,
		eventSubscriptionPaused, eventSubscriptionResumed, eventSubscriptionTrialEnds:
		sub, err := decodeSubscription(ev.Data.Object)
		if err != nil {
			return "", nil, err
		}
		if ev.Type == eventSubscriptionDeleted {
			sub.Status = statusCanceled
		}
		return m.applySubscription(ctx, ev, sub, created, now, logger)

	case eventCheckoutCompleted:
		var session struct {
			Customer          expandable `json:"customer"`
			Subscription      expandable `json:"subscription"`
			ClientReferenceID string     `json:"client_reference_id"`
		}
		if err := json.Unmarshal(ev.Data.Object, &session); err != nil {
			return "", nil, fmt.Errorf("decode checkout session: %w", err)
		}
		return m.recordForRefetch(ctx, ev, string(session.Customer), string(session.Subscription), created, now, logger)

	case eventInvoicePaid, eventInvoicePaymentFailed:
		var invoice struct {
			Customer     expandable `json:"customer"`
			Subscription expandable `json:"subscription"`
		}
		if err := json.Unmarshal(ev.Data.Object, &invoice); err != nil {
			return "", nil, fmt.Errorf("decode invoice: %w", err)
		}
		return m.recordForRefetch(ctx, ev, string(invoice.Customer), string(invoice.Subscription), created, now, logger)

	default:
		return outcomeIgnored, nil, nil
	}
}

// applySubscription records the event and the subscription state it carries.
func (m *service) applySubscription(ctx context.Context, ev event, sub subscriptionObject, created, now time.Time, logger *slog.Logger) (string, *refetch, error) {
	outcome := outcomeApplied
	var userID string
	var again *refetch
	err := m.store.inTx(ctx, "apply event "+ev.ID, func(tx *sql.Tx) error {
		var err error
		userID, err = m.store.userOfCustomer(ctx, tx, string(sub.Customer))
		if errors.Is(err, errNotFound) {
			outcome = outcomeIgnored
			logger.Warn("subscription event of an unknown customer ignored",
				slog.String("customer_id", string(sub.Customer)), slog.String("subscription_id", sub.ID))
			return m.store.insertEvent(ctx, tx, ev.ID, ev.Type, "", created, now)
		}
		if err != nil {
			return err
		}
		if err := m.store.insertEvent(ctx, tx, ev.ID, ev.Type, userID, created, now); err != nil {
			return err
		}

		result, err := m.recordSubscription(ctx, tx, userID, sub, created, now, logger)
		switch {
		case err != nil:
			return err
		case result == runtime.RecordStale:
			outcome = outcomeStale
		case result == runtime.RecordTied:
			outcome = outcomeStale
			again = &refetch{userID: userID, subscriptionID: sub.ID}
		}
		return nil
	})
	if errors.Is(err, errDuplicateEvent) {
		return outcomeDuplicate, nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	if outcome == outcomeApplied {
		m.recorder.SubscriptionChanged(userID)
		logger.Info("subscription changed", slog.String("user_id", userID),
			slog.String("subscription_id", sub.ID), slog.String("status", sub.Status))
	}
	return outcome, again, nil
}

// recordSubscription writes sub as the user's subscription through the
// entitlements recorder, and the subscription id and trial end into
// billing_customers when the recorder applied it.
func (m *service) recordSubscription(ctx context.Context, tx *sql.Tx, userID string, sub subscriptionObject, created, now time.Time, logger *slog.Logger) (runtime.RecordOutcome, error) {
	tier, ok := m.tier(sub)
	if !ok {
		tier = m.tiers.Default
		logger.Warn("subscription price is not in tiers.catalog prices, recorded with the default tier",
			slog.String("subscription_id", sub.ID), slog.String("tier", tier))
	}
	record := runtime.SubscriptionRecord{
		UserID: userID, Tier: tier, Status: sub.Status,
		CurrentPeriodEnd: sub.periodEnd(), CancelAtPeriodEnd: sub.CancelAtPeriodEnd, StripeCreated: created,
	}
	result, err := m.recorder.RecordSubscription(ctx, tx, record, m.opts.PastDueGrace)
	if err != nil || result != runtime.RecordApplied {
		return result, err
	}
	return result, m.store.setSubscription(ctx, tx, userID, sub.ID, sub.trialEnd(), now)
}

// recordForRefetch records an event whose object does not carry the
// subscription's state, and returns the subscription to read from Stripe.
func (m *service) recordForRefetch(ctx context.Context, ev event, customerID, subscriptionID string, created, now time.Time, logger *slog.Logger) (string, *refetch, error) {
	outcome := outcomeApplied
	var userID string
	err := m.store.inTx(ctx, "apply event "+ev.ID, func(tx *sql.Tx) error {
		var err error
		userID, err = m.store.userOfCustomer(ctx, tx, customerID)
		if errors.Is(err, errNotFound) {
			outcome = outcomeIgnored
			logger.Warn("event of an unknown customer ignored", slog.String("customer_id", customerID))
			userID = ""
		} else if err != nil {
			return err
		}
		if subscriptionID == "" {
			outcome = outcomeIgnored
		}
		return m.store.insertEvent(ctx, tx, ev.ID, ev.Type, userID, created, now)
	})
	if errors.Is(err, errDuplicateEvent) {
		return outcomeDuplicate, nil, nil
	}
	if err != nil || outcome != outcomeApplied {
		return outcome, nil, err
	}
	return outcome, &refetch{userID: userID, subscriptionID: subscriptionID}, nil
}
