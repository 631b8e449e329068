package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/configs"
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
}
