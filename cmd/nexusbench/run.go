package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// Readiness polling of a started server.
const (
	readyTimeout      = 30 * time.Second
	readyPollInterval = 50 * time.Millisecond
)

// entitlementsPath is the hot path that the benchmark measures.
const entitlementsPath = "/v1/entitlements"

// runOptions are the parameters of the whole benchmark.
type runOptions struct {
	Duration    time.Duration
	Warmup      time.Duration
	Connections int
	// LoginConnections is the number of connections of part (d).
	LoginConnections int
	Actors           int
	// Keep keeps the temporary directory with the server's config and log.
	Keep bool
}

// benchmark is one run of the whole benchmark: its options, the processes
// it started and its temporary directory.
type benchmark struct {
	opts     runOptions
	self     string
	workDir  string
	children *children
}

// runBenchmark builds nexus, measures the bare baseline, the nexus hot path
// and the memory of idle actors, and prints the report on stdout. Progress
// goes to stderr. It fails when any request failed.
func runBenchmark(args []string) error {
	flags := newFlagSet("run")
	var opts runOptions
	flags.DurationVar(&opts.Duration, "duration", defaultDuration, "length of each measurement, after the warmup")
	flags.DurationVar(&opts.Warmup, "warmup", defaultWarmup, "length of the warmup before each measurement")
	flags.IntVar(&opts.Connections, "connections", defaultConnections, "number of connections of the load generator")
	flags.IntVar(&opts.LoginConnections, "login-connections", defaultLoginConnections, "number of connections of the load generator for the logins of part (d)")
	flags.IntVar(&opts.Actors, "actors", defaultActorCount, "number of idle user actors whose memory is measured")
	flags.BoolVar(&opts.Keep, "keep", false, "keep the temporary directory with the server's config and log")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if err := opts.check(); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}

	// Storage and the keyring log their routine steps at info; only
	// warnings and errors belong between the progress lines.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	workDir, err := os.MkdirTemp("", "nexusbench-")
	if err != nil {
		return fmt.Errorf("create temporary directory: %w", err)
	}
	if opts.Keep {
		progress("keeping %s", workDir)
	} else {
		defer os.RemoveAll(workDir)
	}
	b := &benchmark{opts: opts, self: self, workDir: workDir, children: &children{}}
	defer b.children.stopAll()

	report, err := b.run(ctx)
	if err != nil {
		return err
	}
	report.print(os.Stdout)
	if failed := report.Bare.Load.Errors + report.Nexus.Load.Errors + report.Login.Load.Errors; failed > 0 {
		first := firstNonEmpty(report.Bare.Load.FirstError, report.Nexus.Load.FirstError, report.Login.Load.FirstError)
		return fmt.Errorf("%d requests failed, the first with: %s", failed, first)
	}
	return nil
}

func (o runOptions) check() error {
	switch {
	case o.Duration <= 0:
		return fmt.Errorf("-duration must be positive, got %s", o.Duration)
	case o.Warmup < 0:
		return fmt.Errorf("-warmup must not be negative, got %s", o.Warmup)
	case o.Connections < 1:
		return fmt.Errorf("-connections must be at least 1, got %d", o.Connections)
	case o.LoginConnections < 1:
		return fmt.Errorf("-login-connections must be at least 1, got %d", o.LoginConnections)
	case o.Actors < 1:
		return fmt.Errorf("-actors must be at least 1, got %d", o.Actors)
	}
	return nil
}

// run runs the four measurements in order.
func (b *benchmark) run(ctx context.Context) (report, error) {
	rep := report{Options: b.opts, Machine: currentMachine()}

	progress("building nexus")
	nexusPath, err := b.buildNexus(ctx)
	if err != nil {
		return report{}, err
	}

	progress("(a) bare fasthttp server, %s with %d connections", b.opts.Duration, b.opts.Connections)
	rep.Bare, err = b.measureBare(ctx)
	if err != nil {
		return report{}, err
	}

	progress("(b) nexus GET %s, %s with %d connections", entitlementsPath, b.opts.Duration, b.opts.Connections)
	rep.Nexus, rep.AccessLogLines, err = b.measureNexus(ctx, nexusPath)
	if err != nil {
		return report{}, err
	}

	progress("(c) memory of %d idle user actors", b.opts.Actors)
	rep.Actors, err = measureActors(ctx, b.opts.Actors)
	if err != nil {
		return report{}, err
	}

	progress("(d) nexus POST %s, %s with %d connections", loginPath, b.opts.Duration, b.opts.LoginConnections)
	rep.Login, err = b.measureLogin(ctx, nexusPath)
	if err != nil {
		return report{}, err
	}
	return rep, nil
}

// buildNexus builds cmd/nexus of the module in the working directory into
// the temporary directory and returns the binary's path.
func (b *benchmark) buildNexus(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the module: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("find the module: run nexusbench inside the nexus module, such as with 'go run ./cmd/nexusbench run' at its root")
	}

	binary := filepath.Join(b.workDir, "nexus")
	build := exec.CommandContext(ctx, "go", "build", "-o", binary, "./cmd/nexus")
	build.Dir = filepath.Dir(gomod)
	build.Stdout = os.Stderr
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build ./cmd/nexus in %s: %w", build.Dir, err)
	}
	return binary, nil
}

// measurement is the result of loading one server.
type measurement struct {
	Load loadResult
	// ServerCPU and LoadCPU are the user and system CPU time of the server
	// and of the load generator over their whole lives.
	ServerCPU, LoadCPU time.Duration
}

// ServerMicrosPerRequest returns the server's CPU time per request sent, in
// microseconds. The server's start and stop count too, which adds well
// under one percent at the default duration.
func (m measurement) ServerMicrosPerRequest() float64 {
	return microsPerRequest(m.ServerCPU, m.Load.TotalRequests)
}

// LoadMicrosPerRequest returns the load generator's CPU time per request
// sent, in microseconds.
func (m measurement) LoadMicrosPerRequest() float64 {
	return microsPerRequest(m.LoadCPU, m.Load.TotalRequests)
}

func microsPerRequest(cpu time.Duration, requests int) float64 {
	if requests == 0 {
		return 0
	}
	return float64(cpu.Microseconds()) / float64(requests)
}

// measureBare starts the bare server as a child process, loads it and stops it.
func (b *benchmark) measureBare(ctx context.Context) (measurement, error) {
	listen, err := freeLoopbackAddress()
	if err != nil {
		return measurement{}, err
	}
	server, err := b.children.start(ctx, "bare server", b.self, []string{"bare", "-listen", listen}, nil, os.Stderr, os.Stderr)
	if err != nil {
		return measurement{}, err
	}
	base := "http://" + listen
	if err := waitReady(ctx, server, base+"/"); err != nil {
		return measurement{}, err
	}

	result, err := b.load(ctx, b.loadOptions(fasthttp.MethodGet, base+entitlementsPath, nil, "", b.opts.Connections))
	if err != nil {
		return measurement{}, err
	}
	if err := server.stop(); err != nil {
		return measurement{}, fmt.Errorf("stop bare server: %w", err)
	}
	result.ServerCPU = server.cpuTime()
	return result, nil
}

// measureNexus prepares a data directory, starts nexus serve on it, checks
// that the token is accepted, loads GET /v1/entitlements and stops the
// server with SIGTERM. It also returns the number of lines of the server's
// log that name the path, which are the access log lines of the load.
func (b *benchmark) measureNexus(ctx context.Context, nexusPath string) (measurement, int, error) {
	setup, err := prepareServer(ctx, b.workDir)
	if err != nil {
		return measurement{}, 0, err
	}
	server, logFile, err := b.startNexus(ctx, nexusPath, setup)
	if err != nil {
		return measurement{}, 0, err
	}
	defer logFile.Close()

	base := "http://" + setup.Listen
	authorization := header{Name: "Authorization", Value: "Bearer " + setup.Token}
	opts := b.loadOptions(fasthttp.MethodGet, base+entitlementsPath, []header{authorization}, "", b.opts.Connections)
	if err := probe(opts); err != nil {
		return measurement{}, 0, err
	}

	result, err := b.load(ctx, opts)
	if err != nil {
		return measurement{}, 0, err
	}
	if err := server.stop(); err != nil {
		return measurement{}, 0, fmt.Errorf("stop nexus server (log: %s): %w", setup.LogPath, err)
	}
	result.ServerCPU = server.cpuTime()
	lines, err := countLogLines(setup.LogPath, entitlementsPath)
	if err != nil {
		return measurement{}, 0, err
	}
	return result, lines, nil
}

// startNexus starts nexus serve on the config of setup with its log in
// setup.LogPath and waits until GET /ready returns 200. The caller stops
// the server and then closes the log file.
func (b *benchmark) startNexus(ctx context.Context, nexusPath string, setup serverSetup) (*child, *os.File, error) {
	logFile, err := os.Create(setup.LogPath)
	if err != nil {
		return nil, nil, fmt.Errorf("create server log: %w", err)
	}

	args := []string{"serve", "-c", setup.ConfigPath}
	server, err := b.children.start(ctx, "nexus server", nexusPath, args, childEnv(), logFile, logFile)
	if err != nil {
		logFile.Close()
		return nil, nil, err
	}
	if err := waitReady(ctx, server, "http://"+setup.Listen+"/ready"); err != nil {
		// The server has its own copy of the file descriptor, and the
		// deferred stopAll of runBenchmark stops it.
		logFile.Close()
		return nil, nil, fmt.Errorf("%w (server log: %s)", err, setup.LogPath)
	}
	return server, logFile, nil
}

// loadOptions returns the load of one measurement: method on url with
// headers and body, on the given number of connections, for the run's
// duration after its warmup.
func (b *benchmark) loadOptions(method, url string, headers []header, body string, connections int) loadOptions {
	return loadOptions{
		Method: method, URL: url, Headers: headers, Body: body,
		Duration: b.opts.Duration, Warmup: b.opts.Warmup, Connections: connections,
	}
}

// load runs the load command as a child process and reads its result.
// ServerCPU of the measurement is left for the caller to fill in.
func (b *benchmark) load(ctx context.Context, opts loadOptions) (measurement, error) {
	var stdout bytes.Buffer
	generator, err := b.children.start(ctx, "load generator", b.self, opts.args(), nil, &stdout, os.Stderr)
	if err != nil {
		return measurement{}, err
	}
	if err := generator.wait(); err != nil {
		return measurement{}, err
	}

	var result loadResult
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &result); err != nil {
		return measurement{}, fmt.Errorf("read load generator result %q: %w", stdout.String(), err)
	}
	return measurement{Load: result, LoadCPU: generator.cpuTime()}, nil
}

// waitReady polls url until it returns 200, the server exits, ctx is
// cancelled or readyTimeout passes.
func waitReady(ctx context.Context, server *child, url string) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		status, _, err := fasthttp.GetTimeout(nil, url, time.Second)
		if err == nil && status == fasthttp.StatusOK {
			return nil
		}
		if server.exited() {
			return fmt.Errorf("%s exited before it was ready: %w", server.name, server.wait())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready at %s after %s: status %d, error %v", server.name, url, readyTimeout, status, err)
		}

		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", server.name, ctx.Err())
		case <-time.After(readyPollInterval):
		}
	}
}

// probe sends the request of opts once and fails unless it returns 200, so
// a rejected token or password stops the benchmark before the load starts.
func probe(opts loadOptions) error {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	opts.prepareRequest(req)

	if err := fasthttp.DoTimeout(req, resp, requestTimeout); err != nil {
		return fmt.Errorf("probe %s %s: %w", opts.Method, opts.URL, err)
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		return fmt.Errorf("probe %s %s: %s", opts.Method, opts.URL, describeFailure(nil, resp))
	}
	return nil
}

// countLogLines returns the number of lines of the file at path that contain text.
func countLogLines(path, text string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read server log: %w", err)
	}
	count := 0
	for line := range bytes.Lines(data) {
		if bytes.Contains(line, []byte(text)) {
			count++
		}
	}
	return count, nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "nexusbench: "+format+"\n", args...)
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
