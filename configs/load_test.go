package configs_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/configs"
)

// writeFile writes a config file into a temporary directory and returns its path.
func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nexus.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// mustLoad loads a configuration that must be valid.
func mustLoad(t *testing.T, path string, environ ...string) *configs.Config {
	t.Helper()
	cfg, err := configs.Load(path, environ)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg
}

// problemsOf loads a configuration that must be invalid and returns its problems.
func problemsOf(t *testing.T, path string, environ ...string) []configs.Problem {
	t.Helper()
	_, err := configs.Load(path, environ)
	var cfgErr *configs.Error
	if !errors.As(err, &cfgErr) {
		t.Fatalf("Load error = %v, want *configs.Error", err)
	}
	return cfgErr.Problems
}

// findProblem returns the problem with key, failing the test when there is none.
func findProblem(t *testing.T, problems []configs.Problem, key string) configs.Problem {
	t.Helper()
	for _, p := range problems {
		if p.Key == key {
			return p
		}
	}
	t.Fatalf("no problem for key %q in %v", key, problems)
	return configs.Problem{}
}

func TestLoadDefaults(t *testing.T) {
	cfg := mustLoad(t, "")

	checks := []struct {
		name      string
		got, want any
	}{
		{"server.listen", cfg.Server.Listen, "127.0.0.1:8080"},
		{"server.read_timeout", cfg.Server.ReadTimeout, 30 * time.Second},
		{"server.write_timeout", cfg.Server.WriteTimeout, 30 * time.Second},
		{"server.idle_timeout", cfg.Server.IdleTimeout, 120 * time.Second},
		{"server.shutdown_timeout", cfg.Server.ShutdownTimeout, 15 * time.Second},
		{"server.max_body_bytes", cfg.Server.MaxBodyBytes, 1048576},
		{"server.store_timeout", cfg.Server.StoreTimeout, 5 * time.Second},
		{"server.trusted_proxies", len(cfg.Server.TrustedProxies), 0},
		{"data_dir", cfg.DataDir, "./data"},
		{"database.url", cfg.Database.URL, ""},
		{"database.max_open_conns", cfg.Database.MaxOpenConns, 20},
		{"database.max_idle_conns", cfg.Database.MaxIdleConns, 10},
		{"database.conn_max_lifetime", cfg.Database.ConnMaxLifetime, 30 * time.Minute},
		{"database.migrate_on_start", cfg.Database.MigrateOnStart, true},
		{"database.ready_timeout", cfg.Database.ReadyTimeout, 800 * time.Millisecond},
		{"redis.url", cfg.Redis.URL, ""},
		{"redis.prefix", cfg.Redis.Prefix, "nexus:"},
		{"redis.ready_timeout", cfg.Redis.ReadyTimeout, 800 * time.Millisecond},
		{"log.level", cfg.Log.Level, "info"},
		{"log.format", cfg.Log.Format, "auto"},
		{"log.access", cfg.Log.Access, true},
		{"security.master_key", cfg.Security.MasterKey, ""},
		{"security.master_key_file", cfg.Security.MasterKeyFile, ""},
		{"tokens.issuer", cfg.Tokens.Issuer, "nexus"},
		{"tokens.audience", cfg.Tokens.Audience, "nexus-api"},
		{"tokens.access_ttl", cfg.Tokens.AccessTTL, 15 * time.Minute},
		{"tokens.leeway", cfg.Tokens.Leeway, 30 * time.Second},
		{"tokens.cache_entries", cfg.Tokens.CacheEntries, 100000},
		{"tokens.key_lead_time", cfg.Tokens.KeyLeadTime, 10 * time.Minute},
		{"rate_limit.ip_per_minute", cfg.RateLimit.IPPerMinute, 20},
		{"rate_limit.ip_burst", cfg.RateLimit.IPBurst, 20},
		{"actors.user_idle_timeout", cfg.Actors.UserIdleTimeout, 10 * time.Minute},
		{"actors.session_recheck_interval", cfg.Actors.SessionRecheckInterval, 15 * time.Second},
		{"actors.admission_timeout", cfg.Actors.AdmissionTimeout, 2 * time.Second},
		{"tiers.default", cfg.Tiers.Default, "core"},
		{"tiers.catalog size", len(cfg.Tiers.Catalog), 3},
		{"modules.auth.enabled", cfg.ModuleEnabled("auth"), true},
		{"modules.entitlements.enabled", cfg.ModuleEnabled("entitlements"), true},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}

	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestLoadDefaultTiers(t *testing.T) {
	cfg := mustLoad(t, "")

	want := map[string]configs.Tier{
		"core": {Name: "Core", Rank: 0, Features: []string{},
			Limits: configs.TierLimits{RequestsPerMinute: 60, Burst: 60}},
		"pro": {Name: "Pro", Rank: 1, Features: []string{"sync", "skills_hub"},
			Limits: configs.TierLimits{RequestsPerMinute: 300, Burst: 300, SyncBytes: 10 << 30,
				SyncItemBytes: 1 << 20, SyncBatchItems: 100, SkillPublishesPerMonth: 50}},
		"studio": {Name: "Studio", Rank: 2, Features: []string{"sync", "skills_hub", "mcp_hosting", "extensible"},
			Limits: configs.TierLimits{RequestsPerMinute: 1000, Burst: 1000, SyncBytes: 100 << 30,
				SyncItemBytes: 10 << 20, SyncBatchItems: 500, SkillPublishesPerMonth: 500, MCPServers: 10}},
	}
	for id, wantTier := range want {
		got, ok := cfg.TierFor(id)
		if !ok {
			t.Errorf("TierFor(%q) not found", id)
			continue
		}
		if !reflect.DeepEqual(got, wantTier) {
			t.Errorf("tier %s = %+v, want %+v", id, got, wantTier)
		}
	}
}

func TestLoadFileOverrides(t *testing.T) {
	path := writeFile(t, `
server:
  listen: 0.0.0.0:9090
  trusted_proxies: [10.0.0.0/8]
database:
  url: postgres://nexus@127.0.0.1:5432/nexus
  migrate_on_start: false
tokens:
  access_ttl: 1h
tiers:
  catalog:
    pro:
      limits:
        requests_per_minute: 500
modules:
  auth:
    enabled: false
    max_sessions: 5
`)
	cfg := mustLoad(t, path)

	if cfg.Server.Listen != "0.0.0.0:9090" {
		t.Errorf("server.listen = %q", cfg.Server.Listen)
	}
	if !reflect.DeepEqual(cfg.Server.TrustedProxies, []string{"10.0.0.0/8"}) {
		t.Errorf("server.trusted_proxies = %v", cfg.Server.TrustedProxies)
	}
	if cfg.Server.ReadTimeout != 30*time.Second {
		t.Errorf("server.read_timeout = %v, want the default 30s", cfg.Server.ReadTimeout)
	}
	if cfg.Database.URL != "postgres://nexus@127.0.0.1:5432/nexus" {
		t.Errorf("database.url = %q", cfg.Database.URL)
	}
	if cfg.Database.MigrateOnStart {
		t.Error("database.migrate_on_start = true, want false")
	}
	if cfg.Tokens.AccessTTL != time.Hour {
		t.Errorf("tokens.access_ttl = %v, want 1h", cfg.Tokens.AccessTTL)
	}
	pro, _ := cfg.TierFor("pro")
	if pro.Limits.RequestsPerMinute != 500 {
		t.Errorf("pro requests_per_minute = %d, want 500", pro.Limits.RequestsPerMinute)
	}
	if pro.Limits.Burst != 300 {
		t.Errorf("pro burst = %d, want the default 300", pro.Limits.Burst)
	}
	if cfg.ModuleEnabled("auth") {
		t.Error("auth enabled, want disabled")
	}
	section := cfg.ModuleSection("auth")
	if section["max_sessions"] != 5 {
		t.Errorf("modules.auth.max_sessions = %v, want 5 from the file", section["max_sessions"])
	}
	if section["session_ttl"] != "720h" {
		t.Errorf("modules.auth.session_ttl = %v, want the default 720h kept", section["session_ttl"])
	}
}

func TestLoadFileNullKeepsDefault(t *testing.T) {
	path := writeFile(t, "server:\n  listen:\nlog:\n")
	cfg := mustLoad(t, path)

	if cfg.Server.Listen != "127.0.0.1:8080" {
		t.Errorf("server.listen = %q, want the default", cfg.Server.Listen)
	}
	if cfg.Log.Level != "info" {
		t.Errorf("log.level = %q, want the default", cfg.Log.Level)
	}
}

func TestLoadEmptyFile(t *testing.T) {
	cfg := mustLoad(t, writeFile(t, "# nothing set\n"))

	if cfg.Server.Listen != "127.0.0.1:8080" {
		t.Errorf("server.listen = %q, want the default", cfg.Server.Listen)
	}
}

func TestLoadEnvOverridesFile(t *testing.T) {
	path := writeFile(t, "server:\n  listen: 127.0.0.1:9000\ndatabase:\n  url: sqlite:/tmp/a.db\n")
	cfg := mustLoad(t, path,
		"NEXUS_SERVER_LISTEN=127.0.0.1:9100",
		"NEXUS_DATABASE_URL=postgres://127.0.0.1/test",
	)

	if cfg.Server.Listen != "127.0.0.1:9100" {
		t.Errorf("server.listen = %q, want the variable's value", cfg.Server.Listen)
	}
	if cfg.Database.URL != "postgres://127.0.0.1/test" {
		t.Errorf("database.url = %q, want the variable's value", cfg.Database.URL)
	}
}

func TestLoadEnvValues(t *testing.T) {
	tests := []struct {
		name string
		env  string
		get  func(*configs.Config) any
		want any
	}{
		{"bool", "NEXUS_LOG_ACCESS=false", func(c *configs.Config) any { return c.Log.Access }, false},
		{"int", "NEXUS_SERVER_MAX_BODY_BYTES=2048", func(c *configs.Config) any { return c.Server.MaxBodyBytes }, 2048},
		{"int64", "NEXUS_TIERS_CATALOG_PRO_LIMITS_SYNC_BYTES=5368709120",
			func(c *configs.Config) any { return c.Tiers.Catalog["pro"].Limits.SyncBytes }, int64(5 << 30)},
		{"duration", "NEXUS_TOKENS_ACCESS_TTL=20m", func(c *configs.Config) any { return c.Tokens.AccessTTL }, 20 * time.Minute},
		{"zero duration", "NEXUS_TOKENS_LEEWAY=0", func(c *configs.Config) any { return c.Tokens.Leeway }, time.Duration(0)},
		{"key lead time", "NEXUS_TOKENS_KEY_LEAD_TIME=1h", func(c *configs.Config) any { return c.Tokens.KeyLeadTime }, time.Hour},
		{"top-level key", "NEXUS_DATA_DIR=/var/lib/nexus", func(c *configs.Config) any { return c.DataDir }, "/var/lib/nexus"},
		{"string stays text", "NEXUS_REDIS_PREFIX=123", func(c *configs.Config) any { return c.Redis.Prefix }, "123"},
		{"empty string", "NEXUS_REDIS_PREFIX=", func(c *configs.Config) any { return c.Redis.Prefix }, ""},
		{"flow list", "NEXUS_SERVER_TRUSTED_PROXIES=[10.0.0.0/8, 192.168.1.1]",
			func(c *configs.Config) any { return c.Server.TrustedProxies }, []string{"10.0.0.0/8", "192.168.1.1"}},
		{"comma list", "NEXUS_SERVER_TRUSTED_PROXIES=10.0.0.0/8, 192.168.1.1",
			func(c *configs.Config) any { return c.Server.TrustedProxies }, []string{"10.0.0.0/8", "192.168.1.1"}},
		{"empty list", "NEXUS_SERVER_TRUSTED_PROXIES=",
			func(c *configs.Config) any { return c.Server.TrustedProxies }, []string{}},
		{"tier features", "NEXUS_TIERS_CATALOG_CORE_FEATURES=sync",
			func(c *configs.Config) any { return c.Tiers.Catalog["core"].Features }, []string{"sync"}},
		{"module enabled", "NEXUS_MODULES_AUTH_ENABLED=false",
			func(c *configs.Config) any { return c.ModuleEnabled("auth") }, false},
		{"module option", "NEXUS_MODULES_AUTH_MAX_SESSIONS=7",
			func(c *configs.Config) any { return c.ModuleSection("auth")["max_sessions"] }, 7},
		{"lower-case name", "nexus_log_level=debug", func(c *configs.Config) any { return c.Log.Level }, "debug"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustLoad(t, "", tt.env)

			if got := tt.get(cfg); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s: got %#v, want %#v", tt.env, got, tt.want)
			}
		})
	}
}

func TestLoadEnvIgnoresOtherVariables(t *testing.T) {
	cfg := mustLoad(t, "", "NEXUS_TEST_SERVICES=required", "HOME=/root", "NEXUS=1", "NEXUS_SERVERX=1")

	if cfg.Server.Listen != "127.0.0.1:8080" {
		t.Errorf("server.listen = %q", cfg.Server.Listen)
	}
}

func TestLoadEnvUnknownOption(t *testing.T) {
	tests := []string{"NEXUS_SERVER_FOO", "NEXUS_TIERS_CATALOG_GOLD_NAME", "NEXUS_MODULES_FUTURE_ENABLED", "NEXUS_MODULES_AUTH"}
	for _, name := range tests {
		t.Run(name, func(t *testing.T) {
			problems := problemsOf(t, "", name+"=1")

			p := findProblem(t, problems, name)
			if !strings.Contains(p.Message, "unknown option") {
				t.Errorf("message = %q, want it to say unknown option", p.Message)
			}
		})
	}
}

func TestLoadEnvWrongType(t *testing.T) {
	problems := problemsOf(t, "", "NEXUS_SERVER_MAX_BODY_BYTES=big", "NEXUS_LOG_ACCESS=maybe")

	body := findProblem(t, problems, "server.max_body_bytes")
	if body.Message != `expected an integer, got "big"` {
		t.Errorf("message = %q", body.Message)
	}
	if body.Source != "NEXUS_SERVER_MAX_BODY_BYTES" {
		t.Errorf("source = %q, want the variable", body.Source)
	}
	access := findProblem(t, problems, "log.access")
	if access.Message != `expected true or false, got "maybe"` {
		t.Errorf("message = %q", access.Message)
	}
}

func TestLoadEnvInvalidYAML(t *testing.T) {
	problems := problemsOf(t, "", "NEXUS_SERVER_TRUSTED_PROXIES=[10.0.0.0/8")

	p := findProblem(t, problems, "server.trusted_proxies")
	if !strings.HasPrefix(p.Message, "invalid YAML value") {
		t.Errorf("message = %q", p.Message)
	}
}

func TestLoadFileUnknownKey(t *testing.T) {
	path := writeFile(t, "server:\n  lisen: 127.0.0.1:80\ntiers:\n  catalog:\n    pro:\n      limits:\n        extra: 1\nlogs: {}\n")
	problems := problemsOf(t, path)

	for _, key := range []string{"server.lisen", "tiers.catalog.pro.limits.extra", "logs"} {
		p := findProblem(t, problems, key)
		if p.Message != "unknown option" {
			t.Errorf("%s: message = %q, want unknown option", key, p.Message)
		}
	}
}

func TestLoadFileWrongType(t *testing.T) {
	tests := []struct {
		yaml, key, message string
	}{
		{"server:\n  max_body_bytes: big\n", "server.max_body_bytes", `expected an integer, got "big"`},
		{"server:\n  max_body_bytes: 1.5\n", "server.max_body_bytes", "expected an integer, got 1.5"},
		{"server:\n  read_timeout: 30\n", "server.read_timeout", `expected a duration with a unit, such as "30s", got 30`},
		{"server:\n  read_timeout: soon\n", "server.read_timeout", `expected a duration such as "30s" or "15m", got "soon"`},
		{"server:\n  listen: 8080\n", "server.listen", "expected a string, got 8080"},
		{"server:\n  trusted_proxies: 10.0.0.0/8\n", "server.trusted_proxies", `expected a list, got "10.0.0.0/8"`},
		{"server:\n  trusted_proxies: [1]\n", "server.trusted_proxies[0]", "expected a string, got 1"},
		{"log:\n  access: yes please\n", "log.access", `expected true or false, got "yes please"`},
		{"server: 5\n", "server", "expected a mapping of keys to values, got 5"},
		{"modules:\n  auth: true\n", "modules.auth", "expected a mapping of keys to values, got true"},
		{"tiers:\n  catalog:\n    pro:\n      rank: high\n", "tiers.catalog.pro.rank", `expected an integer, got "high"`},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			problems := problemsOf(t, writeFile(t, tt.yaml))

			p := findProblem(t, problems, tt.key)
			if p.Message != tt.message {
				t.Errorf("message = %q, want %q", p.Message, tt.message)
			}
		})
	}
}

func TestLoadIntegerFloat(t *testing.T) {
	cfg := mustLoad(t, writeFile(t, "server:\n  max_body_bytes: 2e6\n"))

	if cfg.Server.MaxBodyBytes != 2000000 {
		t.Errorf("server.max_body_bytes = %d, want 2000000", cfg.Server.MaxBodyBytes)
	}
}

func TestLoadSeveralProblems(t *testing.T) {
	path := writeFile(t, `
server:
  lisen: ":80"
  max_body_bytes: big
tiers:
  default: gold
  catalog:
    pro:
      features: [sync, teleport]
      limits:
        burst: 1.5
`)
	_, err := configs.Load(path, []string{"NEXUS_SERVER_FOO=1", "NEXUS_RATE_LIMIT_IP_BURST=0"})
	if err == nil {
		t.Fatal("Load succeeded, want an error")
	}

	lines := strings.Split(err.Error(), "\n")
	if want := "invalid configuration in " + path + ":"; lines[0] != want {
		t.Errorf("first line = %q, want %q", lines[0], want)
	}
	wantStarts := []string{
		"NEXUS_SERVER_FOO: unknown option",
		"rate_limit.ip_burst: must be at least 1, got 0 (set by NEXUS_RATE_LIMIT_IP_BURST)",
		"server.lisen: unknown option",
		`server.max_body_bytes: expected an integer, got "big"`,
		`tiers.catalog.pro.features[1]: unknown feature "teleport"`,
		"tiers.catalog.pro.limits.burst: expected an integer, got 1.5",
		`tiers.default: tier "gold" is not in tiers.catalog`,
	}
	if len(lines)-1 != len(wantStarts) {
		t.Fatalf("got %d problem lines, want %d:\n%s", len(lines)-1, len(wantStarts), err)
	}
	for i, want := range wantStarts {
		if !strings.HasPrefix(lines[i+1], want) {
			t.Errorf("line %d = %q, want it to start with %q", i+1, lines[i+1], want)
		}
	}
}

func TestLoadFileErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	_, err := configs.Load(missing, nil)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: error = %v, want it to name the file", err)
	}

	broken := writeFile(t, "server:\n  listen: [\n")
	_, err = configs.Load(broken, nil)
	if err == nil || !strings.Contains(err.Error(), broken) {
		t.Errorf("invalid YAML: error = %v, want it to name the file", err)
	}
}

func TestCheck(t *testing.T) {
	if err := configs.Check(writeFile(t, "log:\n  level: debug\n"), nil); err != nil {
		t.Errorf("valid file: %v", err)
	}
	if err := configs.Check(writeFile(t, "log:\n  level: loud\n"), nil); err == nil {
		t.Error("invalid file: no error")
	}
}

func TestDecodeSection(t *testing.T) {
	type options struct {
		MaxBytes int           `koanf:"max_bytes"`
		Interval time.Duration `koanf:"interval"`
		Nested   struct {
			Name string `koanf:"name"`
		} `koanf:"nested"`
	}

	var ok options
	err := configs.DecodeSection("modules.sync", map[string]any{
		"max_bytes": 10, "interval": "5s", "nested": map[string]any{"name": "a"},
	}, &ok)
	if err != nil {
		t.Fatalf("DecodeSection: %v", err)
	}
	if ok.MaxBytes != 10 || ok.Interval != 5*time.Second || ok.Nested.Name != "a" {
		t.Errorf("decoded %+v", ok)
	}

	var bad options
	err = configs.DecodeSection("modules.sync", map[string]any{
		"max_byte": 10, "interval": 5, "nested": map[string]any{"name": 1},
	}, &bad)
	var cfgErr *configs.Error
	if !errors.As(err, &cfgErr) {
		t.Fatalf("error = %v, want *configs.Error", err)
	}
	for _, key := range []string{"modules.sync.max_byte", "modules.sync.interval", "modules.sync.nested.name"} {
		findProblem(t, cfgErr.Problems, key)
	}

	var empty options
	if err := configs.DecodeSection("modules.sync", nil, &empty); err != nil {
		t.Errorf("nil section: %v", err)
	}
}

func TestDecodeModule(t *testing.T) {
	type options struct {
		Limit int    `koanf:"limit"`
		Name  string `koanf:"name"`
	}
	defaults := options{Limit: 5, Name: "default"}
	validate := func(o options) error {
		if o.Limit < 1 {
			return errors.New("modules.demo.limit: must be at least 1")
		}
		return nil
	}

	got, err := configs.DecodeModule("demo", map[string]any{"limit": 7}, defaults, validate)
	if err != nil || got != (options{Limit: 7, Name: "default"}) {
		t.Errorf("DecodeModule = %+v, %v; want limit 7 over the defaults", got, err)
	}

	_, err = configs.DecodeModule("demo", map[string]any{"limt": 7}, defaults, validate)
	if err == nil || !strings.Contains(err.Error(), "modules.demo.limt") {
		t.Errorf("unknown key: error = %v, want one naming modules.demo.limt", err)
	}

	_, err = configs.DecodeModule("demo", map[string]any{"limit": 0}, defaults, validate)
	if err == nil || !strings.Contains(err.Error(), "must be at least 1") {
		t.Errorf("invalid value: error = %v, want the validation error", err)
	}
}

func TestDefaultYAMLIsCopy(t *testing.T) {
	first := configs.DefaultYAML()
	first[0] = 'X'

	if configs.DefaultYAML()[0] == 'X' {
		t.Error("DefaultYAML returned the embedded slice itself")
	}
}
