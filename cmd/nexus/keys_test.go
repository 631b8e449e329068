package main_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// jwksKeyIDs fetches /.well-known/jwks.json from p and returns its kids in order.
func jwksKeyIDs(t *testing.T, p *process) []string {
	t.Helper()
	status, body := p.get(t, "/.well-known/jwks.json")
	if status != http.StatusOK {
		t.Fatalf("/.well-known/jwks.json = %d %s, expected 200", status, body)
	}
	var set struct {
		Keys []struct {
			KeyID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatalf("decode JWKS %s: %v", body, err)
	}
	kids := []string{}
	for _, key := range set.Keys {
		kids = append(kids, key.KeyID)
	}
	return kids
}

// rotateOutput matches the output of `nexus keys rotate`: the new kid and
// the time it starts signing.
var rotateOutput = regexp.MustCompile(`new signing key ([A-Za-z0-9_-]{22}) signs from (\S+)`)

func TestKeysRotate(t *testing.T) {
	dir := t.TempDir()
	first := startNexus(t, dir, nil)
	firstKIDs := jwksKeyIDs(t, first)
	if len(firstKIDs) != 1 {
		t.Fatalf("JWKS kids before the rotation = %v, expected 1", firstKIDs)
	}
	if code := first.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code = %d, expected 0", code)
	}

	rotatedAt := time.Now()
	output, code := runNexus(t, dir, "keys", "rotate")
	if code != 0 {
		t.Fatalf("keys rotate = %d %q, expected 0", code, output)
	}
	match := rotateOutput.FindStringSubmatch(output)
	if match == nil {
		t.Fatalf("keys rotate output %q does not name a new kid and its activation", output)
	}
	newKID := match[1]
	if newKID == firstKIDs[0] {
		t.Errorf("keys rotate printed the old kid %s", newKID)
	}
	activatesAt, err := time.Parse(time.RFC3339, match[2])
	if err != nil {
		t.Fatalf("parse activation time %q: %v", match[2], err)
	}
	// The default tokens.key_lead_time is 10m. The printed time has whole
	// seconds, and the command took less than a minute.
	earliest := rotatedAt.Add(10 * time.Minute).Truncate(time.Second)
	if activatesAt.Before(earliest) || activatesAt.After(earliest.Add(time.Minute)) {
		t.Errorf("new key signs from %s, expected 10m after %s", activatesAt, rotatedAt.UTC().Format(time.RFC3339))
	}

	second := startNexus(t, dir, nil)
	kids := jwksKeyIDs(t, second)
	if len(kids) != 2 {
		t.Errorf("JWKS kids after the rotation = %v, expected 2", kids)
	}
	if !slices.Contains(kids, newKID) {
		t.Errorf("JWKS kids %v lack the new key %s", kids, newKID)
	}
	if !slices.Contains(kids, firstKIDs[0]) {
		t.Errorf("JWKS kids %v lack the old key %s", kids, firstKIDs[0])
	}
	if len(second.logLines("created signing key")) != 0 {
		t.Error("serve created a signing key although the rotated keys were there")
	}
	if code := second.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit code = %d, expected 0", code)
	}
}

func TestKeysRotateInvalidLeadTime(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, filepath.Join(dir, "nexus.yaml"), "tokens:\n  key_lead_time: 25h\n")

	output, code := runNexus(t, dir, "keys", "rotate", "--config", filepath.Join(dir, "nexus.yaml"))

	if code != 1 {
		t.Errorf("exit code = %d, expected 1 (%s)", code, output)
	}
	if !strings.Contains(output, "tokens.key_lead_time") {
		t.Errorf("output %q does not name tokens.key_lead_time", output)
	}
	if strings.Contains(output, "new signing key") {
		t.Errorf("output %q reports a new key although the config is invalid", output)
	}
}
