package edge

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
	"github.com/valyala/fasthttp"
)

// unmatchedRoute is the route label of requests that no route matched,
// so a scan of random paths cannot create unbounded label values.
const unmatchedRoute = "unmatched"

// Metrics holds the edge's Prometheus collectors on a registry of its own.
type Metrics struct {
	registry   *prometheus.Registry
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	rejections *prometheus.CounterVec

	userRejections prometheus.Counter
	ipRejections   prometheus.Counter
}

// NewMetrics creates the edge's collectors and registers them, with the Go
// runtime and process collectors, on a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nexus_http_requests_total",
			Help: "HTTP requests served, by method, route pattern and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "nexus_http_request_duration_seconds",
			Help:    "Time from routing a request to the end of its handler, in seconds.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nexus_rate_limit_rejections_total",
			Help: "Requests rejected with 429 by a rate limit, by scope (user or ip).",
		}, []string{"scope"}),
	}
	m.userRejections = m.rejections.WithLabelValues("user")
	m.ipRejections = m.rejections.WithLabelValues("ip")

	m.registry.MustRegister(m.requests, m.duration, m.rejections,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry that the edge's collectors are on, for
// other collectors to join.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Handler returns a handler that writes every metric of the registry in the
// Prometheus text format.
func (m *Metrics) Handler() HandlerFunc {
	format := expfmt.NewFormat(expfmt.TypeTextPlain)

	return func(req *Request) error {
		families, err := m.registry.Gather()
		if err != nil {
			return fmt.Errorf("gather metrics: %w", err)
		}

		var buf bytes.Buffer
		enc := expfmt.NewEncoder(&buf, format)
		for _, family := range families {
			if err := enc.Encode(family); err != nil {
				return fmt.Errorf("encode metric %s: %w", family.GetName(), err)
			}
		}
		req.Raw(http.StatusOK, string(format), buf.Bytes())
		return nil
	}
}

// firstStatus and lastStatus bound the statuses whose counters a route caches.
const (
	firstStatus = 100
	lastStatus  = 599
)

// routeMetrics caches the label children of one route, so that the hot
// path does not hash label values on every request.
type routeMetrics struct {
	requests *prometheus.CounterVec
	method   string
	route    string
	duration prometheus.Observer
	byStatus [lastStatus - firstStatus + 1]atomic.Pointer[statusCounter]
}

type statusCounter struct{ counter prometheus.Counter }

func (m *Metrics) forRoute(method, route string) *routeMetrics {
	return &routeMetrics{
		requests: m.requests,
		method:   method,
		route:    route,
		duration: m.duration.WithLabelValues(method, route),
	}
}

func (rm *routeMetrics) observe(status int, elapsed time.Duration) {
	rm.duration.Observe(elapsed.Seconds())

	if status < firstStatus || status > lastStatus {
		rm.requests.WithLabelValues(rm.method, rm.route, strconv.Itoa(status)).Inc()
		return
	}
	slot := &rm.byStatus[status-firstStatus]
	cached := slot.Load()
	if cached == nil {
		cached = &statusCounter{counter: rm.requests.WithLabelValues(rm.method, rm.route, strconv.Itoa(status))}
		slot.Store(cached)
	}
	cached.counter.Inc()
}

// observeUnmatched counts a request that no route matched. Its method label
// is one of the standard methods or "OTHER", because the method is the
// client's input.
func (m *Metrics) observeUnmatched(method []byte, status int, elapsed time.Duration) {
	label := methodLabel(method)
	m.duration.WithLabelValues(label, unmatchedRoute).Observe(elapsed.Seconds())
	m.requests.WithLabelValues(label, unmatchedRoute, strconv.Itoa(status)).Inc()
}

func methodLabel(method []byte) string {
	switch string(method) {
	case fasthttp.MethodGet:
		return fasthttp.MethodGet
	case fasthttp.MethodHead:
		return fasthttp.MethodHead
	case fasthttp.MethodPost:
		return fasthttp.MethodPost
	case fasthttp.MethodPut:
		return fasthttp.MethodPut
	case fasthttp.MethodPatch:
		return fasthttp.MethodPatch
	case fasthttp.MethodDelete:
		return fasthttp.MethodDelete
	case fasthttp.MethodOptions:
		return fasthttp.MethodOptions
	default:
		return "OTHER"
	}
}
