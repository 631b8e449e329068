package configs_test

import (
	"errors"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/configs"
)

// validConfig returns the defaults, which must be valid.
func validConfig(t *testing.T) *configs.Config {
	t.Helper()
	return mustLoad(t, "")
}

func TestValidateRules(t *testing.T) {
	tests := []struct {
		key    string
		change func(*configs.Config)
	}{
		{"server.listen", func(c *configs.Config) { c.Server.Listen = "localhost" }},
		{"server.listen", func(c *configs.Config) { c.Server.Listen = "127.0.0.1:0" }},
		{"server.listen", func(c *configs.Config) { c.Server.Listen = "127.0.0.1:65536" }},
		{"server.listen", func(c *configs.Config) { c.Server.Listen = "127.0.0.1:http" }},
		{"server.read_timeout", func(c *configs.Config) { c.Server.ReadTimeout = 0 }},
		{"server.write_timeout", func(c *configs.Config) { c.Server.WriteTimeout = -time.Second }},
		{"server.idle_timeout", func(c *configs.Config) { c.Server.IdleTimeout = 0 }},
		{"server.shutdown_timeout", func(c *configs.Config) { c.Server.ShutdownTimeout = 0 }},
		{"server.store_timeout", func(c *configs.Config) { c.Server.StoreTimeout = 0 }},
		{"server.max_body_bytes", func(c *configs.Config) { c.Server.MaxBodyBytes = 1023 }},
		{"server.max_body_bytes", func(c *configs.Config) { c.Server.MaxBodyBytes = 1<<30 + 1 }},
		{"server.trusted_proxies[1]", func(c *configs.Config) { c.Server.TrustedProxies = []string{"10.0.0.1", "10.0.0.0/33"} }},
		{"server.trusted_proxies[0]", func(c *configs.Config) { c.Server.TrustedProxies = []string{"proxy.local"} }},
		{"data_dir", func(c *configs.Config) { c.DataDir = "" }},
		{"database.url", func(c *configs.Config) { c.Database.URL = "mysql://127.0.0.1/nexus" }},
		{"database.url", func(c *configs.Config) { c.Database.URL = "postgres:/missing-slash" }},
		{"database.max_open_conns", func(c *configs.Config) { c.Database.MaxOpenConns = 0 }},
		{"database.max_idle_conns", func(c *configs.Config) { c.Database.MaxIdleConns = -1 }},
		{"database.conn_max_lifetime", func(c *configs.Config) { c.Database.ConnMaxLifetime = -time.Second }},
		{"database.ready_timeout", func(c *configs.Config) { c.Database.ReadyTimeout = 0 }},
		{"redis.url", func(c *configs.Config) { c.Redis.URL = "http://127.0.0.1:6379" }},
		{"redis.ready_timeout", func(c *configs.Config) { c.Redis.ReadyTimeout = 0 }},
		{"log.level", func(c *configs.Config) { c.Log.Level = "trace" }},
		{"log.format", func(c *configs.Config) { c.Log.Format = "xml" }},
		{"security.master_key", func(c *configs.Config) { c.Security.MasterKey = "not base64!" }},
		{"security.master_key", func(c *configs.Config) { c.Security.MasterKey = "c2hvcnQ=" }},
		{"tokens.issuer", func(c *configs.Config) { c.Tokens.Issuer = "" }},
		{"tokens.audience", func(c *configs.Config) { c.Tokens.Audience = "" }},
		{"tokens.access_ttl", func(c *configs.Config) { c.Tokens.AccessTTL = 59 * time.Second }},
		{"tokens.access_ttl", func(c *configs.Config) { c.Tokens.AccessTTL = 25 * time.Hour }},
		{"tokens.leeway", func(c *configs.Config) { c.Tokens.Leeway = -time.Second }},
		{"tokens.leeway", func(c *configs.Config) { c.Tokens.Leeway = 6 * time.Minute }},
		{"tokens.cache_entries", func(c *configs.Config) { c.Tokens.CacheEntries = -1 }},
		{"tokens.key_lead_time", func(c *configs.Config) { c.Tokens.KeyLeadTime = -time.Second }},
		{"tokens.key_lead_time", func(c *configs.Config) { c.Tokens.KeyLeadTime = 24*time.Hour + time.Second }},
		{"rate_limit.ip_per_minute", func(c *configs.Config) { c.RateLimit.IPPerMinute = 0 }},
		{"rate_limit.ip_burst", func(c *configs.Config) { c.RateLimit.IPBurst = 0 }},
		{"actors.user_idle_timeout", func(c *configs.Config) { c.Actors.UserIdleTimeout = 0 }},
		{"actors.session_recheck_interval", func(c *configs.Config) { c.Actors.SessionRecheckInterval = 0 }},
		{"actors.admission_timeout", func(c *configs.Config) { c.Actors.AdmissionTimeout = 0 }},
		{"tiers.default", func(c *configs.Config) { c.Tiers.Default = "gold" }},
		{"tiers.catalog.pro.name", func(c *configs.Config) { setTier(c, "pro", func(t *configs.Tier) { t.Name = " " }) }},
		{"tiers.catalog.pro.features[0]", func(c *configs.Config) {
			setTier(c, "pro", func(t *configs.Tier) { t.Features = []string{"teleport"} })
		}},
		{"tiers.catalog.pro.limits.requests_per_minute", func(c *configs.Config) {
			setTier(c, "pro", func(t *configs.Tier) { t.Limits.RequestsPerMinute = 0 })
		}},
		{"tiers.catalog.pro.limits.burst", func(c *configs.Config) {
			setTier(c, "pro", func(t *configs.Tier) { t.Limits.Burst = 0 })
		}},
		{"tiers.catalog.pro.limits.sync_bytes", func(c *configs.Config) {
			setTier(c, "pro", func(t *configs.Tier) { t.Limits.SyncBytes = -1 })
		}},
		{"tiers.catalog.pro.limits.skill_publishes_per_month", func(c *configs.Config) {
			setTier(c, "pro", func(t *configs.Tier) { t.Limits.SkillPublishesPerMonth = -1 })
		}},
		{"tiers.catalog.pro.limits.mcp_servers", func(c *configs.Config) {
			setTier(c, "pro", func(t *configs.Tier) { t.Limits.MCPServers = -1 })
		}},
		{"modules.auth.enabled", func(c *configs.Config) { c.Modules["auth"]["enabled"] = "yes" }},
		{"modules.sync.enabled", func(c *configs.Config) { c.Modules["sync"] = map[string]any{"limit": 1} }},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			cfg := validConfig(t)
			tt.change(cfg)

			err := cfg.Validate()
			var cfgErr *configs.Error
			if !errors.As(err, &cfgErr) {
				t.Fatalf("Validate = %v, want *configs.Error", err)
			}
			if len(cfgErr.Problems) != 1 {
				t.Errorf("got %d problems, want 1: %v", len(cfgErr.Problems), err)
			}
			if cfgErr.Problems[0].Key != tt.key {
				t.Errorf("key = %q, want %q", cfgErr.Problems[0].Key, tt.key)
			}
		})
	}
}

func setTier(c *configs.Config, id string, change func(*configs.Tier)) {
	tier := c.Tiers.Catalog[id]
	change(&tier)
	c.Tiers.Catalog[id] = tier
}

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name   string
		change func(*configs.Config)
	}{
		{"all interfaces", func(c *configs.Config) { c.Server.Listen = ":8080" }},
		{"IPv6 listen", func(c *configs.Config) { c.Server.Listen = "[::1]:443" }},
		{"sqlite URL", func(c *configs.Config) { c.Database.URL = "sqlite:/var/lib/nexus/nexus.db" }},
		{"postgresql URL", func(c *configs.Config) { c.Database.URL = "postgresql://127.0.0.1/test" }},
		{"rediss URL", func(c *configs.Config) { c.Redis.URL = "rediss://127.0.0.1:6380/0" }},
		{"master key", func(c *configs.Config) { c.Security.MasterKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" }},
		{"zero leeway", func(c *configs.Config) { c.Tokens.Leeway = 0 }},
		{"no token cache", func(c *configs.Config) { c.Tokens.CacheEntries = 0 }},
		{"zero key lead time", func(c *configs.Config) { c.Tokens.KeyLeadTime = 0 }},
		{"maximum key lead time", func(c *configs.Config) { c.Tokens.KeyLeadTime = 24 * time.Hour }},
		{"IPv6 proxy", func(c *configs.Config) { c.Server.TrustedProxies = []string{"fd00::/8", "::1"} }},
		{"unknown module", func(c *configs.Config) { c.Modules["future"] = map[string]any{"enabled": false} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig(t)
			tt.change(cfg)

			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestValidateHidesSecrets(t *testing.T) {
	cfg := validConfig(t)
	cfg.Security.MasterKey = "c2VjcmV0LWtleS10b28tc2hvcnQ="
	cfg.Database.URL = "mysql://nexus:hunter2@127.0.0.1/nexus"

	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate succeeded")
	}
	if strings.Contains(err.Error(), cfg.Security.MasterKey) {
		t.Errorf("error shows the master key: %v", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error shows the database password: %v", err)
	}
}

func TestModuleSectionCopy(t *testing.T) {
	cfg := mustLoad(t, writeFile(t, "modules:\n  auth:\n    enabled: true\n    nested:\n      list: [a]\n"))

	section := cfg.ModuleSection("auth")
	if _, ok := section["enabled"]; ok {
		t.Error("section contains enabled")
	}
	section["nested"].(map[string]any)["list"].([]any)[0] = "changed"
	if got := cfg.ModuleSection("auth")["nested"].(map[string]any)["list"].([]any)[0]; got != "a" {
		t.Errorf("changing the copy changed the config: %v", got)
	}

	missing := cfg.ModuleSection("missing")
	if missing == nil || len(missing) != 0 {
		t.Errorf("ModuleSection(missing) = %#v, want an empty map", missing)
	}
	if cfg.ModuleEnabled("missing") {
		t.Error("ModuleEnabled(missing) = true")
	}
}

func TestMasterKeyPath(t *testing.T) {
	cfg := validConfig(t)
	cfg.DataDir = "/var/lib/nexus"

	if got := cfg.MasterKeyPath(); got != filepath.Join("/var/lib/nexus", "master.key") {
		t.Errorf("default MasterKeyPath = %q", got)
	}
	cfg.Security.MasterKeyFile = "/etc/nexus/key"
	if got := cfg.MasterKeyPath(); got != "/etc/nexus/key" {
		t.Errorf("MasterKeyPath = %q, want master_key_file", got)
	}
}

func TestTrustedProxyNets(t *testing.T) {
	cfg := validConfig(t)
	cfg.Server.TrustedProxies = []string{"10.1.2.3/8", "192.168.1.10", "::ffff:172.16.0.1", "fd00::/8", "bad"}

	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.168.1.10/32"),
		netip.MustParsePrefix("172.16.0.1/32"),
		netip.MustParsePrefix("fd00::/8"),
	}
	if got := cfg.TrustedProxyNets(); !reflect.DeepEqual(got, want) {
		t.Errorf("TrustedProxyNets = %v, want %v", got, want)
	}
}

func TestTierFor(t *testing.T) {
	cfg := validConfig(t)

	if tier, ok := cfg.TierFor("studio"); !ok || tier.Name != "Studio" {
		t.Errorf("TierFor(studio) = %+v, %v", tier, ok)
	}
	if _, ok := cfg.TierFor("gold"); ok {
		t.Error("TierFor(gold) found a tier")
	}
}
