package configs

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Limits that Validate enforces.
const (
	minBodyBytes  = 1 << 10 // 1 KiB
	maxBodyBytes  = 1 << 30 // 1 GiB
	minAccessTTL  = time.Minute
	maxAccessTTL  = 24 * time.Hour
	maxLeeway     = 5 * time.Minute
	maxKeyLead    = 24 * time.Hour
	masterKeySize = 32 // bytes, an AES-256 key
)

// Features are the feature names that a tier may grant.
var Features = []string{"sync", "skills_hub", "mcp_hosting", "extensible"}

// Validate checks every option's range and format and returns an *Error
// listing all problems, or nil. It checks neither module names, because
// the runtime's registry lists the modules, nor a module's own options.
func (c *Config) Validate() error {
	return c.validate().err("")
}

func (c *Config) validate() problemList {
	var problems problemList
	c.validateServer(&problems)
	c.validateStores(&problems)
	c.validateLog(&problems)
	c.validateSecurity(&problems)
	c.validateTokens(&problems)
	c.validateLimits(&problems)
	c.validateTiers(&problems)
	c.validateModules(&problems)
	return problems
}

func (c *Config) validateServer(problems *problemList) {
	s := c.Server
	if err := checkListen(s.Listen); err != nil {
		problems.add("server.listen", "%v", err)
	}
	positive(problems, "server.read_timeout", s.ReadTimeout)
	positive(problems, "server.write_timeout", s.WriteTimeout)
	positive(problems, "server.idle_timeout", s.IdleTimeout)
	positive(problems, "server.shutdown_timeout", s.ShutdownTimeout)
	positive(problems, "server.store_timeout", s.StoreTimeout)
	if s.MaxBodyBytes < minBodyBytes || s.MaxBodyBytes > maxBodyBytes {
		problems.add("server.max_body_bytes", "must be between %d (1 KiB) and %d (1 GiB), got %d",
			minBodyBytes, maxBodyBytes, s.MaxBodyBytes)
	}
	for i, proxy := range s.TrustedProxies {
		if _, err := parseProxy(proxy); err != nil {
			problems.add(fmt.Sprintf("server.trusted_proxies[%d]", i),
				"invalid IP address or CIDR range %q, expected a value such as 10.0.0.1 or 10.0.0.0/8", proxy)
		}
	}
}

// checkListen checks that listen is host:port with a port from 1 to 65535.
// The host may be empty, which listens on every interface.
func checkListen(listen string) error {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("invalid address %q, expected host:port such as 127.0.0.1:8080", listen)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("invalid port %q in %q, expected a number from 1 to 65535", port, listen)
	}
	return nil
}

func (c *Config) validateStores(problems *problemList) {
	if strings.TrimSpace(c.DataDir) == "" {
		problems.add("data_dir", "must not be empty")
	}

	d := c.Database
	url := d.URL
	if url != "" && !strings.HasPrefix(url, "sqlite:") &&
		!strings.HasPrefix(url, "postgres://") && !strings.HasPrefix(url, "postgresql://") {
		problems.add("database.url",
			"unsupported URL %q, expected empty (SQLite in data_dir), sqlite:PATH, postgres:// or postgresql://",
			redactURL(url))
	}
	if d.MaxOpenConns < 1 {
		problems.add("database.max_open_conns", "must be at least 1, got %d", d.MaxOpenConns)
	}
	if d.MaxIdleConns < 0 {
		problems.add("database.max_idle_conns", "must not be negative, got %d", d.MaxIdleConns)
	}
	if d.ConnMaxLifetime < 0 {
		problems.add("database.conn_max_lifetime", "must not be negative, got %s", d.ConnMaxLifetime)
	}
	positive(problems, "database.ready_timeout", d.ReadyTimeout)

	r := c.Redis
	if r.URL != "" && !strings.HasPrefix(r.URL, "redis://") && !strings.HasPrefix(r.URL, "rediss://") {
		problems.add("redis.url",
			"unsupported URL %q, expected empty (in-process stand-in), redis:// or rediss://", redactURL(r.URL))
	}
	positive(problems, "redis.ready_timeout", r.ReadyTimeout)
}

// redactURL removes everything between "//" and "@", where a URL carries
// its user and password, so that an error never shows the password.
func redactURL(url string) string {
	at := strings.LastIndex(url, "@")
	if at < 0 {
		return url
	}
	start := strings.Index(url, "//")
	if start < 0 || start > at {
		return "…" + url[at:]
	}
	return url[:start+2] + "…" + url[at:]
}

func (c *Config) validateLog(problems *problemList) {
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		problems.add("log.level", "invalid level %q, expected debug, info, warn or error", c.Log.Level)
	}
	if !slices.Contains([]string{"auto", "json", "text"}, c.Log.Format) {
		problems.add("log.format", "invalid format %q, expected auto, json or text", c.Log.Format)
	}
}

func (c *Config) validateSecurity(problems *problemList) {
	key := c.Security.MasterKey
	if key == "" {
		return
	}
	// The messages never show the key.
	raw, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		problems.add("security.master_key", "invalid standard base64; generate a key with `openssl rand -base64 32`")
		return
	}
	if len(raw) != masterKeySize {
		problems.add("security.master_key", "decodes to %d bytes, expected %d; generate a key with `openssl rand -base64 32`",
			len(raw), masterKeySize)
	}
}

func (c *Config) validateTokens(problems *problemList) {
	t := c.Tokens
	if t.Issuer == "" {
		problems.add("tokens.issuer", "must not be empty")
	}
	if t.Audience == "" {
		problems.add("tokens.audience", "must not be empty")
	}
	if t.AccessTTL < minAccessTTL || t.AccessTTL > maxAccessTTL {
		problems.add("tokens.access_ttl", "must be between %s and %s, got %s", minAccessTTL, maxAccessTTL, t.AccessTTL)
	}
	if t.Leeway < 0 || t.Leeway > maxLeeway {
		problems.add("tokens.leeway", "must be between 0s and %s, got %s", maxLeeway, t.Leeway)
	}
	if t.CacheEntries < 0 {
		problems.add("tokens.cache_entries", "must not be negative, got %d", t.CacheEntries)
	}
	if t.KeyLeadTime < 0 || t.KeyLeadTime > maxKeyLead {
		problems.add("tokens.key_lead_time", "must be between 0s and %s, got %s", maxKeyLead, t.KeyLeadTime)
	}
}

func (c *Config) validateLimits(problems *problemList) {
	atLeastOne(problems, "rate_limit.ip_per_minute", c.RateLimit.IPPerMinute)
	atLeastOne(problems, "rate_limit.ip_burst", c.RateLimit.IPBurst)

	positive(problems, "actors.user_idle_timeout", c.Actors.UserIdleTimeout)
	positive(problems, "actors.session_recheck_interval", c.Actors.SessionRecheckInterval)
	positive(problems, "actors.admission_timeout", c.Actors.AdmissionTimeout)
}

func (c *Config) validateTiers(problems *problemList) {
	if _, ok := c.Tiers.Catalog[c.Tiers.Default]; !ok {
		problems.add("tiers.default", "tier %q is not in tiers.catalog (%s)",
			c.Tiers.Default, strings.Join(sortedKeys(c.Tiers.Catalog), ", "))
	}

	for _, id := range sortedKeys(c.Tiers.Catalog) {
		tier := c.Tiers.Catalog[id]
		key := "tiers.catalog." + id
		if strings.TrimSpace(tier.Name) == "" {
			problems.add(key+".name", "must not be empty")
		}
		for i, feature := range tier.Features {
			if !slices.Contains(Features, feature) {
				problems.add(fmt.Sprintf("%s.features[%d]", key, i), "unknown feature %q, expected one of %s",
					feature, strings.Join(Features, ", "))
			}
		}

		limits := tier.Limits
		atLeastOne(problems, key+".limits.requests_per_minute", limits.RequestsPerMinute)
		atLeastOne(problems, key+".limits.burst", limits.Burst)
		if limits.SyncBytes < 0 {
			problems.add(key+".limits.sync_bytes", "must not be negative, got %d", limits.SyncBytes)
		}
		if limits.SyncItemBytes < 0 {
			problems.add(key+".limits.sync_item_bytes", "must not be negative, got %d", limits.SyncItemBytes)
		}
		if limits.SyncBatchItems < 0 {
			problems.add(key+".limits.sync_batch_items", "must not be negative, got %d", limits.SyncBatchItems)
		}
		if limits.SkillPublishesPerMonth < 0 {
			problems.add(key+".limits.skill_publishes_per_month", "must not be negative, got %d",
				limits.SkillPublishesPerMonth)
		}
		if limits.MCPServers < 0 {
			problems.add(key+".limits.mcp_servers", "must not be negative, got %d", limits.MCPServers)
		}
	}
}

func (c *Config) validateModules(problems *problemList) {
	for _, name := range sortedKeys(c.Modules) {
		enabled, ok := c.Modules[name]["enabled"]
		if !ok {
			problems.add("modules."+name+".enabled", "missing, set it to true or false")
			continue
		}
		if _, ok := enabled.(bool); !ok {
			problems.add("modules."+name+".enabled", "expected true or false, got %s", describe(enabled))
		}
	}
}

func positive(problems *problemList, key string, d time.Duration) {
	if d <= 0 {
		problems.add(key, "must be greater than 0, got %s", d)
	}
}

func atLeastOne(problems *problemList, key string, n int) {
	if n < 1 {
		problems.add(key, "must be at least 1, got %d", n)
	}
}

// parseProxy parses a trusted proxy: a CIDR range, or one IP address as a
// range of a single address.
func parseProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		prefix, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return prefix.Masked(), nil
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if addr.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("IPv6 zone not allowed in %q", s)
	}
	addr = addr.Unmap()
	return netip.PrefixFrom(addr, addr.BitLen()), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
