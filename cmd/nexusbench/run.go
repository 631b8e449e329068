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
	"strconv"
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
	Actors      int
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
	if failed := report.Bare.Load.Errors + report.Nexus.Load.Errors; failed > 0 {
		first := firstNonEmpty(report.Bare.Load.FirstError, report.Nexus.Load.FirstError)
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
	case o.Actors < 1:
		return fmt.Errorf("-actors must be at least 1, got %d", o.Actors)
	}
	return nil
}

// run runs the three measurements in order.
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

	result, err := b.load(ctx, base+entitlementsPath, nil)
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
	logFile, err := os.Create(setup.LogPath)
	if err != nil {
		return measurement{}, 0, fmt.Errorf("create server log: %w", err)
	}
	defer logFile.Close()

	args := []string{"serve", "-c", setup.ConfigPath}
	server, err := b.children.start(ctx, "nexus server", nexusPath, args, childEnv(), logFile, logFile)
	if err != nil {
		return measurement{}, 0, err
	}
	base := "http://" + setup.Listen
	if err := waitReady(ctx, server, base+"/ready"); err != nil {
		return measurement{}, 0, fmt.Errorf("%w (server log: %s)", err, setup.LogPath)
	}
	authorization := "Authorization: Bearer " + setup.Token
	if err := probe(base+entitlementsPath, setup.Token); err != nil {
		return measurement{}, 0, err
	}

	result, err := b.load(ctx, base+entitlementsPath, []string{authorization})
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

// load runs the load command as a child process and reads its result.
// ServerCPU of the measurement is left for the caller to fill in.
func (b *benchmark) load(ctx context.Context, url string, headers []string) (measurement, error) {
	args := []string{
		"load", "-url", url,
		"-duration", b.opts.Duration.String(),
		"-warmup", b.opts.Warmup.String(),
		"-connections", strconv.Itoa(b.opts.Connections),
	}
	for _, h := range headers {
		args = append(args, "-header", h)
	}

	var stdout bytes.Buffer
	generator, err := b.children.start(ctx, "load generator", b.self, args, nil, &stdout, os.Stderr)
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

// probe sends one authenticated GET to url and fails unless it returns 200,
// so a rejected token stops the benchmark before the load starts.
func probe(url, token string) error {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url)
	req.Header.Set("Authorization", "Bearer "+token)

	if err := fasthttp.DoTimeout(req, resp, requestTimeout); err != nil {
		return fmt.Errorf("probe GET %s: %w", url, err)
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		return fmt.Errorf("probe GET %s: %s", url, describeFailure(nil, resp))
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
