package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// Values of SMTPConfig.Security.
const (
	SecurityStartTLS = "starttls"
	SecurityTLS      = "tls"
	SecurityNone     = "none"
)

// SMTPConfig configures NewSMTPSender.
type SMTPConfig struct {
	Host string
	Port int
	// Username turns on SMTP AUTH (PLAIN, or LOGIN when the server does not
	// offer PLAIN). Empty means no authentication.
	Username string
	Password string
	// Security is "starttls" (plain connection upgraded with STARTTLS, which
	// the server must offer), "tls" (TLS from the first byte, usually port
	// 465) or "none" (no encryption).
	Security string
	// From is the sender, "addr@example.com" or "Name <addr@example.com>".
	From string
	// Timeout bounds one Send from dialing to QUIT.
	Timeout time.Duration
	// TLSServerName is the name the server certificate must have. Empty
	// means Host.
	TLSServerName string
	// RootCAFile is an optional PEM bundle of CA certificates to trust in
	// place of the system roots, for private CAs and tests.
	RootCAFile string
}

// LogValue keeps the password out of logs when a config is logged whole.
func (c SMTPConfig) LogValue() slog.Value {
	password := ""
	if c.Password != "" {
		password = "[redacted]"
	}
	return slog.GroupValue(
		slog.String("host", c.Host),
		slog.Int("port", c.Port),
		slog.String("username", c.Username),
		slog.String("password", password),
		slog.String("security", c.Security),
		slog.String("from", c.From),
		slog.Duration("timeout", c.Timeout),
		slog.String("tls_server_name", c.TLSServerName),
		slog.String("root_ca_file", c.RootCAFile))
}

// Step names the part of an SMTP session that failed.
type Step string

// Steps of an SMTP session, in order.
const (
	// StepConnect covers the TCP connection, the server greeting and EHLO.
	StepConnect Step = "connect"
	// StepTLS covers the implicit TLS handshake or STARTTLS, including a
	// server that does not offer STARTTLS.
	StepTLS Step = "tls"
	// StepAuth covers SMTP AUTH.
	StepAuth Step = "auth"
	// StepSend covers MAIL FROM, RCPT TO and DATA.
	StepSend Step = "send"
)

// SendError is the error of an SMTP send that failed. Err is the cause and
// wraps context.DeadlineExceeded when the timeout ended the session.
type SendError struct {
	Step Step
	// Addr is the server as "host:port".
	Addr string
	Err  error
}

func (e *SendError) Error() string {
	var action string
	switch e.Step {
	case StepConnect:
		action = "connecting to"
	case StepTLS:
		action = "TLS handshake with"
	case StepAuth:
		action = "authentication at"
	default:
		action = "sending mail through"
	}
	return fmt.Sprintf("smtp %s %s failed: %v", action, e.Addr, e.Err)
}

func (e *SendError) Unwrap() error { return e.Err }

// NewSMTPSender checks cfg and returns a Sender that opens one SMTP session
// per message. It returns an error naming the first invalid field. Invalid
// are an empty Host or one with a port, a Port outside 1 to 65535, an unknown
// Security, an unparsable From, a Timeout that is not positive, and a
// Password without a Username. So are a Username with Security "none"
// towards a host other than localhost, which would send the password in
// clear text, and a RootCAFile that cannot be read or contains no certificate.
func NewSMTPSender(cfg SMTPConfig) (Sender, error) {
	if err := validateSMTPConfig(cfg); err != nil {
		return nil, fmt.Errorf("smtp config: %w", err)
	}

	tlsConfig, err := newTLSConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("smtp config: %w", err)
	}

	helloName, err := os.Hostname()
	if err != nil || helloName == "" {
		helloName = "localhost"
	}

	return &smtpSender{
		cfg:       cfg,
		addr:      net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)),
		tlsConfig: tlsConfig,
		helloName: helloName,
	}, nil
}

func validateSMTPConfig(cfg SMTPConfig) error {
	if strings.TrimSpace(cfg.Host) == "" {
		return errors.New("host is empty")
	}
	if _, _, err := net.SplitHostPort(cfg.Host); err == nil {
		return fmt.Errorf("host %q must not include a port (set Port instead)", cfg.Host)
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return fmt.Errorf("port %d is out of range [1, 65535]", cfg.Port)
	}
	if !slices.Contains([]string{SecurityStartTLS, SecurityTLS, SecurityNone}, cfg.Security) {
		return fmt.Errorf("security %q is invalid, expected %q, %q or %q", cfg.Security, SecurityStartTLS, SecurityTLS, SecurityNone)
	}
	if _, err := netmail.ParseAddress(cfg.From); err != nil {
		return fmt.Errorf("from address %q is invalid: %w", cfg.From, err)
	}
	if cfg.Timeout <= 0 {
		return fmt.Errorf("timeout %s is not positive", cfg.Timeout)
	}
	if cfg.Password != "" && cfg.Username == "" {
		return errors.New("password is set without a username")
	}
	if cfg.Username != "" && cfg.Security == SecurityNone && !isLocalhost(cfg.Host) {
		return fmt.Errorf("username is set with security %q, which would send the password to %s in clear text, so use %q or %q",
			SecurityNone, cfg.Host, SecurityStartTLS, SecurityTLS)
	}
	return nil
}

// isLocalhost matches the hosts to which go-mail's PLAIN and LOGIN
// mechanisms send credentials without TLS.
func isLocalhost(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

func newTLSConfig(cfg SMTPConfig) (*tls.Config, error) {
	tlsConfig := &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
	if cfg.TLSServerName != "" {
		tlsConfig.ServerName = cfg.TLSServerName
	}

	if cfg.RootCAFile != "" {
		pem, err := os.ReadFile(cfg.RootCAFile)
		if err != nil {
			return nil, fmt.Errorf("read root CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("root CA file %s contains no PEM certificate", cfg.RootCAFile)
		}
		tlsConfig.RootCAs = pool
	}
	return tlsConfig, nil
}

type smtpSender struct {
	cfg       SMTPConfig
	addr      string
	tlsConfig *tls.Config
	helloName string
}

// Send delivers m in one SMTP session bounded by the configured timeout and
// by ctx. A message that cannot be composed (an invalid recipient, a subject
// with a line break) returns a plain error. A failed session returns a
// *SendError naming the step.
func (s *smtpSender) Send(ctx context.Context, m Message) error {
	msg, err := s.compose(m)
	if err != nil {
		return fmt.Errorf("compose mail to %q: %w", m.To, err)
	}

	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()

	client, err := s.open(ctx)
	if err != nil {
		return err
	}
	defer client.Close()

	// A fresh go-mail client per send gives SendWithSMTPClient a connection
	// timeout that ends with ctx, because it resets the connection deadline.
	deadline, _ := ctx.Deadline()
	sender, err := gomail.NewClient(s.cfg.Host,
		gomail.WithPort(s.cfg.Port), gomail.WithTimeout(time.Until(deadline)), gomail.WithoutNoop())
	if err != nil {
		return s.fail(ctx, StepSend, err)
	}
	if err := sender.SendWithSMTPClient(client, msg); err != nil {
		return s.fail(ctx, StepSend, err)
	}

	// The server has accepted the message, so a failed QUIT is not reported,
	// because the caller would then send the mail twice.
	_ = client.Quit()
	return nil
}

func (s *smtpSender) compose(m Message) (*gomail.Msg, error) {
	if strings.ContainsAny(m.Subject, "\r\n") {
		return nil, errors.New("subject contains a line break")
	}

	msg := gomail.NewMsg()
	if err := msg.From(s.cfg.From); err != nil {
		return nil, fmt.Errorf("from address: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("recipient: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	return msg, nil
}

// open dials the server and runs the greeting, EHLO, TLS and AUTH steps. The
// connection's deadline is ctx's.
func (s *smtpSender) open(ctx context.Context) (*smtp.Client, error) {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, s.fail(ctx, StepConnect, err)
	}

	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		_ = conn.Close()
		return nil, s.fail(ctx, StepConnect, err)
	}
	// Ending ctx moves the deadline into the past, which fails pending reads
	// and writes at once. The cancel at the end of Send also runs it, on a
	// closed connection, where it has no effect.
	context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })

	client, err := s.handshake(ctx, conn)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return client, nil
}

func (s *smtpSender) handshake(ctx context.Context, conn net.Conn) (*smtp.Client, error) {
	if s.cfg.Security == SecurityTLS {
		tlsConn := tls.Client(conn, s.tlsConfig)
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			return nil, s.fail(ctx, StepTLS, err)
		}
		conn = tlsConn
	}

	client, err := smtp.NewClient(conn, s.cfg.Host)
	if err != nil {
		return nil, s.fail(ctx, StepConnect, fmt.Errorf("read greeting: %w", err))
	}
	if err := client.Hello(s.helloName); err != nil {
		return nil, s.fail(ctx, StepConnect, err)
	}

	if s.cfg.Security == SecurityStartTLS {
		if offered, _ := client.Extension("STARTTLS"); !offered {
			return nil, s.fail(ctx, StepTLS, errors.New("server does not offer STARTTLS"))
		}
		if err := client.StartTLS(s.tlsConfig); err != nil {
			return nil, s.fail(ctx, StepTLS, err)
		}
	}

	if s.cfg.Username != "" {
		if err := s.authenticate(client); err != nil {
			return nil, s.fail(ctx, StepAuth, err)
		}
	}
	return client, nil
}

// authenticate runs SMTP AUTH with PLAIN, or with LOGIN when the server does
// not offer PLAIN. Both mechanisms send the password only over TLS or to
// localhost.
func (s *smtpSender) authenticate(client *smtp.Client) error {
	offered, mechanisms := client.Extension("AUTH")
	if !offered {
		return errors.New("server does not offer SMTP AUTH")
	}

	var auth smtp.Auth
	switch fields := strings.Fields(strings.ToUpper(mechanisms)); {
	case slices.Contains(fields, "PLAIN"):
		auth = smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, s.cfg.Host, false)
	case slices.Contains(fields, "LOGIN"):
		auth = smtp.LoginAuth(s.cfg.Username, s.cfg.Password, s.cfg.Host, false)
	default:
		return fmt.Errorf("server offers neither PLAIN nor LOGIN (offers %q)", mechanisms)
	}

	return client.Auth(auth)
}

// fail wraps err as a *SendError, adding ctx's error when the context ended
// the session, so that the timeout shows in the message and in errors.Is.
func (s *smtpSender) fail(ctx context.Context, step Step, err error) error {
	ctxErr := ctx.Err()
	if ctxErr == nil {
		// The connection's deadline is ctx's, so its I/O can time out a
		// moment before ctx's own timer marks ctx as done.
		if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
			ctxErr = context.DeadlineExceeded
		}
	}
	if ctxErr != nil && !errors.Is(err, ctxErr) {
		err = fmt.Errorf("%w: %w", ctxErr, err)
	}
	return &SendError{Step: step, Addr: s.addr, Err: err}
}
