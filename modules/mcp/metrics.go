package mcp

import (
	"errors"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the module's Prometheus collectors.
type metrics struct {
	restarts *prometheus.CounterVec
	sessions *prometheus.CounterVec
}

// newMetrics registers the collectors with registerer. A module started
// again by a reload finds them registered and reuses them, and the gauges
// read the module through source, which follows the running module.
func newMetrics(registerer prometheus.Registerer, source *atomic.Pointer[registry]) *metrics {
	m := &metrics{
		restarts: register(registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nexus_mcp_restarts_total",
			Help: "Automatic restarts of hosted MCP server processes after a crash, a failed start or failed health checks, by plugin.",
		}, []string{"plugin"})),
		sessions: register(registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nexus_mcp_sessions_total",
			Help: "MCP sessions opened through the Streamable HTTP endpoint, by plugin.",
		}, []string{"plugin"})),
	}
	register(registerer, &stateCollector{source: source})
	return m
}

var (
	processesDesc = prometheus.NewDesc("nexus_mcp_plugin_processes",
		"Plugin processes of hosted MCP servers running on this node.", nil, nil)
	statesDesc = prometheus.NewDesc("nexus_mcp_servers",
		"Hosted MCP servers this node has loaded, by supervision state.", []string{"state"}, nil)
)

// stateCollector reports the live processes and the servers per state at
// scrape time.
type stateCollector struct {
	source *atomic.Pointer[registry]
}

// Describe sends the descriptors of the collector's metrics.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- processesDesc
	ch <- statesDesc
}

// Collect counts the servers of the running module.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[serverState]int{}
	processes := 0
	if servers := c.source.Load(); servers != nil {
		for _, srv := range servers.all() {
			counts[srv.currentState()]++
			if srv.process() != nil {
				processes++
			}
		}
	}

	ch <- prometheus.MustNewConstMetric(processesDesc, prometheus.GaugeValue, float64(processes))
	for _, state := range allStates {
		ch <- prometheus.MustNewConstMetric(statesDesc, prometheus.GaugeValue, float64(counts[state]), string(state))
	}
}

// register registers collector, or returns the equal collector registered
// before.
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
