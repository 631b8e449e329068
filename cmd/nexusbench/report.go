package main

import (
	"fmt"
	"io"
	goruntime "runtime"

	"github.com/nexus-suite/nexus/modules/auth/password"
)

// ratioGoal is the lowest acceptable ratio of the nexus request rate to the
// bare server's in the same run.
const ratioGoal = 0.5

// machine describes where the benchmark ran.
type machine struct {
	OS, Arch   string
	CPUs       int
	GOMAXPROCS int
	GoVersion  string
}

func currentMachine() machine {
	return machine{
		OS:         goruntime.GOOS,
		Arch:       goruntime.GOARCH,
		CPUs:       goruntime.NumCPU(),
		GOMAXPROCS: goruntime.GOMAXPROCS(0),
		GoVersion:  goruntime.Version(),
	}
}

// report is the result of one benchmark run.
type report struct {
	Options runOptions
	Machine machine
	Bare    measurement
	Nexus   measurement
	// AccessLogLines counts the server log lines of GET /v1/entitlements.
	AccessLogLines int
	Actors         actorMemory
	Login          loginMeasurement
}

// Ratio returns the nexus request rate divided by the bare server's.
func (r report) Ratio() float64 {
	if r.Bare.Load.RequestsPerSecond == 0 {
		return 0
	}
	return r.Nexus.Load.RequestsPerSecond / r.Bare.Load.RequestsPerSecond
}

// print writes the report as a table. Its lines and columns are the same
// in every run, so documentation can quote it. The CPU columns are the CPU
// time of the server and of the load generator per request sent.
func (r report) print(w io.Writer) {
	verdict := "below the goal"
	if r.Ratio() >= ratioGoal {
		verdict = "meets the goal"
	}

	fmt.Fprintf(w, "nexusbench: GET %s on nexus against a bare fasthttp server\n", entitlementsPath)
	fmt.Fprintf(w, "machine      %s/%s, %d CPUs, GOMAXPROCS %d, %s\n",
		r.Machine.OS, r.Machine.Arch, r.Machine.CPUs, r.Machine.GOMAXPROCS, r.Machine.GoVersion)
	fmt.Fprintf(w, "parameters   duration %s, warmup %s, connections %d, login connections %d, actors %d\n",
		r.Options.Duration, r.Options.Warmup, r.Options.Connections, r.Options.LoginConnections, r.Options.Actors)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-32s %11s %8s %8s %7s %7s %11s %11s\n",
		"", "requests/s", "p50 ms", "p99 ms", "errors", "body B", "server CPU", "load CPU")
	printRow(w, "(a) bare fasthttp", r.Bare)
	printRow(w, "(b) nexus GET "+entitlementsPath, r.Nexus)
	fmt.Fprintf(w, "%-32s %11.2f   goal >= %.2f, %s\n", "ratio b/a of requests/s", r.Ratio(), ratioGoal, verdict)
	fmt.Fprintf(w, "%-32s %11d   lines for %s in the server log\n", "access log", r.AccessLogLines, entitlementsPath)
	fmt.Fprintf(w, "%-32s %11.1f   MiB for %d actors, %.0f bytes per actor\n",
		"(c) idle user actors", float64(r.Actors.HeapBytes)/(1<<20), r.Actors.Actors, r.Actors.BytesPerActor())
	r.printLogin(w)
}

// printLogin writes the table of part (d). Its server CPU is per login
// sent, and its ceiling is the rate at which all CPUs would do nothing but
// hash passwords.
func (r report) printLogin(w io.Writer) {
	login := r.Login
	params := password.DefaultParams()
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-32s %11s %8s %8s %7s %11s %10s\n",
		"", "logins/s", "p50 ms", "p99 ms", "errors", "server CPU", "peak RSS")
	fmt.Fprintf(w, "%-32s %11.1f %8.1f %8.1f %7d %8.1f ms %10s\n",
		"(d) nexus POST "+loginPath, login.Load.RequestsPerSecond, login.Load.P50Millis, login.Load.P99Millis,
		login.Load.Errors, login.ServerMillisPerLogin(), formatMiB(login.PeakRSSBytes))

	share := 0.0
	if ceiling := login.Ceiling(); ceiling > 0 {
		share = login.Load.RequestsPerSecond / ceiling
	}
	fmt.Fprintf(w, "%-32s %11.1f   logins/s: %d CPUs / %.1f ms CPU per hash in this process (%.1f ms wall); (d) at %.2f of it\n",
		"ceiling of argon2id alone", login.Ceiling(), login.CPUs, millis(login.Hash.PerCore()), millis(login.Hash.Wall), share)
	fmt.Fprintf(w, "%-32s m=%d KiB, t=%d, p=%d, the defaults; server peak RSS %s when ready\n", "argon2id parameters",
		params.MemoryKiB, params.Iterations, params.Parallelism, formatMiB(login.ReadyRSSBytes))
}

// formatMiB formats a size in bytes as MiB, and 0 as unknown.
func formatMiB(bytes int64) string {
	if bytes <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", float64(bytes)/(1<<20))
}

func printRow(w io.Writer, name string, m measurement) {
	fmt.Fprintf(w, "%-32s %11.0f %8.3f %8.3f %7d %7d %8.1f us %8.1f us\n",
		name, m.Load.RequestsPerSecond, m.Load.P50Millis, m.Load.P99Millis, m.Load.Errors, m.Load.BodyBytes,
		m.ServerMicrosPerRequest(), m.LoadMicrosPerRequest())
}
