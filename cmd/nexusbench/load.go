package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// Load generator defaults. On the 2-core reference machine the server and
// the load generator share the cores, and docs/benchmarks.md explains why
// 32 connections is the default there.
const (
	defaultDuration    = 10 * time.Second
	defaultWarmup      = 2 * time.Second
	defaultConnections = 32
	requestTimeout     = 5 * time.Second
	// errorPause keeps a connection whose request failed from spinning
	// against a server that is down.
	errorPause = 10 * time.Millisecond
	// latenciesPerConnection is the initial capacity of each connection's
	// latency slice: 10 s at 10,000 requests/s per connection.
	latenciesPerConnection = 100_000
)

// loadMethods lists the request methods that the load command accepts.
var loadMethods = []string{
	fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodPost, fasthttp.MethodPut,
	fasthttp.MethodPatch, fasthttp.MethodDelete, fasthttp.MethodOptions,
}

// loadOptions configure one closed-loop load run. Every request is the
// same: Method on URL with Headers and Body.
type loadOptions struct {
	Method      string
	URL         string
	Headers     []header
	Body        string
	Duration    time.Duration
	Warmup      time.Duration
	Connections int
}

type header struct{ Name, Value string }

// loadResult is the output of the load command, printed as one line of
// JSON. Requests, RequestsPerSecond and the latencies cover the measurement
// window after the warmup, but Errors counts the warmup too.
type loadResult struct {
	// TotalRequests counts every request sent, the warmup's and the failed ones included.
	TotalRequests     int     `json:"total_requests"`
	Requests          int     `json:"requests"`
	Errors            int     `json:"errors"`
	Seconds           float64 `json:"seconds"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	P50Millis         float64 `json:"p50_ms"`
	P99Millis         float64 `json:"p99_ms"`
	MaxMillis         float64 `json:"max_ms"`
	BodyBytes         int     `json:"body_bytes"`
	// FirstError describes the first failed request, for diagnosis.
	FirstError string `json:"first_error,omitempty"`
}

// headerList is a repeatable -header flag.
type headerList []header

func (h *headerList) String() string { return fmt.Sprint(len(*h), " headers") }

func (h *headerList) Set(value string) error {
	name, val, ok := strings.Cut(value, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return fmt.Errorf("header %q is not of the form 'Name: value'", value)
	}
	*h = append(*h, header{Name: name, Value: strings.TrimSpace(val)})
	return nil
}

// runLoad runs one load and prints its result as a line of JSON on stdout.
func runLoad(args []string) error {
	opts, err := parseLoadOptions(args)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	result, err := generateLoad(ctx, opts)
	if err != nil {
		return err
	}
	line, err := json.Marshal(result)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	fmt.Println(string(line))
	return nil
}

// parseLoadOptions parses and checks the options of the load command,
// args without the command's name.
func parseLoadOptions(args []string) (loadOptions, error) {
	flags := newFlagSet("load")
	var opts loadOptions
	var headers headerList
	flags.StringVar(&opts.Method, "method", fasthttp.MethodGet, "request method: "+strings.Join(loadMethods, ", "))
	flags.StringVar(&opts.URL, "url", "", "URL to request, on a loopback host (required)")
	flags.Var(&headers, "header", "request header 'Name: value'; repeatable")
	flags.StringVar(&opts.Body, "body", "", "request body, sent as given; set its type with -header 'Content-Type: …'")
	flags.DurationVar(&opts.Duration, "duration", defaultDuration, "length of the measurement, after the warmup")
	flags.DurationVar(&opts.Warmup, "warmup", defaultWarmup, "length of the warmup, whose requests are not measured")
	flags.IntVar(&opts.Connections, "connections", defaultConnections, "number of connections, each sending one request after another")
	if err := parseFlags(flags, args); err != nil {
		return loadOptions{}, err
	}
	opts.Headers = headers
	if err := opts.check(); err != nil {
		return loadOptions{}, fmt.Errorf("%w: %w", errUsage, err)
	}
	return opts, nil
}

// check validates the options; the URL must be http:// on a loopback host.
func (o loadOptions) check() error {
	if !slices.Contains(loadMethods, o.Method) {
		return fmt.Errorf("-method: %q is not one of %s", o.Method, strings.Join(loadMethods, ", "))
	}
	target, err := url.Parse(o.URL)
	if err != nil {
		return fmt.Errorf("-url: invalid URL %q: %w", o.URL, err)
	}
	if target.Scheme != "http" {
		return fmt.Errorf("-url: scheme of %q must be http", o.URL)
	}
	if target.Port() == "" {
		return fmt.Errorf("-url: %q has no port", o.URL)
	}
	if err := checkLoopbackAddress(target.Host); err != nil {
		return fmt.Errorf("-url: %w", err)
	}
	if o.Duration <= 0 {
		return fmt.Errorf("-duration must be positive, got %s", o.Duration)
	}
	if o.Warmup < 0 {
		return fmt.Errorf("-warmup must not be negative, got %s", o.Warmup)
	}
	if o.Connections < 1 {
		return fmt.Errorf("-connections must be at least 1, got %d", o.Connections)
	}
	return nil
}

// args returns the command line of the load command for o, which
// parseLoadOptions parses back into o.
func (o loadOptions) args() []string {
	args := []string{
		"load", "-method", o.Method, "-url", o.URL,
		"-duration", o.Duration.String(),
		"-warmup", o.Warmup.String(),
		"-connections", strconv.Itoa(o.Connections),
	}
	for _, h := range o.Headers {
		args = append(args, "-header", h.Name+": "+h.Value)
	}
	if o.Body != "" {
		args = append(args, "-body", o.Body)
	}
	return args
}

// prepareRequest writes o's method, URL, headers and body into req.
func (o loadOptions) prepareRequest(req *fasthttp.Request) {
	req.SetRequestURI(o.URL)
	req.Header.SetMethod(o.Method)
	for _, h := range o.Headers {
		req.Header.Set(h.Name, h.Value)
	}
	if o.Body != "" {
		req.SetBodyString(o.Body)
	}
}

// connectionStats are the records of one connection's goroutine.
type connectionStats struct {
	sent       int
	latencies  []time.Duration
	errors     int
	bodyBytes  int
	firstError string
}

// generateLoad sends opts' request to opts.URL on opts.Connections
// connections, each goroutine sending its next request as soon as the
// response to the last one arrives, for opts.Warmup and then opts.Duration. A request counts
// in the measurement when it starts inside the measurement window. Any
// status but 200 and any transport error is an error. A cancelled ctx ends
// the load early and returns ctx's error.
func generateLoad(ctx context.Context, opts loadOptions) (loadResult, error) {
	target, err := url.Parse(opts.URL)
	if err != nil {
		return loadResult{}, fmt.Errorf("parse URL %q: %w", opts.URL, err)
	}
	client := &fasthttp.HostClient{
		Addr:                target.Host,
		MaxConns:            opts.Connections,
		ReadTimeout:         requestTimeout,
		WriteTimeout:        requestTimeout,
		MaxIdleConnDuration: time.Minute,
	}
	defer client.CloseIdleConnections()

	start := time.Now()
	measureFrom := start.Add(opts.Warmup)
	measureUntil := measureFrom.Add(opts.Duration)

	stats := make([]connectionStats, opts.Connections)
	var wg sync.WaitGroup
	for i := range stats {
		wg.Add(1)
		go func(stats *connectionStats) {
			defer wg.Done()
			sendRequests(ctx, client, opts, measureFrom, measureUntil, stats)
		}(&stats[i])
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return loadResult{}, fmt.Errorf("load %s: %w", opts.URL, err)
	}

	return summarize(stats, opts.Duration), nil
}

// sendRequests is the loop of one connection.
func sendRequests(ctx context.Context, client *fasthttp.HostClient, opts loadOptions, measureFrom, measureUntil time.Time, stats *connectionStats) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	opts.prepareRequest(req)
	stats.latencies = make([]time.Duration, 0, latenciesPerConnection)

	for ctx.Err() == nil {
		sent := time.Now()
		if !sent.Before(measureUntil) {
			return
		}

		err := client.Do(req, resp)
		latency := time.Since(sent)
		stats.sent++

		if err == nil && resp.StatusCode() == fasthttp.StatusOK {
			stats.bodyBytes = len(resp.Body())
			if !sent.Before(measureFrom) {
				stats.latencies = append(stats.latencies, latency)
			}
			continue
		}
		stats.errors++
		if stats.firstError == "" {
			stats.firstError = describeFailure(err, resp)
		}
		if err != nil {
			time.Sleep(errorPause)
		}
	}
}

// describeFailure names a transport error, or the status and the start of
// the body of an unexpected response.
func describeFailure(err error, resp *fasthttp.Response) string {
	if err != nil {
		return err.Error()
	}
	body := resp.Body()
	const maxQuoted = 200
	if len(body) > maxQuoted {
		body = body[:maxQuoted]
	}
	return fmt.Sprintf("status %d: %s", resp.StatusCode(), body)
}

// summarize merges the connections' records into one result over a
// measurement window of length window.
func summarize(stats []connectionStats, window time.Duration) loadResult {
	var all []time.Duration
	result := loadResult{Seconds: window.Seconds()}
	for _, s := range stats {
		all = append(all, s.latencies...)
		result.TotalRequests += s.sent
		result.Errors += s.errors
		if s.bodyBytes > 0 {
			result.BodyBytes = s.bodyBytes
		}
		if result.FirstError == "" {
			result.FirstError = s.firstError
		}
	}
	slices.Sort(all)

	result.Requests = len(all)
	result.RequestsPerSecond = float64(len(all)) / window.Seconds()
	result.P50Millis = millis(percentile(all, 50))
	result.P99Millis = millis(percentile(all, 99))
	if len(all) > 0 {
		result.MaxMillis = millis(all[len(all)-1])
	}
	return result
}

// percentile returns the nearest-rank p-th percentile of sorted, or zero
// for an empty slice: the smallest value that at least p percent of the
// values are less than or equal to.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(float64(len(sorted)) * p / 100))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
