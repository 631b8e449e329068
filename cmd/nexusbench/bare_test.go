package main

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/runtime"
)

// The bare body must stay what nexus returns for the benchmark user, or
// the baseline no longer compares like with like.
func TestBareBodyMatchesEntitlements(t *testing.T) {
	cfg, err := configs.Load("", nil)
	if err != nil {
		t.Fatalf("load default config: %v", err)
	}
	tier := cfg.Tiers.Catalog[cfg.Tiers.Default]
	tier.Limits.RequestsPerMinute = benchRequestLimit
	tier.Limits.Burst = benchRequestLimit
	cfg.Tiers.Catalog[cfg.Tiers.Default] = tier
	entitlements, err := runtime.TierEntitlements(cfg.Tiers, cfg.Tiers.Default, runtime.SourceDefault)
	if err != nil {
		t.Fatalf("entitlements of the default tier: %v", err)
	}

	want, err := json.Marshal(map[string]any{"data": entitlements})
	if err != nil {
		t.Fatalf("encode entitlements: %v", err)
	}

	if bareBody != string(want) {
		t.Errorf("bareBody =\n%s\nwant\n%s", bareBody, want)
	}
}

func TestCheckLoopbackAddress(t *testing.T) {
	tests := []struct {
		address string
		valid   bool
	}{
		{"127.0.0.1:8080", true},
		{"127.0.0.2:8080", true},
		{"localhost:8080", true},
		{"[::1]:8080", true},
		{"0.0.0.0:8080", false},
		{"[::]:8080", false},
		{"10.0.0.1:8080", false},
		{"192.168.1.10:8080", false},
		{"example.com:8080", false},
		{"127.0.0.1", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.address, func(t *testing.T) {
			err := checkLoopbackAddress(tt.address)
			if tt.valid && err != nil {
				t.Errorf("checkLoopbackAddress(%q) = %v, want nil", tt.address, err)
			}
			if !tt.valid && err == nil {
				t.Errorf("checkLoopbackAddress(%q) = nil, want an error", tt.address)
			}
		})
	}
}

func TestRunCommandRejects(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"NoCommand", nil},
		{"UnknownCommand", []string{"serve"}},
		{"BareWithoutListen", []string{"bare"}},
		{"BareOnAnyAddress", []string{"bare", "-listen", "0.0.0.0:9000"}},
		{"LoadWithoutURL", []string{"load"}},
		{"LoadOtherHost", []string{"load", "-url", "http://10.1.2.3:80/"}},
		{"LoadBadHeader", []string{"load", "-url", "http://127.0.0.1:80/", "-header", "nocolon"}},
		{"RunNoConnections", []string{"run", "-connections", "0"}},
		{"RunNoActors", []string{"run", "-actors", "0"}},
		{"RunExtraArgument", []string{"run", "now"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := runCommand(tt.args)
			if !errors.Is(err, errUsage) {
				t.Errorf("runCommand(%q) = %v, want a usage error", tt.args, err)
			}
		})
	}
}
