package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/nexus-suite/nexus/cmd/nexus/app"
	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/runtime/keyring"
	"github.com/nexus-suite/nexus/storage"
)

// The benchmark user and its session, valid for benchSessionTTL.
const (
	benchUserID     = "bench-user"
	benchUserEmail  = "bench-user@example.com"
	benchSessionID  = "bench-session"
	benchTokenID    = "bench-token"
	benchSessionTTL = time.Hour
	// benchRequestLimit is the core tier's requests_per_minute and burst in
	// the benchmark config, high enough that the rate limit never rejects.
	benchRequestLimit = 1_000_000_000
)

// benchConfig is the config file of the benchmark server. Everything it
// does not set keeps its default, the access log included, so the server
// runs as an operator runs it. Only the listener, the data directory and the
// default tier's request limit change.
const benchConfig = `# Written by nexusbench for one benchmark run.
server:
  listen: %s
data_dir: %s
tiers:
  catalog:
    core:
      limits:
        requests_per_minute: %d
        burst: %d
`

// serverSetup is a data directory and config file ready for nexus serve.
type serverSetup struct {
	ConfigPath string
	LogPath    string
	Listen     string
	// Token is a bearer token of the benchmark session. It is never printed.
	Token string
}

// prepareServer writes the config file into dir, creates the database and
// the signing keys in dir/data, inserts the benchmark user and its session,
// and signs an access token for them. Nothing stays open afterwards, so the
// server can open the same SQLite file.
func prepareServer(ctx context.Context, dir string) (serverSetup, error) {
	listen, err := freeLoopbackAddress()
	if err != nil {
		return serverSetup{}, err
	}
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return serverSetup{}, fmt.Errorf("create data directory: %w", err)
	}
	setup := serverSetup{
		ConfigPath: filepath.Join(dir, "nexus.yaml"),
		LogPath:    filepath.Join(dir, "server.log"),
		Listen:     listen,
	}
	text := fmt.Sprintf(benchConfig, listen, dataDir, benchRequestLimit, benchRequestLimit)
	if err := os.WriteFile(setup.ConfigPath, []byte(text), 0o600); err != nil {
		return serverSetup{}, fmt.Errorf("write config file: %w", err)
	}

	// The environment is left out here as in the server's, which gets no NEXUS_* variables.
	cfg, err := configs.Load(setup.ConfigPath, nil)
	if err != nil {
		return serverSetup{}, fmt.Errorf("load benchmark config: %w", err)
	}
	if got := cfg.Tiers.Catalog[cfg.Tiers.Default].Limits.RequestsPerMinute; got != benchRequestLimit {
		return serverSetup{}, fmt.Errorf("benchmark config: default tier allows %d requests per minute, expected %d", got, benchRequestLimit)
	}

	setup.Token, err = seedSession(ctx, cfg)
	if err != nil {
		return serverSetup{}, err
	}
	return setup, nil
}

// seedSession migrates the database of cfg, ensures its signing key,
// inserts the benchmark user and session, and returns a signed access token.
func seedSession(ctx context.Context, cfg *configs.Config) (string, error) {
	db, err := storage.Open(ctx, cfg.Database, cfg.DataDir)
	if err != nil {
		return "", fmt.Errorf("open database: %w", err)
	}
	defer db.Close()
	if err := storage.Migrate(ctx, db, app.MigrationSets()...); err != nil {
		return "", fmt.Errorf("migrate database: %w", err)
	}

	masterKey, err := keyring.LoadMasterKey(cfg.Security, cfg.DataDir)
	if err != nil {
		return "", fmt.Errorf("load master key: %w", err)
	}
	keys := keyring.New(db, masterKey, clock.System{}, slog.New(slog.DiscardHandler))
	if err := keys.Ensure(ctx); err != nil {
		return "", fmt.Errorf("ensure signing key: %w", err)
	}

	now := time.Now()
	expires := now.Add(benchSessionTTL)
	sessions := storage.NewSessions(db)
	if err := sessions.InsertUser(ctx, benchUserID, benchUserEmail, now); err != nil {
		return "", err
	}
	err = sessions.Insert(ctx, storage.SessionRecord{
		ID: benchSessionID, UserID: benchUserID,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: expires,
		UserAgent: "nexusbench", IP: "127.0.0.1",
	})
	if err != nil {
		return "", err
	}

	token, err := keys.Sign(map[string]any{
		"iss": cfg.Tokens.Issuer,
		"aud": cfg.Tokens.Audience,
		"sub": benchUserID,
		"sid": benchSessionID,
		"jti": benchTokenID,
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": expires.Unix(),
	})
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return token, nil
}

// freeLoopbackAddress returns 127.0.0.1:PORT with a port that was free a
// moment ago. Another process may take the port before the server binds it,
// and then the server fails to start with an "address in use" error.
func freeLoopbackAddress() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port on 127.0.0.1: %w", err)
	}
	address := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("release port %s: %w", address, err)
	}
	return address, nil
}
