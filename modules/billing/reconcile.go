package billing

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/storage"
)

// service is the module's work that needs no HTTP server: applying events,
// reading subscriptions from Stripe again and reconciling them. The
// module and `nexus billing reconcile` share it.
type service struct {
	opts     options
	tiers    configs.Tiers
	store    *store
	stripe   *stripeAPI
	recorder runtime.SubscriptionRecorder
	clock    clock.Clock
	logger   *slog.Logger
	metrics  *metrics
}

// refreshSubscription reads the user's subscription from Stripe and
// records it when it differs from the stored one. It reports whether it
// corrected the stored subscription. The read is stamped with the local
// clock, which is newer than every event Stripe created before the read,
// as long as the local clock is not behind Stripe's.
func (m *service) refreshSubscription(ctx context.Context, userID, subscriptionID, reason string) (bool, error) {
	logger := m.logger.With(slog.String("user_id", userID), slog.String("subscription_id", subscriptionID))
	sub, err := m.stripe.subscription(ctx, subscriptionID)
	if err != nil {
		return false, err
	}
	owner, err := m.store.customerOf(ctx, userID)
	if err != nil {
		return false, err
	}
	if owner.CustomerID != string(sub.Customer) {
		logger.Warn("subscription belongs to another customer than the user's, skipped",
			slog.String("customer_id", string(sub.Customer)))
		return false, nil
	}

	stored, ok, err := m.recorder.Subscription(ctx, userID)
	if err != nil {
		return false, err
	}
	tier, _ := m.tier(sub)
	if ok && stored.Status == sub.Status && stored.Tier == tier &&
		stored.CurrentPeriodEnd.Equal(sub.periodEnd()) && stored.CancelAtPeriodEnd == sub.CancelAtPeriodEnd {
		return false, nil
	}

	now := m.clock.Now()
	var result runtime.RecordOutcome
	err = m.store.inTx(ctx, "record subscription "+subscriptionID, func(tx *sql.Tx) error {
		result, err = m.recordSubscription(ctx, tx, userID, sub, now, now, logger)
		return err
	})
	if err != nil {
		return false, err
	}
	if result != runtime.RecordApplied {
		return false, nil
	}
	m.recorder.SubscriptionChanged(userID)
	from, fromTier := "none", ""
	if ok {
		from, fromTier = stored.Status, stored.Tier
	}
	logger.Info("subscription corrected from Stripe", slog.String("reason", reason),
		slog.String("from_status", from), slog.String("from_tier", fromTier),
		slog.String("status", sub.Status), slog.String("tier", tier))
	return true, nil
}

// ReconcileResult counts what one reconciliation did.
type ReconcileResult struct {
	// Checked is the number of subscriptions read from Stripe.
	Checked int
	// Corrected is the number whose stored state differed and was replaced.
	Corrected int
	// Failed is the number that could not be read or written; each is logged.
	Failed int
}

// reconcile reads every user's latest subscription from Stripe and
// corrects the stored ones that drifted. A failure on one subscription is
// logged and counted, and the others go on.
func (m *service) reconcile(ctx context.Context) (ReconcileResult, error) {
	var result ReconcileResult
	customers, err := m.store.subscribedCustomers(ctx)
	if err != nil {
		return result, err
	}

	for _, c := range customers {
		if err := ctx.Err(); err != nil {
			return result, fmt.Errorf("reconcile subscriptions: %w", err)
		}
		result.Checked++
		corrected, err := m.refreshSubscription(ctx, c.UserID, c.SubscriptionID, "reconcile")
		if err != nil {
			result.Failed++
			m.logger.Error("reconcile subscription failed", slog.String("user_id", c.UserID),
				slog.String("subscription_id", c.SubscriptionID), slog.String("error", err.Error()))
			continue
		}
		if corrected {
			result.Corrected++
			m.metrics.corrections.Inc()
		}
	}
	return result, nil
}

// Reconcile reads every subscription that the database names from Stripe,
// with the modules.billing and tiers options of cfg, and corrects the
// stored ones that drifted, logging each correction. It is what `nexus
// billing reconcile` runs; a running server's actors pick the corrections
// up when they resolve their entitlements again.
func Reconcile(ctx context.Context, cfg *configs.Config, db *storage.DB, recorder runtime.SubscriptionRecorder, clk clock.Clock, logger *slog.Logger) (ReconcileResult, error) {
	section := maps.Clone(cfg.Modules[Name])
	delete(section, "enabled")
	opts := defaultOptions()
	if err := configs.DecodeSection("modules."+Name, section, &opts); err != nil {
		return ReconcileResult{}, err
	}
	if err := opts.validate(); err != nil {
		return ReconcileResult{}, err
	}
	if opts.SecretKey == "" {
		return ReconcileResult{}, errors.New("reconcile subscriptions: " + errStripeOff.Error())
	}

	m := newMetrics(prometheus.NewRegistry())
	s := &service{
		opts: opts, tiers: cfg.Tiers, store: &store{db: db}, stripe: newStripeAPI(opts, m),
		recorder: recorder, clock: clk, logger: logger.With(slog.String("module", Name)), metrics: m,
	}
	return s.reconcile(ctx)
}
