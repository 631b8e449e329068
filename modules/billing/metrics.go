package billing

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the module's Prometheus collectors.
type metrics struct {
	stripeRequests     *prometheus.CounterVec
	webhookEvents      *prometheus.CounterVec
	apiVersionMismatch prometheus.Counter
	corrections        prometheus.Counter
}

// newMetrics registers the collectors with registerer. A module started
// again by a reload finds them registered and reuses them.
func newMetrics(registerer prometheus.Registerer) *metrics {
	return &metrics{
		stripeRequests: register(registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nexus_billing_stripe_requests_total",
			Help: "Calls to the Stripe API by operation and outcome (ok, error).",
		}, []string{"operation", "outcome"})),
		webhookEvents: register(registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nexus_billing_webhook_events_total",
			Help: "Verified Stripe webhook events by type and outcome (applied, duplicate, stale, ignored).",
		}, []string{"type", "outcome"})),
		apiVersionMismatch: register(registerer, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nexus_billing_webhook_api_version_mismatch_total",
			Help: "Verified Stripe webhook events of another API version than the one stripe-go pins, parsed tolerantly.",
		})),
		corrections: register(registerer, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nexus_billing_reconcile_corrections_total",
			Help: "Subscriptions that reconciliation found out of date and corrected.",
		})),
	}
}

func register[C prometheus.Collector](registerer prometheus.Registerer, collector C) C {
	err := registerer.Register(collector)
	var registered prometheus.AlreadyRegisteredError
	if errors.As(err, &registered) {
		if existing, ok := registered.ExistingCollector.(C); ok {
			return existing
		}
	}
	return collector
}
