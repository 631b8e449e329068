// Package billing is the Billing API section: Stripe Checkout for a tier
// and interval, the customer portal, the caller's subscription, and the
// Stripe webhook that keeps subscriptions current. Subscription state is
// written through the entitlements module's runtime.SubscriptionRecorder,
// which maps it to a tier. A periodic reconciliation reads every
// subscription from Stripe again and corrects drift.
package billing

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/storage"
)

// Name is the module's key under "modules" in the config.
const Name = "billing"

// Bounds of the background work.
const (
	// maxWebhookBodyBytes is the body limit of the webhook route; Stripe's
	// events are a few KiB.
	maxWebhookBodyBytes = 64 << 10
	// maxRefetchesInFlight bounds the subscription reads from Stripe that
	// follow webhook responses and run at one time. A read beyond it is dropped and logged,
	// and the next reconciliation corrects what it would have.
	maxRefetchesInFlight = 8
	// maxReconcileDuration bounds one periodic reconciliation.
	maxReconcileDuration = 30 * time.Minute
)

func init() {
	runtime.RegisterModule(Name, func() runtime.Module { return &Module{} })
	runtime.RegisterAccountHook(Name, deleteUser)
}

//go:embed migrations
var migrationFiles embed.FS

// Module serves the /v1/billing routes.
type Module struct {
	service
	host *runtime.Host

	// background runs the Stripe reads that follow a webhook response.
	backgroundCtx    context.Context
	backgroundCancel context.CancelFunc
	backgroundWork   sync.WaitGroup
	backgroundSlots  chan struct{}
}

// Info names the module and its dependencies: auth for the users and
// entitlements for the subscription recorder.
func (m *Module) Info() runtime.ModuleInfo {
	return runtime.ModuleInfo{Name: Name, Title: "Billing", Requires: []string{"auth", "entitlements"}}
}

// Migrations returns the module's tables: customers and processed events.
func (m *Module) Migrations() storage.MigrationSet {
	return storage.EmbeddedMigrationSet(Name, migrationFiles)
}

// Decode reads modules.billing strictly over the defaults.
func (m *Module) Decode(section map[string]any) error {
	opts, err := configs.DecodeModule(Name, section, defaultOptions(), options.validate)
	if err != nil {
		return err
	}
	m.opts = opts
	return nil
}

// Provision looks up the entitlements module's subscription recorder and
// the metrics registry, and builds the store and the Stripe client.
func (m *Module) Provision(_ context.Context, host *runtime.Host) error {
	m.host = host
	m.tiers = host.Config.Tiers
	m.store = &store{db: host.DB}
	m.clock = host.Clock
	m.logger = host.Logger.With(slog.String("module", Name))

	recorder, err := runtime.Lookup[runtime.SubscriptionRecorder](host.Services, runtime.ServiceSubscriptions)
	if err != nil {
		return fmt.Errorf("look up the subscription recorder: %w", err)
	}
	m.recorder = recorder

	registerer, err := runtime.Lookup[prometheus.Registerer](host.Services, runtime.ServiceMetrics)
	if err != nil {
		m.logger.Warn("no metrics registry, billing metrics are not exported", slog.String("error", err.Error()))
		registerer = prometheus.NewRegistry()
	}
	m.metrics = newMetrics(registerer)
	m.stripe = newStripeAPI(m.opts, m.metrics)
	return nil
}

// Validate checks that each catalog price belongs to one tier only, so a
// subscription's price maps back to one tier.
func (m *Module) Validate() error {
	owners := map[string]string{}
	for id, tier := range m.tiers.Catalog {
		for _, price := range []string{tier.Prices.Month, tier.Prices.Year} {
			if price == "" {
				continue
			}
			if other, ok := owners[price]; ok && other != id {
				return fmt.Errorf("tiers.catalog: price %s belongs to both %s and %s", price, other, id)
			}
			owners[price] = id
		}
	}
	return nil
}

// Start opens the background work and logs which parts of billing are off
// for lack of secrets.
func (m *Module) Start(context.Context) error {
	m.backgroundCtx, m.backgroundCancel = context.WithCancel(context.Background())
	m.backgroundSlots = make(chan struct{}, maxRefetchesInFlight)

	if m.stripe == nil {
		m.logger.Warn("modules.billing.secret_key is empty: checkout, portal, subscription reads and reconciliation are off")
	}
	if len(m.opts.webhookSecrets()) == 0 {
		m.logger.Warn("modules.billing.webhook_secret is empty: every webhook delivery is rejected")
	}
	return nil
}

// Run reconciles the subscriptions every reconcile_interval until the
// supervisor cancels ctx. A failed reconciliation is logged and retried at
// the next interval rather than restarting the module.
func (m *Module) Run(ctx context.Context) error {
	if m.stripe == nil || m.opts.ReconcileInterval == 0 {
		<-ctx.Done()
		return nil
	}

	for {
		due := make(chan struct{})
		timer := m.clock.AfterFunc(m.opts.ReconcileInterval, func() { close(due) })
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-due:
		}

		m.logger.Info("reconciliation started")
		runCtx, cancel := context.WithTimeout(ctx, min(m.opts.ReconcileInterval, maxReconcileDuration))
		result, err := m.reconcile(runCtx)
		cancel()
		if err != nil && !errors.Is(ctx.Err(), context.Canceled) {
			m.logger.Error("reconciliation failed", slog.String("error", err.Error()))
			continue
		}
		m.logger.Info("reconciliation finished", slog.Int("checked", result.Checked),
			slog.Int("corrected", result.Corrected), slog.Int("failed", result.Failed))
	}
}

// Stop cancels the background Stripe reads and waits for them. It is safe
// after a Provision that failed and without Start.
func (m *Module) Stop(context.Context) error {
	if m.backgroundCancel != nil {
		m.backgroundCancel()
		m.backgroundWork.Wait()
	}
	return nil
}

// Routes lists the module's routes. The webhook route is neither
// authenticated nor rate-limited, because Stripe signs its deliveries.
func (m *Module) Routes() []edge.Route {
	private := func(method, path, summary string, handler edge.HandlerFunc) edge.Route {
		return edge.Route{Method: method, Path: path, Module: Name, Handler: handler, Authenticated: true, Summary: summary}
	}
	return []edge.Route{
		private("POST", "/v1/billing/checkout", "A Stripe Checkout session for a tier and interval", m.checkout),
		private("POST", "/v1/billing/portal", "A Stripe customer portal session", m.portal),
		private("GET", "/v1/billing/subscription", "The caller's subscription", m.subscription),
		{
			Method: "POST", Path: "/v1/billing/webhooks", Module: Name, Handler: m.webhook,
			MaxBodyBytes: maxWebhookBodyBytes, Summary: "Stripe webhook events",
		},
	}
}

// schedule reads the subscription from Stripe on a background goroutine,
// after the webhook response.
func (m *Module) schedule(work refetch) {
	select {
	case m.backgroundSlots <- struct{}{}:
	default:
		m.logger.Warn("too many subscription reads in flight, one dropped until the next reconciliation",
			slog.String("user_id", work.userID), slog.String("subscription_id", work.subscriptionID))
		return
	}

	m.backgroundWork.Add(1)
	go func() {
		defer m.backgroundWork.Done()
		defer func() { <-m.backgroundSlots }()

		if _, err := m.refreshSubscription(m.backgroundCtx, work.userID, work.subscriptionID, "webhook"); err != nil {
			m.logger.Error("read subscription after webhook failed", slog.String("user_id", work.userID),
				slog.String("subscription_id", work.subscriptionID), slog.String("error", err.Error()))
		}
	}()
}
