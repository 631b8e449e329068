package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/modules/auth/password"
	"github.com/nexus-suite/nexus/storage"
)

func TestPrepareServer(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	setup, err := prepareServer(ctx, dir)
	if err != nil {
		t.Fatalf("prepareServer: %v", err)
	}

	if err := checkLoopbackAddress(setup.Listen); err != nil {
		t.Errorf("Listen: %v", err)
	}
	if parts := strings.Split(setup.Token, "."); len(parts) != 3 {
		t.Errorf("token has %d dot-separated parts, want 3", len(parts))
	}
	cfg, err := configs.Load(setup.ConfigPath, nil)
	if err != nil {
		t.Fatalf("load written config: %v", err)
	}
	if cfg.Server.Listen != setup.Listen {
		t.Errorf("server.listen = %q, want %q", cfg.Server.Listen, setup.Listen)
	}
	if !cfg.Log.Access {
		t.Error("log.access is off, want the default access log on")
	}
	if cfg.Log.Level != "info" {
		t.Errorf("log.level = %q, want the default info", cfg.Log.Level)
	}
	limits := cfg.Tiers.Catalog[cfg.Tiers.Default].Limits
	if limits.Burst != benchRequestLimit {
		t.Errorf("default tier burst = %d, want %d", limits.Burst, benchRequestLimit)
	}
	if cfg.RateLimit.IPPerMinute != benchRequestLimit {
		t.Errorf("rate_limit.ip_per_minute = %d, want %d", cfg.RateLimit.IPPerMinute, benchRequestLimit)
	}
	if cfg.RateLimit.IPBurst != benchRequestLimit {
		t.Errorf("rate_limit.ip_burst = %d, want %d", cfg.RateLimit.IPBurst, benchRequestLimit)
	}
	if !cfg.ModuleEnabled("auth") {
		t.Error("auth module is disabled, want it enabled")
	}
	auth := cfg.ModuleSection("auth")
	if got := auth["login_max_failures"]; got != benchLoginMaxFailures {
		t.Errorf("modules.auth.login_max_failures = %v, want %d", got, benchLoginMaxFailures)
	}
	argon2, _ := auth["argon2"].(map[string]any)
	params := password.DefaultParams()
	for key, want := range map[string]any{
		"memory_kib": params.MemoryKiB, "iterations": params.Iterations, "parallelism": params.Parallelism,
	} {
		if got := argon2[key]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("modules.auth.argon2.%s = %v, want the default %v", key, got, want)
		}
	}

	db, err := storage.Open(ctx, cfg.Database, cfg.DataDir)
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	defer db.Close()
	session, err := storage.NewSessions(db).Lookup(ctx, benchSessionID)
	if err != nil {
		t.Fatalf("look up benchmark session: %v", err)
	}
	if session.UserID != benchUserID {
		t.Errorf("session user = %q, want %q", session.UserID, benchUserID)
	}
	if until := time.Until(session.ExpiresAt); until < 50*time.Minute {
		t.Errorf("session expires in %s, want about %s", until, benchSessionTTL)
	}

	var hash string
	var verifiedAt sql.NullInt64
	row := db.QueryRowContext(ctx, `SELECT password_hash, email_verified_at FROM users WHERE email = $1`, benchUserEmail)
	if err := row.Scan(&hash, &verifiedAt); err != nil {
		t.Fatalf("read benchmark user: %v", err)
	}
	if ok, err := password.Verify(benchPassword, hash); err != nil || !ok {
		t.Errorf("Verify(benchPassword, stored hash) = %v, %v, want true", ok, err)
	}
	if password.NeedsRehash(hash, password.DefaultParams()) {
		t.Errorf("stored hash %.40s… does not use the default parameters", hash)
	}
	if !verifiedAt.Valid {
		t.Error("email_verified_at is NULL, want the email verified")
	}
}
