package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/nexus-suite/nexus/cmd/nexus/app"
	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/modules/auth/password"
	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/runtime/keyring"
	"github.com/nexus-suite/nexus/storage"
)

// The benchmark user and its session, valid for benchSessionTTL. The user
// signs in with benchUserEmail and benchPassword, and its email is verified.
const (
	benchUserID     = "bench-user"
	benchUserEmail  = "bench-user@example.com"
	benchPassword   = "nexusbench login password"
	benchSessionID  = "bench-session"
	benchTokenID    = "bench-token"
	benchSessionTTL = time.Hour
	// benchRequestLimit is the core tier's requests_per_minute and burst,
	// and the per-IP limit's ip_per_minute and ip_burst, in the benchmark
	// config: high enough that no rate limit rejects.
	benchRequestLimit = 1_000_000_000
	// benchLoginMaxFailures is the auth module's login_max_failures in the
	// benchmark config, its maximum. Each sign-in attempt counts until it
	// succeeds, so the count reaches the number of logins in flight, and the
	// default of 5 would lock the user at more than 5 connections.
	benchLoginMaxFailures = 100
)

// benchConfig is the config file of the benchmark server. Everything it
// does not set keeps its default, the access log and the argon2id
// parameters included, so the server runs as an operator runs it. Only the
// listener, the data directory, the default tier's request limit, the
// per-IP limit and the auth module's login_max_failures change.
const benchConfig = `# Written by nexusbench for one benchmark run.
server:
  listen: %s
data_dir: %s
rate_limit:
  ip_per_minute: %d
  ip_burst: %d
tiers:
  catalog:
    core:
      limits:
        requests_per_minute: %d
        burst: %d
modules:
  auth:
    enabled: true
    login_max_failures: %d
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
// the signing keys in dir/data, inserts the benchmark user with its
// password and its session, and signs an access token for them. Nothing stays open afterwards, so the
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
	text := fmt.Sprintf(benchConfig, listen, dataDir,
		benchRequestLimit, benchRequestLimit, benchRequestLimit, benchRequestLimit, benchLoginMaxFailures)
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
	if got := cfg.RateLimit.IPPerMinute; got != benchRequestLimit {
		return serverSetup{}, fmt.Errorf("benchmark config: per-IP limit allows %d requests per minute, expected %d", got, benchRequestLimit)
	}
	if !cfg.ModuleEnabled("auth") {
		return serverSetup{}, errors.New("benchmark config: the auth module is disabled, expected it enabled for POST " + loginPath)
	}

	setup.Token, err = seedSession(ctx, cfg)
	if err != nil {
		return serverSetup{}, err
	}
	return setup, nil
}

// seedSession migrates the database of cfg, ensures its signing key,
// inserts the benchmark user with its password and its session, and
// returns a signed access token.
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
	if err := setPassword(ctx, db, benchUserID, benchPassword, now); err != nil {
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

// setPassword gives the user a password hashed with the default argon2id
// parameters and marks its email verified at now, so the user can sign in
// with POST /v1/auth/login. The columns come from the auth module's migration.
func setPassword(ctx context.Context, db *storage.DB, userID, plain string, now time.Time) error {
	hash, err := password.Hash(plain, password.DefaultParams())
	if err != nil {
		return fmt.Errorf("hash password of user %s: %w", userID, err)
	}
	result, err := db.ExecContext(ctx,
		`UPDATE users SET password_hash = $2, email_verified_at = $3, updated_at = $3 WHERE id = $1`,
		userID, hash, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("set password of user %s: %w", userID, err)
	}
	if n, err := result.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("set password of user %s: %d rows updated, error %v", userID, n, err)
	}
	return nil
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
