package auth

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nexus-suite/nexus/modules/auth/mail"
	"github.com/nexus-suite/nexus/modules/auth/password"
)

// options is the module's config section, modules.auth. The defaults here
// match configs/nexus.yaml, which documents each key.
type options struct {
	// PublicURL is the server's address as users reach it, for links in
	// mail; empty means http:// and server.listen.
	PublicURL string        `koanf:"public_url"`
	Argon2    argon2Options `koanf:"argon2"`

	VerificationTTL time.Duration `koanf:"verification_ttl"`
	ResetTTL        time.Duration `koanf:"reset_ttl"`
	// MailPerAddress caps verification and reset mails to one address per MailWindow.
	MailPerAddress int           `koanf:"mail_per_address"`
	MailWindow     time.Duration `koanf:"mail_window"`

	LoginMaxFailures   int           `koanf:"login_max_failures"`
	LoginFailureWindow time.Duration `koanf:"login_failure_window"`
	LockoutDuration    time.Duration `koanf:"lockout_duration"`

	// SessionTTL is the lifetime of a session and its refresh tokens.
	SessionTTL time.Duration `koanf:"session_ttl"`
	// RefreshReuseWindow is how long a used refresh token still returns
	// the same successor pair instead of ending the session.
	RefreshReuseWindow time.Duration `koanf:"refresh_reuse_window"`

	Mail mailOptions `koanf:"mail"`

	// Clients are the OAuth clients, keyed by client id.
	Clients map[string]clientOptions `koanf:"clients"`
	Device  deviceOptions            `koanf:"device"`

	// Providers are the social sign-in providers, keyed by provider id.
	Providers map[string]providerOptions `koanf:"providers"`
	// OAuthFlowTTL bounds a browser sign-in through a provider, from its
	// start to the app's code exchange.
	OAuthFlowTTL time.Duration `koanf:"oauth_flow_ttl"`
}

// providerOptions is one social sign-in provider under modules.auth.providers.
type providerOptions struct {
	// Type is "github" (OAuth 2.0 and GitHub's user API), "oidc" (any
	// OpenID Connect provider, found by discovery) or "google" (OIDC with
	// Google's issuer).
	Type         string   `koanf:"type"`
	Name         string   `koanf:"name"`
	ClientID     string   `koanf:"client_id"`
	ClientSecret string   `koanf:"client_secret"`
	Issuer       string   `koanf:"issuer"`
	Scopes       []string `koanf:"scopes"`
	// AuthURL, TokenURL and APIURL replace GitHub's public endpoints, for
	// GitHub Enterprise Server.
	AuthURL  string `koanf:"auth_url"`
	TokenURL string `koanf:"token_url"`
	APIURL   string `koanf:"api_url"`
}

// clientOptions is one OAuth client under modules.auth.clients.
type clientOptions struct {
	// Name is shown to the user who approves the client's request.
	Name string `koanf:"name"`
	// Type is "public" (no secret, such as a CLI) or "confidential".
	Type string `koanf:"type"`
	// Secret authenticates a confidential client; empty for public ones.
	Secret       string   `koanf:"secret"`
	RedirectURIs []string `koanf:"redirect_uris"`
	// Grants are the grant types the client may use: device_code and refresh_token.
	Grants []string `koanf:"grants"`
}

// deviceOptions configure the device authorization grant (RFC 8628).
type deviceOptions struct {
	// CodeTTL is the lifetime of a device code and its user code.
	CodeTTL time.Duration `koanf:"code_ttl"`
	// Interval is the polling interval a new device code starts with.
	Interval time.Duration `koanf:"interval"`
	// MaxWrongCodes bounds the unknown user codes that one IP may enter
	// on the verification page per WrongCodeWindow.
	MaxWrongCodes   int           `koanf:"max_wrong_codes"`
	WrongCodeWindow time.Duration `koanf:"wrong_code_window"`
}

// Grant types a client may be allowed in modules.auth.clients.<id>.grants.
const (
	grantDeviceCode        = "device_code"
	grantRefreshToken      = "refresh_token"
	grantAuthorizationCode = "authorization_code"
)

// googleIssuer is the OpenID Connect issuer of Google accounts.
const googleIssuer = "https://accounts.google.com"

// cliClientID is the public client of the nexus command's login.
const cliClientID = "nexus-cli"

type argon2Options struct {
	MemoryKiB   uint32 `koanf:"memory_kib"`
	Iterations  uint32 `koanf:"iterations"`
	Parallelism uint8  `koanf:"parallelism"`
	// MaxConcurrent bounds the hashes computed at once; 0 means twice the CPUs.
	MaxConcurrent int `koanf:"max_concurrent"`
}

type mailOptions struct {
	// Sender is "log" (print each message and its link) or "smtp".
	Sender string      `koanf:"sender"`
	From   string      `koanf:"from"`
	SMTP   smtpOptions `koanf:"smtp"`
}

type smtpOptions struct {
	Host          string        `koanf:"host"`
	Port          int           `koanf:"port"`
	Username      string        `koanf:"username"`
	Password      string        `koanf:"password"`
	Security      string        `koanf:"security"`
	Timeout       time.Duration `koanf:"timeout"`
	TLSServerName string        `koanf:"tls_server_name"`
	RootCAFile    string        `koanf:"root_ca_file"`
}

func defaultOptions() options {
	params := password.DefaultParams()
	return options{
		PublicURL:          "",
		Argon2:             argon2Options{MemoryKiB: params.MemoryKiB, Iterations: params.Iterations, Parallelism: params.Parallelism},
		VerificationTTL:    24 * time.Hour,
		ResetTTL:           time.Hour,
		MailPerAddress:     3,
		MailWindow:         time.Hour,
		LoginMaxFailures:   5,
		LoginFailureWindow: 15 * time.Minute,
		LockoutDuration:    15 * time.Minute,
		SessionTTL:         30 * 24 * time.Hour,
		RefreshReuseWindow: 10 * time.Second,
		Mail: mailOptions{
			Sender: "log",
			From:   "Nexus <no-reply@nexus.invalid>",
			SMTP:   smtpOptions{Port: 587, Security: "starttls", Timeout: 10 * time.Second},
		},
		Clients: map[string]clientOptions{
			cliClientID: {
				Name: "Nexus CLI", Type: "public", RedirectURIs: []string{},
				Grants: []string{grantDeviceCode, grantRefreshToken},
			},
		},
		Device:       deviceOptions{CodeTTL: 10 * time.Minute, Interval: 5 * time.Second, MaxWrongCodes: 10, WrongCodeWindow: 15 * time.Minute},
		Providers:    map[string]providerOptions{},
		OAuthFlowTTL: 10 * time.Minute,
	}
}

// passwordParams returns the argon2id parameters new hashes use.
func (o options) passwordParams() password.Params {
	params := password.DefaultParams()
	params.MemoryKiB = o.Argon2.MemoryKiB
	params.Iterations = o.Argon2.Iterations
	params.Parallelism = o.Argon2.Parallelism
	return params
}

// validate checks ranges; each error names its key under modules.auth.
func (o options) validate() error {
	var problems []error
	check := func(ok bool, key, message string) {
		if !ok {
			problems = append(problems, fmt.Errorf("modules.auth.%s: %s", key, message))
		}
	}

	if o.PublicURL != "" {
		parsed, err := url.Parse(o.PublicURL)
		check(err == nil && (parsed.Scheme == "http" || parsed.Scheme == "https") && parsed.Host != "",
			"public_url", "must be empty or an absolute http or https URL")
	}
	if err := o.passwordParams().Validate(); err != nil {
		problems = append(problems, fmt.Errorf("modules.auth.argon2: %w", err))
	}
	check(o.Argon2.MaxConcurrent >= 0 && o.Argon2.MaxConcurrent <= 1024, "argon2.max_concurrent", "must be between 0 and 1024")
	check(o.VerificationTTL >= time.Minute, "verification_ttl", "must be at least 1m")
	check(o.ResetTTL >= time.Minute, "reset_ttl", "must be at least 1m")
	check(o.MailPerAddress >= 1, "mail_per_address", "must be at least 1")
	check(o.MailWindow >= time.Minute, "mail_window", "must be at least 1m")
	check(o.LoginMaxFailures >= 1 && o.LoginMaxFailures <= 100, "login_max_failures", "must be between 1 and 100")
	check(o.LoginFailureWindow >= time.Second, "login_failure_window", "must be at least 1s")
	check(o.LockoutDuration >= time.Second, "lockout_duration", "must be at least 1s")
	check(o.SessionTTL >= time.Hour, "session_ttl", "must be at least 1h")
	check(o.RefreshReuseWindow >= 0 && o.RefreshReuseWindow <= time.Minute, "refresh_reuse_window", "must be between 0s and 1m")
	check(o.Mail.Sender == "log" || o.Mail.Sender == "smtp", "mail.sender", `must be "log" or "smtp"`)
	check(o.Mail.From != "", "mail.from", "must not be empty")
	if o.Mail.Sender == "smtp" {
		check(o.Mail.SMTP.Host != "", "mail.smtp.host", "must be set when mail.sender is smtp")
		check(o.Mail.SMTP.Port >= 1 && o.Mail.SMTP.Port <= 65535, "mail.smtp.port", "must be between 1 and 65535")
		check(o.Mail.SMTP.Security == "starttls" || o.Mail.SMTP.Security == "tls" || o.Mail.SMTP.Security == "none",
			"mail.smtp.security", `must be "starttls", "tls" or "none"`)
		check(o.Mail.SMTP.Timeout > 0, "mail.smtp.timeout", "must be positive")
	}
	problems = append(problems, o.validateClients()...)
	check(o.Device.CodeTTL >= time.Minute && o.Device.CodeTTL <= time.Hour, "device.code_ttl", "must be between 1m and 1h")
	check(o.Device.Interval >= time.Second && o.Device.Interval <= time.Minute && o.Device.Interval%time.Second == 0,
		"device.interval", "must be whole seconds between 1s and 1m")
	check(o.Device.MaxWrongCodes >= 1, "device.max_wrong_codes", "must be at least 1")
	check(o.Device.WrongCodeWindow >= time.Minute, "device.wrong_code_window", "must be at least 1m")
	check(o.OAuthFlowTTL >= time.Minute && o.OAuthFlowTTL <= time.Hour, "oauth_flow_ttl", "must be between 1m and 1h")
	problems = append(problems, o.validateProviders()...)
	return errors.Join(problems...)
}

func (o options) validateProviders() []error {
	var problems []error
	absolute := func(raw string) bool {
		parsed, err := url.Parse(raw)
		return err == nil && (parsed.Scheme == "https" || parsed.Scheme == "http") && parsed.Host != ""
	}
	for id, provider := range o.Providers {
		key := "modules.auth.providers." + id
		if !validClientID(id) || strings.Contains(id, ":") {
			problems = append(problems, fmt.Errorf("%s: a provider id must be 1 to 64 of a-z, 0-9, '-', '_' and '.'", key))
		}
		if provider.ClientID == "" {
			problems = append(problems, fmt.Errorf("%s.client_id: must not be empty", key))
		}
		if provider.ClientSecret == "" {
			problems = append(problems, fmt.Errorf("%s.client_secret: must not be empty; prefer setting it through the environment", key))
		}
		switch provider.Type {
		case "google":
			if provider.Issuer != "" && provider.Issuer != googleIssuer {
				problems = append(problems, fmt.Errorf("%s.issuer: a google provider uses %s; leave issuer empty or use type oidc", key, googleIssuer))
			}
		case "oidc":
			if !absolute(provider.Issuer) {
				problems = append(problems, fmt.Errorf("%s.issuer: must be the provider's absolute issuer URL, such as https://accounts.google.com", key))
			}
		case "github":
			for name, value := range map[string]string{"auth_url": provider.AuthURL, "token_url": provider.TokenURL, "api_url": provider.APIURL} {
				if value != "" && !absolute(value) {
					problems = append(problems, fmt.Errorf("%s.%s: must be empty or an absolute http or https URL", key, name))
				}
			}
		default:
			problems = append(problems, fmt.Errorf("%s.type: must be \"github\", \"google\" or \"oidc\"", key))
		}
	}
	return problems
}

func (o options) validateClients() []error {
	var problems []error
	for id, client := range o.Clients {
		key := "modules.auth.clients." + id
		if !validClientID(id) {
			problems = append(problems, fmt.Errorf("%s: a client id must be 1 to 64 of a-z, 0-9, '-', '_' and '.'", key))
		}
		if strings.TrimSpace(client.Name) == "" {
			problems = append(problems, fmt.Errorf("%s.name: must not be empty", key))
		}
		switch client.Type {
		case "public":
			if client.Secret != "" {
				problems = append(problems, fmt.Errorf("%s.secret: a public client has no secret; remove it or make the type confidential", key))
			}
		case "confidential":
			if len(client.Secret) < 16 {
				problems = append(problems, fmt.Errorf("%s.secret: a confidential client needs a secret of at least 16 characters", key))
			}
		default:
			problems = append(problems, fmt.Errorf("%s.type: must be \"public\" or \"confidential\"", key))
		}
		for _, grant := range client.Grants {
			if grant != grantDeviceCode && grant != grantRefreshToken && grant != grantAuthorizationCode {
				problems = append(problems, fmt.Errorf("%s.grants: unknown grant %q (known: %s, %s, %s)",
					key, grant, grantDeviceCode, grantRefreshToken, grantAuthorizationCode))
			}
		}
		for _, raw := range client.RedirectURIs {
			parsed, err := url.Parse(raw)
			if err != nil || parsed.Scheme == "" || parsed.Fragment != "" {
				problems = append(problems, fmt.Errorf("%s.redirect_uris: %q must be an absolute URI without a fragment", key, raw))
			}
		}
	}
	return problems
}

func validClientID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func (o options) smtpConfig() mail.SMTPConfig {
	return mail.SMTPConfig{
		Host: o.Mail.SMTP.Host, Port: o.Mail.SMTP.Port,
		Username: o.Mail.SMTP.Username, Password: o.Mail.SMTP.Password,
		Security: o.Mail.SMTP.Security, From: o.Mail.From, Timeout: o.Mail.SMTP.Timeout,
		TLSServerName: o.Mail.SMTP.TLSServerName, RootCAFile: o.Mail.SMTP.RootCAFile,
	}
}
