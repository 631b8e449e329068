package main

import (
	"context"
	"encoding/json"
	"os"
	goruntime "runtime"
	"testing"
	"time"
)

func TestParseVmHWM(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    int64
		wantErr bool
	}{
		{"Linux", "Name:\tnexus\nVmPeak:\t 1300000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n", 204800 * 1024, false},
		{"Missing", "Name:\tnexus\nVmRSS:\t  102400 kB\n", 0, true},
		{"NoUnit", "VmHWM:\t  204800\n", 0, true},
		{"NotANumber", "VmHWM:\t  lots kB\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseVmHWM([]byte(tt.status))
			if tt.wantErr {
				if err == nil {
					t.Errorf("parseVmHWM = %d, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseVmHWM: %v", err)
			}
			if got != tt.want {
				t.Errorf("parseVmHWM = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestPeakRSSOwnProcess(t *testing.T) {
	if goruntime.GOOS != "linux" {
		t.Skip("peakRSS reads /proc, which only Linux has")
	}

	got, err := peakRSS(os.Getpid())
	if err != nil {
		t.Fatalf("peakRSS: %v", err)
	}

	if got < 1<<20 {
		t.Errorf("peakRSS = %d bytes, want at least 1 MiB for a Go test binary", got)
	}
}

func TestLoginBody(t *testing.T) {
	body, err := loginBody("bench@example.com", `pass "word"`)
	if err != nil {
		t.Fatalf("loginBody: %v", err)
	}

	var decoded map[string]string
	if err := json.Unmarshal([]byte(body), &decoded); err != nil {
		t.Fatalf("body %s is not JSON: %v", body, err)
	}
	if decoded["email"] != "bench@example.com" {
		t.Errorf("email = %q, want bench@example.com", decoded["email"])
	}
	if decoded["password"] != `pass "word"` {
		t.Errorf("password = %q, want the password as given", decoded["password"])
	}
	if len(decoded) != 2 {
		t.Errorf("body has %d fields, want email and password only", len(decoded))
	}
}

func TestLoginCeiling(t *testing.T) {
	tests := []struct {
		name string
		cpus int
		hash hashCost
		want float64
	}{
		{"TwoCores", 2, hashCost{Wall: 40 * time.Millisecond, CPU: 25 * time.Millisecond}, 80},
		{"OneCore", 1, hashCost{Wall: 20 * time.Millisecond, CPU: 20 * time.Millisecond}, 50},
		{"WallOnly", 2, hashCost{Wall: 25 * time.Millisecond}, 80},
		{"NoHashCost", 2, hashCost{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := loginMeasurement{CPUs: tt.cpus, Hash: tt.hash}
			if got := m.Ceiling(); got != tt.want {
				t.Errorf("Ceiling() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMeasureHash(t *testing.T) {
	cost, err := measureHash(context.Background())
	if err != nil {
		t.Fatalf("measureHash: %v", err)
	}

	if cost.Wall <= 0 {
		t.Errorf("Wall = %s, want positive", cost.Wall)
	}
	if _, ok := processCPUTime(); ok && cost.CPU <= 0 {
		t.Errorf("CPU = %s, want positive where the process CPU time is known", cost.CPU)
	}
}

func TestServerMillisPerLogin(t *testing.T) {
	m := loginMeasurement{measurement: measurement{
		Load:      loadResult{TotalRequests: 400},
		ServerCPU: 10 * time.Second,
	}}

	if got := m.ServerMillisPerLogin(); got != 25 {
		t.Errorf("ServerMillisPerLogin() = %v, want 25", got)
	}
}
