package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nexus-suite/nexus/modules/auth/password"
	"github.com/valyala/fasthttp"
)

// loginPath is the sign-in route that part (d) measures.
const loginPath = "/v1/auth/login"

// defaultLoginConnections is the load generator's number of connections in
// part (d). Each login costs one argon2id verification, about 25 ms of one
// core and 19 MiB of memory on the reference machine. So two logins in
// flight keep its 2 cores busy, and more add only queueing latency and
// memory. docs/benchmarks.md has the runs behind this choice.
const defaultLoginConnections = 2

// Measurement of one argon2id hash in the benchmark process: hashes run
// one after another for at least minHashTime and minHashCount.
const (
	minHashTime  = time.Second
	minHashCount = 5
)

// loginMeasurement is the result of part (d).
type loginMeasurement struct {
	measurement
	// ReadyRSSBytes and PeakRSSBytes are the server's peak resident set
	// size (VmHWM in /proc/PID/status) once it was ready, before any login,
	// and just before it stopped. Each is 0 where /proc is missing.
	ReadyRSSBytes, PeakRSSBytes int64
	// Hash is the mean cost of one password.Hash with the default
	// parameters in the benchmark process, while no server runs.
	Hash hashCost
	// CPUs is the number of CPUs that the ceiling assumes busy with hashing.
	CPUs int
}

// hashCost is the mean wall time and CPU time of one argon2id hash. CPU is
// 0 where the operating system does not report it.
type hashCost struct {
	Wall, CPU time.Duration
}

// PerCore returns the CPU time of one hash, or its wall time without it.
// On a shared machine the wall time also counts the time that other
// processes held the core, so the CPU time is the better measure.
func (h hashCost) PerCore() time.Duration {
	if h.CPU > 0 {
		return h.CPU
	}
	return h.Wall
}

// Ceiling returns the logins per second that CPUs cores could verify if
// they did nothing but hash, or 0 without a hash cost.
func (m loginMeasurement) Ceiling() float64 {
	perCore := m.Hash.PerCore()
	if perCore <= 0 {
		return 0
	}
	return float64(m.CPUs) / perCore.Seconds()
}

// ServerMillisPerLogin returns the server's CPU time per login sent, in
// milliseconds.
func (m loginMeasurement) ServerMillisPerLogin() float64 {
	return m.ServerMicrosPerRequest() / 1000
}

// measureLogin prepares a second data directory with its own server, in
// the subdirectory login of the temporary directory, checks that the
// benchmark user can sign in, loads POST /v1/auth/login, reads the
// server's peak memory and stops it with SIGTERM. Then it times one
// argon2id hash in this process.
func (b *benchmark) measureLogin(ctx context.Context, nexusPath string) (loginMeasurement, error) {
	dir := filepath.Join(b.workDir, "login")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return loginMeasurement{}, fmt.Errorf("create directory for the login server: %w", err)
	}
	setup, err := prepareServer(ctx, dir)
	if err != nil {
		return loginMeasurement{}, err
	}
	server, logFile, err := b.startNexus(ctx, nexusPath, setup)
	if err != nil {
		return loginMeasurement{}, err
	}
	defer logFile.Close()
	ready, err := peakRSS(server.cmd.Process.Pid)
	if err != nil {
		progress("peak RSS of the login server unknown: %v", err)
	}

	body, err := loginBody(benchUserEmail, benchPassword)
	if err != nil {
		return loginMeasurement{}, err
	}
	contentType := header{Name: "Content-Type", Value: "application/json"}
	opts := b.loadOptions(fasthttp.MethodPost, "http://"+setup.Listen+loginPath, []header{contentType}, body, b.opts.LoginConnections)
	if err := probe(opts); err != nil {
		return loginMeasurement{}, fmt.Errorf("%w (server log: %s)", err, setup.LogPath)
	}

	result, err := b.load(ctx, opts)
	if err != nil {
		return loginMeasurement{}, err
	}
	peak, _ := peakRSS(server.cmd.Process.Pid)
	if err := server.stop(); err != nil {
		return loginMeasurement{}, fmt.Errorf("stop nexus server (log: %s): %w", setup.LogPath, err)
	}
	result.ServerCPU = server.cpuTime()

	progress("(d) argon2id hash in this process")
	hash, err := measureHash(ctx)
	if err != nil {
		return loginMeasurement{}, err
	}
	return loginMeasurement{
		measurement: result, ReadyRSSBytes: ready, PeakRSSBytes: peak,
		Hash: hash, CPUs: currentMachine().CPUs,
	}, nil
}

// loginBody returns the JSON body of POST /v1/auth/login.
func loginBody(email, plain string) (string, error) {
	body, err := json.Marshal(struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}{email, plain})
	if err != nil {
		return "", fmt.Errorf("encode login body: %w", err)
	}
	return string(body), nil
}

// peakRSS returns the peak resident set size of the running process pid
// in bytes, from the VmHWM line of /proc/PID/status (Linux only).
func peakRSS(pid int) (int64, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, fmt.Errorf("read status of process %d: %w", pid, err)
	}
	return parseVmHWM(data)
}

// parseVmHWM reads the line "VmHWM:   123456 kB" of a /proc/PID/status
// file and returns its value in bytes.
func parseVmHWM(status []byte) (int64, error) {
	scanner := bufio.NewScanner(bytes.NewReader(status))
	for scanner.Scan() {
		value, found := strings.CutPrefix(scanner.Text(), "VmHWM:")
		if !found {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("invalid VmHWM line %q, expected a number of kB", scanner.Text())
		}
		kib, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid VmHWM line %q: %w", scanner.Text(), err)
		}
		return kib * 1024, nil
	}
	return 0, fmt.Errorf("no VmHWM line in process status")
}

// measureHash returns the mean cost of password.Hash with the default
// parameters, hashing one password after another on one goroutine. The CPU
// time is the whole process's, so it includes the garbage collection of
// the hashes' memory.
func measureHash(ctx context.Context) (hashCost, error) {
	params := password.DefaultParams()
	cpuBefore, cpuKnown := processCPUTime()
	start := time.Now()
	count := 0
	for count < minHashCount || time.Since(start) < minHashTime {
		if err := ctx.Err(); err != nil {
			return hashCost{}, fmt.Errorf("time argon2id hash: %w", err)
		}
		if _, err := password.Hash(benchPassword, params); err != nil {
			return hashCost{}, fmt.Errorf("time argon2id hash: %w", err)
		}
		count++
	}

	cost := hashCost{Wall: time.Since(start) / time.Duration(count)}
	if cpuAfter, ok := processCPUTime(); ok && cpuKnown {
		cost.CPU = (cpuAfter - cpuBefore) / time.Duration(count)
	}
	return cost, nil
}
