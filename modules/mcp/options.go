package mcp

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Bounds of the options, so a typo cannot make a server restart in a hot
// loop or keep a dead process for an hour.
const (
	minBackoffBase      = 10 * time.Millisecond
	maxStopGrace        = time.Minute
	minHealthInterval   = 100 * time.Millisecond
	maxLogLines         = 100_000
	maxSessionsCap      = 10_000
	minSessionIdleLimit = time.Second
)

// pluginNamePattern is the form of a catalog name: what reads well in a URL
// and a JSON document.
var pluginNamePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// options is the module's config section, modules.mcp. The defaults here
// match configs/nexus.yaml, which documents each key.
type options struct {
	// Catalog lists the plugins that users may provision servers of.
	Catalog []catalogEntry `koanf:"catalog"`
	// StartTimeout bounds the launch of a plugin process, from exec to the
	// end of the go-plugin handshake and its configuration.
	StartTimeout time.Duration `koanf:"start_timeout"`
	// HealthInterval is the time between two health checks of a running server.
	HealthInterval time.Duration `koanf:"health_interval"`
	// HealthTimeout bounds one health check.
	HealthTimeout time.Duration `koanf:"health_timeout"`
	// HealthFailures is how many failed checks in a row make the supervisor
	// kill the process and restart it.
	HealthFailures int `koanf:"health_failures"`
	// BackoffBase is the delay before the first restart after a crash; it
	// doubles with each restart in CrashLoopWindow, up to BackoffMax.
	BackoffBase time.Duration `koanf:"backoff_base"`
	BackoffMax  time.Duration `koanf:"backoff_max"`
	// CrashLoopRestarts restarts within CrashLoopWindow put a server in
	// crash_loop, where it stays until its owner restarts or reconfigures it.
	CrashLoopRestarts int           `koanf:"crash_loop_restarts"`
	CrashLoopWindow   time.Duration `koanf:"crash_loop_window"`
	// StopGrace is how long a stopping plugin may take to exit after it was
	// asked to, before its process group is killed.
	StopGrace time.Duration `koanf:"stop_grace"`
	// IdleTimeout stops a server that got no MCP request for this long; the
	// next request starts it again. Zero keeps servers running.
	IdleTimeout time.Duration `koanf:"idle_timeout"`
	// LogLines is the number of stderr lines kept per server for GET …/logs.
	LogLines int `koanf:"log_lines"`
	// AllowedOrigins are the browser origins, such as https://app.example.com,
	// that may call the MCP endpoint. A request without an Origin header is
	// always allowed, because it does not come from a browser page.
	AllowedOrigins []string `koanf:"allowed_origins"`
	// RequestTimeout bounds how long a POST to the MCP endpoint waits for the
	// plugin's responses, cold start included.
	RequestTimeout time.Duration `koanf:"request_timeout"`
	// SessionIdleTimeout ends an MCP session that got no request for this long.
	SessionIdleTimeout time.Duration `koanf:"session_idle_timeout"`
	// MaxSessions is the number of MCP sessions that one server holds at once.
	MaxSessions int `koanf:"max_sessions_per_server"`
}

// catalogEntry is one plugin that the operator installed.
type catalogEntry struct {
	// Name is the plugin's name in the API, such as "notes".
	Name string `koanf:"name"`
	// Path is the plugin binary.
	Path string `koanf:"path"`
	// SHA256 is the hex SHA-256 of the binary, checked before every start.
	SHA256 string `koanf:"sha256"`
	// Args are extra command-line arguments of every process of the plugin.
	Args []string `koanf:"args"`
	// Config holds config keys that the operator fixes for every server of
	// the plugin, such as the command of the stdio bridge. They override the
	// user's config, and a user may not set them.
	Config map[string]any `koanf:"config"`
}

func defaultOptions() options {
	return options{
		Catalog:            []catalogEntry{},
		StartTimeout:       10 * time.Second,
		HealthInterval:     10 * time.Second,
		HealthTimeout:      2 * time.Second,
		HealthFailures:     3,
		BackoffBase:        time.Second,
		BackoffMax:         time.Minute,
		CrashLoopRestarts:  5,
		CrashLoopWindow:    10 * time.Minute,
		StopGrace:          5 * time.Second,
		IdleTimeout:        15 * time.Minute,
		LogLines:           500,
		AllowedOrigins:     []string{},
		RequestTimeout:     2 * time.Minute,
		SessionIdleTimeout: time.Hour,
		MaxSessions:        32,
	}
}

// validate checks ranges; each error names its key under modules.mcp.
func (o options) validate() error {
	var problems []error
	check := func(ok bool, key, message string) {
		if !ok {
			problems = append(problems, fmt.Errorf("modules.mcp.%s: %s", key, message))
		}
	}

	check(o.StartTimeout >= 100*time.Millisecond, "start_timeout", "must be at least 100ms")
	check(o.HealthInterval >= minHealthInterval, "health_interval", "must be at least "+minHealthInterval.String())
	check(o.HealthTimeout > 0 && o.HealthTimeout <= o.HealthInterval, "health_timeout",
		"must be above 0s and at most health_interval")
	check(o.HealthFailures >= 1, "health_failures", "must be at least 1")
	check(o.BackoffBase >= minBackoffBase, "backoff_base", "must be at least "+minBackoffBase.String())
	check(o.BackoffMax >= o.BackoffBase, "backoff_max", "must be at least backoff_base")
	check(o.CrashLoopRestarts >= 1, "crash_loop_restarts", "must be at least 1")
	check(o.CrashLoopWindow > 0, "crash_loop_window", "must be above 0s")
	check(o.StopGrace >= 0 && o.StopGrace <= maxStopGrace, "stop_grace", "must be between 0s and "+maxStopGrace.String())
	check(o.IdleTimeout == 0 || o.IdleTimeout >= time.Second, "idle_timeout", "must be 0s (never) or at least 1s")
	check(o.LogLines >= 1 && o.LogLines <= maxLogLines, "log_lines", fmt.Sprintf("must be between 1 and %d", maxLogLines))
	check(o.RequestTimeout >= time.Second, "request_timeout", "must be at least 1s")
	check(o.SessionIdleTimeout >= minSessionIdleLimit, "session_idle_timeout", "must be at least "+minSessionIdleLimit.String())
	check(o.MaxSessions >= 1 && o.MaxSessions <= maxSessionsCap, "max_sessions_per_server",
		fmt.Sprintf("must be between 1 and %d", maxSessionsCap))

	for i, origin := range o.AllowedOrigins {
		if err := checkOrigin(origin); err != nil {
			problems = append(problems, fmt.Errorf("modules.mcp.allowed_origins[%d]: %w", i, err))
		}
	}

	seen := map[string]bool{}
	for i, entry := range o.Catalog {
		key := fmt.Sprintf("modules.mcp.catalog[%d]", i)
		if err := entry.validate(); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", key, err))
		}
		if seen[entry.Name] {
			problems = append(problems, fmt.Errorf("%s.name: plugin %q is listed twice", key, entry.Name))
		}
		seen[entry.Name] = true
	}
	return errors.Join(problems...)
}

func (e catalogEntry) validate() error {
	var problems []error
	if !pluginNamePattern.MatchString(e.Name) {
		problems = append(problems, fmt.Errorf("name: %q must be 1 to 63 lowercase letters, digits and dashes, starting with a letter", e.Name))
	}
	if e.Path == "" || !filepath.IsAbs(e.Path) {
		problems = append(problems, fmt.Errorf("path: %q must be an absolute path to the plugin binary", e.Path))
	}
	if _, err := e.checksum(); err != nil {
		problems = append(problems, fmt.Errorf("sha256: %w", err))
	}
	return errors.Join(problems...)
}

// checksum decodes SHA256.
func (e catalogEntry) checksum() ([]byte, error) {
	sum, err := hex.DecodeString(strings.TrimSpace(e.SHA256))
	if err != nil || len(sum) != 32 {
		return nil, fmt.Errorf("%q must be 64 hex digits, as sha256sum prints them", e.SHA256)
	}
	return sum, nil
}

// checkOrigin accepts a serialized origin: a scheme, a host and an optional
// port, without a path.
func checkOrigin(origin string) error {
	parsed, err := url.Parse(origin)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" ||
		(parsed.Path != "" && parsed.Path != "/") || parsed.RawQuery != "" || parsed.User != nil {
		return fmt.Errorf("%q must be an origin such as https://app.example.com", origin)
	}
	return nil
}

// allowsOrigin reports whether a request with the Origin header value may
// call the MCP endpoint. An empty value means the header was absent.
func (o options) allowsOrigin(origin string) bool {
	if origin == "" {
		return true
	}
	origin = strings.TrimSuffix(origin, "/")
	for _, allowed := range o.AllowedOrigins {
		if strings.EqualFold(strings.TrimSuffix(allowed, "/"), origin) {
			return true
		}
	}
	return false
}
