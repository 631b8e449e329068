// Package configs holds Nexus's configuration: the typed options, the
// embedded defaults (nexus.yaml in this folder, which documents every
// option) and the loader that layers a config file and NEXUS_* environment
// variables over those defaults.
package configs

import (
	"net/netip"
	"path/filepath"
	"time"
)

// Config is the whole configuration of one nexus process.
type Config struct {
	Server    Server    `koanf:"server"`
	DataDir   string    `koanf:"data_dir"`
	Database  Database  `koanf:"database"`
	Redis     Redis     `koanf:"redis"`
	Log       Log       `koanf:"log"`
	Security  Security  `koanf:"security"`
	Tokens    Tokens    `koanf:"tokens"`
	RateLimit RateLimit `koanf:"rate_limit"`
	Actors    Actors    `koanf:"actors"`
	Tiers     Tiers     `koanf:"tiers"`
	// Modules maps a module name to its section. Every section has the key
	// "enabled"; the other keys are decoded by the module itself.
	Modules map[string]map[string]any `koanf:"modules"`
}

// Server configures the HTTP listener.
type Server struct {
	Listen          string        `koanf:"listen"`
	ReadTimeout     time.Duration `koanf:"read_timeout"`
	WriteTimeout    time.Duration `koanf:"write_timeout"`
	IdleTimeout     time.Duration `koanf:"idle_timeout"`
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
	// MaxBodyBytes is the request body limit of routes that set none.
	MaxBodyBytes int `koanf:"max_body_bytes"`
	// StoreTimeout is the deadline a handler gives each store call.
	StoreTimeout time.Duration `koanf:"store_timeout"`
	// TrustedProxies lists the CIDRs whose X-Forwarded-For is believed.
	TrustedProxies []string `koanf:"trusted_proxies"`
}

// Database selects the engine. An empty URL means SQLite in DataDir.
type Database struct {
	URL             string        `koanf:"url"`
	MaxOpenConns    int           `koanf:"max_open_conns"`
	MaxIdleConns    int           `koanf:"max_idle_conns"`
	ConnMaxLifetime time.Duration `koanf:"conn_max_lifetime"`
	MigrateOnStart  bool          `koanf:"migrate_on_start"`
	// ReadyTimeout bounds the /ready check of the database.
	ReadyTimeout time.Duration `koanf:"ready_timeout"`
}

// Redis selects the key-value store. An empty URL means the in-process stand-in.
type Redis struct {
	URL          string        `koanf:"url"`
	Prefix       string        `koanf:"prefix"`
	ReadyTimeout time.Duration `koanf:"ready_timeout"`
}

// Log configures log/slog output.
type Log struct {
	Level  string `koanf:"level"`  // debug, info, warn, error
	Format string `koanf:"format"` // auto, json, text
	Access bool   `koanf:"access"` // one line per request
}

// Security configures the master key that encrypts secrets at rest.
type Security struct {
	// MasterKey is a base64-encoded 32-byte key. When empty, the key is read
	// from MasterKeyFile, which is generated on first start.
	MasterKey     string `koanf:"master_key"`
	MasterKeyFile string `koanf:"master_key_file"`
}

// Tokens configures the access tokens that the edge verifies.
type Tokens struct {
	Issuer    string        `koanf:"issuer"`
	Audience  string        `koanf:"audience"`
	AccessTTL time.Duration `koanf:"access_ttl"`
	// Leeway is the clock skew tolerated on exp, nbf and iat.
	Leeway time.Duration `koanf:"leeway"`
	// CacheEntries caps the verified-token cache.
	CacheEntries int `koanf:"cache_entries"`
	// KeyLeadTime is how long a key added by `nexus keys rotate` is in the
	// JWKS before it signs.
	KeyLeadTime time.Duration `koanf:"key_lead_time"`
}

// RateLimit configures the limit on unauthenticated routes, per client IP.
type RateLimit struct {
	IPPerMinute int `koanf:"ip_per_minute"`
	IPBurst     int `koanf:"ip_burst"`
}

// Actors configures the per-user actors.
type Actors struct {
	// UserIdleTimeout is how long a user actor lives without a request.
	UserIdleTimeout time.Duration `koanf:"user_idle_timeout"`
	// SessionRecheckInterval is how long an actor trusts its cached view of
	// a session before reading it from the store again.
	SessionRecheckInterval time.Duration `koanf:"session_recheck_interval"`
	// AdmissionTimeout bounds one admission round trip to a user actor.
	AdmissionTimeout time.Duration `koanf:"admission_timeout"`
}

// Tiers is the tier catalog.
type Tiers struct {
	// Default is the tier of users with no subscription, trial or override.
	Default string `koanf:"default"`
	// Catalog maps a tier id (core, pro, studio) to its definition.
	Catalog map[string]Tier `koanf:"catalog"`
}

// Tier is one entry of the catalog.
type Tier struct {
	Name     string     `koanf:"name"`
	Rank     int        `koanf:"rank"`
	Features []string   `koanf:"features"`
	Limits   TierLimits `koanf:"limits"`
	Prices   TierPrices `koanf:"prices"`
}

// TierLimits are the quantities a tier grants.
type TierLimits struct {
	RequestsPerMinute int `koanf:"requests_per_minute" json:"requests_per_minute"`
	Burst             int `koanf:"burst" json:"burst"`
	// SyncBytes is the sync storage quota: the decoded payload bytes of
	// every live item of a user.
	SyncBytes int64 `koanf:"sync_bytes" json:"sync_bytes"`
	// SyncItemBytes is the largest decoded payload of one sync item.
	SyncItemBytes int64 `koanf:"sync_item_bytes" json:"sync_item_bytes"`
	// SyncBatchItems is the most operations one sync batch may hold.
	SyncBatchItems         int `koanf:"sync_batch_items" json:"sync_batch_items"`
	SkillPublishesPerMonth int `koanf:"skill_publishes_per_month" json:"skill_publishes_per_month"`
	MCPServers             int `koanf:"mcp_servers" json:"mcp_servers"`
}

// TierPrices are the Stripe price ids of a tier per billing interval.
type TierPrices struct {
	Month string `koanf:"month" json:"month,omitempty"`
	Year  string `koanf:"year" json:"year,omitempty"`
}

// ModuleEnabled reports whether the module's section exists and its
// "enabled" key is true.
func (c *Config) ModuleEnabled(name string) bool {
	enabled, _ := c.Modules[name]["enabled"].(bool)
	return enabled
}

// ModuleSection returns a deep copy of the module's section without the
// "enabled" key, for the module's Decode. The map is empty, never nil, when
// the config has no section for the module.
func (c *Config) ModuleSection(name string) map[string]any {
	section := map[string]any{}
	for key, value := range c.Modules[name] {
		if key != "enabled" {
			section[key] = deepCopy(value)
		}
	}
	return section
}

// deepCopy copies the maps and lists of a decoded YAML value, so that a
// module that changes its section never changes the Config.
func deepCopy(value any) any {
	switch v := value.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for key, item := range v {
			out[key] = deepCopy(item)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, item := range v {
			out[i] = deepCopy(item)
		}
		return out
	}
	return value
}

// MasterKeyPath returns the file that holds the master key when
// security.master_key is empty: security.master_key_file, or master.key in
// data_dir when that is empty too.
func (c *Config) MasterKeyPath() string {
	if c.Security.MasterKeyFile != "" {
		return c.Security.MasterKeyFile
	}
	return filepath.Join(c.DataDir, "master.key")
}

// TrustedProxyNets returns server.trusted_proxies as prefixes, a single
// address as a /32 or /128 prefix. IPv4-mapped IPv6 addresses are unmapped.
// Entries that do not parse are skipped, because Validate reports them.
func (c *Config) TrustedProxyNets() []netip.Prefix {
	prefixes := make([]netip.Prefix, 0, len(c.Server.TrustedProxies))
	for _, proxy := range c.Server.TrustedProxies {
		if prefix, err := parseProxy(proxy); err == nil {
			prefixes = append(prefixes, prefix)
		}
	}
	return prefixes
}

// TierFor returns the catalog entry of the tier id, and false when the
// catalog has no such tier.
func (c *Config) TierFor(id string) (Tier, bool) {
	tier, ok := c.Tiers.Catalog[id]
	return tier, ok
}
