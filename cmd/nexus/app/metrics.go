package app

import (
	"encoding/json"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/storage"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// moduleEventMetrics counts supervision events per module.
type moduleEventMetrics struct {
	restarts *prometheus.CounterVec
	events   *prometheus.CounterVec
}

// newModuleEventMetrics registers the counters with a zero series for each
// module, so a scrape shows every module before its first event.
func newModuleEventMetrics(metrics *edge.Metrics, modules []string) *moduleEventMetrics {
	m := &moduleEventMetrics{
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nexus_module_restarts_total",
			Help: "Restarts of a module by its supervisor after a failure.",
		}, []string{"module"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nexus_module_events_total",
			Help: "Supervision events per module: started, restarting, failed, stopped.",
		}, []string{"module", "event"}),
	}
	metrics.Registry().MustRegister(m.restarts, m.events)
	for _, name := range modules {
		m.restarts.WithLabelValues(name)
	}
	return m
}

func (m *moduleEventMetrics) observe(module string, event runtime.ModuleEvent) {
	m.events.WithLabelValues(module, string(event)).Inc()
	if event == runtime.EventRestarting {
		m.restarts.WithLabelValues(module).Inc()
	}
}

// registerRuntimeMetrics adds gauges read at scrape time: live user actors
// and the database pool.
func registerRuntimeMetrics(metrics *edge.Metrics, db *storage.DB, users *runtime.Users) {
	gauge := func(name, help string, read func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, read)
	}
	counter := func(name, help string, read func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, read)
	}
	metrics.Registry().MustRegister(
		gauge("nexus_user_actors", "Live per-user actors.", func() float64 { return float64(users.Count()) }),
		gauge("nexus_db_pool_open_connections", "Open database connections, in use and idle.",
			func() float64 { return float64(db.Stats().OpenConnections) }),
		gauge("nexus_db_pool_in_use_connections", "Database connections in use.",
			func() float64 { return float64(db.Stats().InUse) }),
		gauge("nexus_db_pool_idle_connections", "Idle database connections.",
			func() float64 { return float64(db.Stats().Idle) }),
		gauge("nexus_db_pool_max_open_connections", "The pool's maximum of open connections.",
			func() float64 { return float64(db.Stats().MaxOpenConnections) }),
		counter("nexus_db_pool_wait_total", "Times a caller waited for a free database connection.",
			func() float64 { return float64(db.Stats().WaitCount) }),
		counter("nexus_db_pool_wait_seconds_total", "Time spent waiting for a free database connection.",
			func() float64 { return db.Stats().WaitDuration.Seconds() }),
	)
}
