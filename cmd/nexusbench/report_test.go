package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestReportPrint(t *testing.T) {
	rep := report{
		Options: runOptions{Duration: 10 * time.Second, Warmup: 2 * time.Second, Connections: 32, LoginConnections: 4, Actors: 100_000},
		Machine: machine{OS: "linux", Arch: "amd64", CPUs: 2, GOMAXPROCS: 2, GoVersion: "go1.26.8"},
		Bare: measurement{
			Load:      loadResult{TotalRequests: 1_000_000, RequestsPerSecond: 80_000, P50Millis: 0.3, P99Millis: 2.5, BodyBytes: 200},
			ServerCPU: 5 * time.Second, LoadCPU: 9 * time.Second,
		},
		Nexus: measurement{
			Load:      loadResult{TotalRequests: 500_000, RequestsPerSecond: 40_000, P50Millis: 0.7, P99Millis: 4.2, BodyBytes: 200},
			ServerCPU: 10 * time.Second, LoadCPU: 5 * time.Second,
		},
		AccessLogLines: 480_000,
		Actors:         actorMemory{Actors: 100_000, HeapBytes: 200 << 20},
		Login: loginMeasurement{
			measurement: measurement{
				Load:      loadResult{TotalRequests: 800, RequestsPerSecond: 60, P50Millis: 66.4, P99Millis: 120.4},
				ServerCPU: 20 * time.Second,
			},
			ReadyRSSBytes: 30 << 20, PeakRSSBytes: 150 << 20,
			Hash: hashCost{Wall: 30 * time.Millisecond, CPU: 25 * time.Millisecond}, CPUs: 2,
		},
	}
	var out bytes.Buffer

	rep.print(&out)

	text := out.String()
	if lines := strings.Count(text, "\n"); lines != 15 {
		t.Errorf("report has %d lines, want 15:\n%s", lines, text)
	}
	for _, want := range []string{
		"2 CPUs, GOMAXPROCS 2, go1.26.8",
		"duration 10s, warmup 2s, connections 32, login connections 4, actors 100000",
		"0.50   goal >= 0.50, meets the goal",
		"     5.0 us      9.0 us",
		"    20.0 us     10.0 us",
		"200.0   MiB for 100000 actors, 2097 bytes per actor",
		"60.0     66.4    120.4       0     25.0 ms  150.0 MiB",
		"80.0   logins/s: 2 CPUs / 25.0 ms CPU per hash in this process (30.0 ms wall); (d) at 0.75 of it",
		"m=19456 KiB, t=2, p=1, the defaults; server peak RSS 30.0 MiB when ready",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
}

func TestReportPrintUnknownRSS(t *testing.T) {
	rep := report{Login: loginMeasurement{CPUs: 2}}
	var out bytes.Buffer

	rep.print(&out)

	if got := strings.Count(out.String(), "n/a"); got != 2 {
		t.Errorf("report has %d n/a, want 2 for the unknown RSS figures:\n%s", got, out.String())
	}
}

func TestReportRatio(t *testing.T) {
	tests := []struct {
		name        string
		bare, nexus float64
		want        float64
	}{
		{"Half", 1000, 500, 0.5},
		{"NoBaseline", 0, 500, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := report{
				Bare:  measurement{Load: loadResult{RequestsPerSecond: tt.bare}},
				Nexus: measurement{Load: loadResult{RequestsPerSecond: tt.nexus}},
			}
			if got := rep.Ratio(); got != tt.want {
				t.Errorf("Ratio() = %v, want %v", got, tt.want)
			}
		})
	}
}
