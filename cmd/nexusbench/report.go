package main

import (
	"fmt"
	"io"
	goruntime "runtime"
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
	fmt.Fprintf(w, "parameters   duration %s, warmup %s, connections %d, actors %d\n",
		r.Options.Duration, r.Options.Warmup, r.Options.Connections, r.Options.Actors)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-32s %11s %8s %8s %7s %7s %11s %11s\n",
		"", "requests/s", "p50 ms", "p99 ms", "errors", "body B", "server CPU", "load CPU")
	printRow(w, "(a) bare fasthttp", r.Bare)
	printRow(w, "(b) nexus GET "+entitlementsPath, r.Nexus)
	fmt.Fprintf(w, "%-32s %11.2f   goal >= %.2f, %s\n", "ratio b/a of requests/s", r.Ratio(), ratioGoal, verdict)
	fmt.Fprintf(w, "%-32s %11d   lines for %s in the server log\n", "access log", r.AccessLogLines, entitlementsPath)
	fmt.Fprintf(w, "%-32s %11.1f   MiB for %d actors, %.0f bytes per actor\n",
		"(c) idle user actors", float64(r.Actors.HeapBytes)/(1<<20), r.Actors.Actors, r.Actors.BytesPerActor())
}

func printRow(w io.Writer, name string, m measurement) {
	fmt.Fprintf(w, "%-32s %11.0f %8.3f %8.3f %7d %7d %8.1f us %8.1f us\n",
		name, m.Load.RequestsPerSecond, m.Load.P50Millis, m.Load.P99Millis, m.Load.Errors, m.Load.BodyBytes,
		m.ServerMicrosPerRequest(), m.LoadMicrosPerRequest())
}
