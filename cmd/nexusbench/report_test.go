package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestReportPrint(t *testing.T) {
	rep := report{
		Options: runOptions{Duration: 10 * time.Second, Warmup: 2 * time.Second, Connections: 32, Actors: 100_000},
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
	}
	var out bytes.Buffer

	rep.print(&out)

	text := out.String()
	if lines := strings.Count(text, "\n"); lines != 10 {
		t.Errorf("report has %d lines, want 10:\n%s", lines, text)
	}
	for _, want := range []string{
		"2 CPUs, GOMAXPROCS 2, go1.26.8",
		"duration 10s, warmup 2s, connections 32, actors 100000",
		"0.50   goal >= 0.50, meets the goal",
		"     5.0 us      9.0 us",
		"    20.0 us     10.0 us",
		"200.0   MiB for 100000 actors, 2097 bytes per actor",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
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
