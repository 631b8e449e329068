package mail_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/modules/auth/mail"
	"github.com/nexus-suite/nexus/modules/auth/mail/mailtest"
)

const (
	testFrom     = "Nexus <no-reply@nexus.test>"
	testUsername = "nexus"
	testPassword = "correct-horse-battery-staple"
	testTimeout  = 5 * time.Second
)

func verificationMessage(to string) mail.Message {
	return mail.Message{
		To:      to,
		Subject: "Verify your email address",
		Text:    "Open this link to verify your email address:\n\nhttp://127.0.0.1:8080/v1/auth/verify?token=abc123\n",
	}
}

func mustSender(t *testing.T, cfg mail.SMTPConfig) mail.Sender {
	t.Helper()
	sender, err := mail.NewSMTPSender(cfg)
	if err != nil {
		t.Fatalf("NewSMTPSender: %v", err)
	}
	return sender
}

func configFor(server *mailtest.Server, security string) mail.SMTPConfig {
	return mail.SMTPConfig{
		Host:       server.SMTPHost,
		Port:       server.SMTPPort,
		Security:   security,
		From:       testFrom,
		Timeout:    testTimeout,
		RootCAFile: server.CAFile,
	}
}

// sendError asserts that err is a *mail.SendError and returns it.
func sendError(t *testing.T, err error) *mail.SendError {
	t.Helper()
	var sendErr *mail.SendError
	if !errors.As(err, &sendErr) {
		t.Fatalf("Send error = %v (%T), want a *mail.SendError", err, err)
	}
	return sendErr
}

func TestSMTPPlainDelivery(t *testing.T) {
	t.Parallel()
	server := mailtest.Start(t)
	sender := mustSender(t, configFor(server, mail.SecurityNone))

	sent := verificationMessage("ada@example.com")
	if err := sender.Send(context.Background(), sent); err != nil {
		t.Fatalf("Send: %v", err)
	}

	got := server.WaitForMessage(t, "ada@example.com")
	if got.Subject != sent.Subject {
		t.Errorf("Subject = %q, want %q", got.Subject, sent.Subject)
	}
	if !strings.Contains(got.Text, "http://127.0.0.1:8080/v1/auth/verify?token=abc123") {
		t.Errorf("Text = %q, want it to contain the link", got.Text)
	}
	if got.From != "no-reply@nexus.test" {
		t.Errorf("From = %q, want no-reply@nexus.test", got.From)
	}
	if got.Username != "" {
		t.Errorf("Username = %q, want empty without SMTP AUTH", got.Username)
	}
}

func TestSMTPNonASCII(t *testing.T) {
	t.Parallel()
	server := mailtest.Start(t)
	sender := mustSender(t, configFor(server, mail.SecurityNone))

	sent := mail.Message{To: "Zoë <zoe@example.com>", Subject: "Bestätigen Sie Ihre Adresse ✓", Text: "Grüße, 世界\nhttp://127.0.0.1/x?token=a%20b\n"}
	if err := sender.Send(context.Background(), sent); err != nil {
		t.Fatalf("Send: %v", err)
	}

	got := server.WaitForMessage(t, "zoe@example.com")
	if got.Subject != sent.Subject {
		t.Errorf("Subject = %q, want %q", got.Subject, sent.Subject)
	}
	// Mail bodies travel with CRLF line endings.
	if text := strings.ReplaceAll(got.Text, "\r\n", "\n"); text != sent.Text {
		t.Errorf("Text = %q, want %q", got.Text, sent.Text)
	}
}

func TestSMTPStartTLSWithAuth(t *testing.T) {
	t.Parallel()
	server := mailtest.Start(t, mailtest.WithSTARTTLS(), mailtest.WithAuth(testUsername, testPassword))
	cfg := configFor(server, mail.SecurityStartTLS)
	cfg.Username, cfg.Password = testUsername, testPassword
	sender := mustSender(t, cfg)

	if err := sender.Send(context.Background(), verificationMessage("grace@example.com")); err != nil {
		t.Fatalf("Send: %v", err)
	}

	got := server.WaitForMessage(t, "grace@example.com")
	if got.Username != testUsername {
		t.Errorf("Username = %q, want %q", got.Username, testUsername)
	}
	if !strings.Contains(got.Text, "token=abc123") {
		t.Errorf("Text = %q, want it to contain the link", got.Text)
	}
}

func TestSMTPWrongPassword(t *testing.T) {
	t.Parallel()
	server := mailtest.Start(t, mailtest.WithSTARTTLS(), mailtest.WithAuth(testUsername, testPassword))
	cfg := configFor(server, mail.SecurityStartTLS)
	cfg.Username, cfg.Password = testUsername, "wrong-password-123"
	sender := mustSender(t, cfg)

	err := sender.Send(context.Background(), verificationMessage("grace@example.com"))

	sendErr := sendError(t, err)
	if sendErr.Step != mail.StepAuth {
		t.Errorf("Step = %q, want %q (error: %v)", sendErr.Step, mail.StepAuth, err)
	}
	if !strings.Contains(err.Error(), server.SMTPHost) {
		t.Errorf("error %q does not name the host %s", err, server.SMTPHost)
	}
	if strings.Contains(err.Error(), cfg.Password) {
		t.Errorf("error %q contains the password", err)
	}
	if messages := server.Messages(t); len(messages) != 0 {
		t.Errorf("server holds %d messages, want 0", len(messages))
	}
}

func TestSMTPAuthRequiredWithoutUsername(t *testing.T) {
	t.Parallel()
	server := mailtest.Start(t, mailtest.WithSTARTTLS(), mailtest.WithAuth(testUsername, testPassword))
	sender := mustSender(t, configFor(server, mail.SecurityStartTLS))

	err := sender.Send(context.Background(), verificationMessage("grace@example.com"))

	if sendErr := sendError(t, err); sendErr.Step != mail.StepSend {
		t.Errorf("Step = %q, want %q (error: %v)", sendErr.Step, mail.StepSend, err)
	}
}

func TestSMTPImplicitTLS(t *testing.T) {
	t.Parallel()
	server := mailtest.Start(t, mailtest.WithImplicitTLS(), mailtest.WithAuth(testUsername, testPassword))
	cfg := configFor(server, mail.SecurityTLS)
	cfg.Username, cfg.Password = testUsername, testPassword
	sender := mustSender(t, cfg)

	if err := sender.Send(context.Background(), verificationMessage("linus@example.com")); err != nil {
		t.Fatalf("Send: %v", err)
	}

	got := server.WaitForMessage(t, "linus@example.com")
	if got.Username != testUsername {
		t.Errorf("Username = %q, want %q", got.Username, testUsername)
	}
}

func TestSMTPStartTLSNotOffered(t *testing.T) {
	t.Parallel()
	server := mailtest.Start(t)
	sender := mustSender(t, configFor(server, mail.SecurityStartTLS))

	err := sender.Send(context.Background(), verificationMessage("ada@example.com"))

	if sendErr := sendError(t, err); sendErr.Step != mail.StepTLS {
		t.Errorf("Step = %q, want %q (error: %v)", sendErr.Step, mail.StepTLS, err)
	}
	if !strings.Contains(err.Error(), "does not offer STARTTLS") {
		t.Errorf("error %q does not say that STARTTLS is missing", err)
	}
}

func TestSMTPUntrustedCertificate(t *testing.T) {
	t.Parallel()
	server := mailtest.Start(t, mailtest.WithSTARTTLS())
	cfg := configFor(server, mail.SecurityStartTLS)
	cfg.RootCAFile = "" // system roots do not contain the test certificate
	sender := mustSender(t, cfg)

	err := sender.Send(context.Background(), verificationMessage("ada@example.com"))

	if sendErr := sendError(t, err); sendErr.Step != mail.StepTLS {
		t.Errorf("Step = %q, want %q (error: %v)", sendErr.Step, mail.StepTLS, err)
	}
}

func TestSMTPWrongServerName(t *testing.T) {
	t.Parallel()
	server := mailtest.Start(t, mailtest.WithSTARTTLS())
	cfg := configFor(server, mail.SecurityStartTLS)
	cfg.TLSServerName = "mail.example.com"
	sender := mustSender(t, cfg)

	err := sender.Send(context.Background(), verificationMessage("ada@example.com"))

	if sendErr := sendError(t, err); sendErr.Step != mail.StepTLS {
		t.Errorf("Step = %q, want %q (error: %v)", sendErr.Step, mail.StepTLS, err)
	}
}

func TestSMTPConnectionRefused(t *testing.T) {
	t.Parallel()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := listener.Addr().(*net.TCPAddr).Port
	_ = listener.Close()

	sender := mustSender(t, mail.SMTPConfig{Host: "127.0.0.1", Port: port, Security: mail.SecurityNone, From: testFrom, Timeout: testTimeout})
	err = sender.Send(context.Background(), verificationMessage("ada@example.com"))

	sendErr := sendError(t, err)
	if sendErr.Step != mail.StepConnect {
		t.Errorf("Step = %q, want %q (error: %v)", sendErr.Step, mail.StepConnect, err)
	}
	if sendErr.Addr != listener.Addr().String() {
		t.Errorf("Addr = %q, want %q", sendErr.Addr, listener.Addr().String())
	}
}

// silentServer accepts connections and never sends the SMTP greeting, so a
// client waits until its timeout.
func silentServer(t *testing.T) int {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = listener.Close() })

	go func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = conn.Close() })
		}
	}()
	return listener.Addr().(*net.TCPAddr).Port
}

func TestSMTPTimeout(t *testing.T) {
	t.Parallel()
	port := silentServer(t)

	sender := mustSender(t, mail.SMTPConfig{Host: "127.0.0.1", Port: port, Security: mail.SecurityNone, From: testFrom, Timeout: 200 * time.Millisecond})
	err := sender.Send(context.Background(), verificationMessage("ada@example.com"))

	if sendErr := sendError(t, err); sendErr.Step != mail.StepConnect {
		t.Errorf("Step = %q, want %q (error: %v)", sendErr.Step, mail.StepConnect, err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
}

func TestSMTPCanceledContext(t *testing.T) {
	t.Parallel()
	port := silentServer(t)
	sender := mustSender(t, mail.SMTPConfig{Host: "127.0.0.1", Port: port, Security: mail.SecurityNone, From: testFrom, Timeout: time.Minute})

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := sender.Send(ctx, verificationMessage("ada@example.com"))

	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
}

func TestSMTPInvalidMessage(t *testing.T) {
	t.Parallel()
	// Nothing listens here: composing fails before any connection.
	sender := mustSender(t, mail.SMTPConfig{Host: "127.0.0.1", Port: 9, Security: mail.SecurityNone, From: testFrom, Timeout: testTimeout})

	tests := []struct {
		name    string
		message mail.Message
	}{
		{"empty recipient", mail.Message{To: "", Subject: "s", Text: "t"}},
		{"bad recipient", mail.Message{To: "not an address", Subject: "s", Text: "t"}},
		{"subject with CRLF", mail.Message{To: "ada@example.com", Subject: "hi\r\nBcc: eve@example.com", Text: "t"}},
		{"subject with LF", mail.Message{To: "ada@example.com", Subject: "hi\nX: y", Text: "t"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sender.Send(context.Background(), tt.message)
			if err == nil {
				t.Fatal("Send = nil, want an error")
			}
			var sendErr *mail.SendError
			if errors.As(err, &sendErr) {
				t.Errorf("Send error = %v, want a compose error before any SMTP step", err)
			}
		})
	}
}

func TestNewSMTPSenderValidation(t *testing.T) {
	valid := mail.SMTPConfig{Host: "smtp.example.com", Port: 587, Security: mail.SecurityStartTLS, From: testFrom, Timeout: testTimeout}
	if _, err := mail.NewSMTPSender(valid); err != nil {
		t.Fatalf("NewSMTPSender(valid) = %v", err)
	}

	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		change func(*mail.SMTPConfig)
	}{
		{"empty host", func(c *mail.SMTPConfig) { c.Host = "" }},
		{"host with port", func(c *mail.SMTPConfig) { c.Host = "smtp.example.com:587" }},
		{"port zero", func(c *mail.SMTPConfig) { c.Port = 0 }},
		{"port too high", func(c *mail.SMTPConfig) { c.Port = 65536 }},
		{"unknown security", func(c *mail.SMTPConfig) { c.Security = "ssl" }},
		{"empty security", func(c *mail.SMTPConfig) { c.Security = "" }},
		{"bad from", func(c *mail.SMTPConfig) { c.From = "nexus" }},
		{"empty from", func(c *mail.SMTPConfig) { c.From = "" }},
		{"zero timeout", func(c *mail.SMTPConfig) { c.Timeout = 0 }},
		{"negative timeout", func(c *mail.SMTPConfig) { c.Timeout = -time.Second }},
		{"password without username", func(c *mail.SMTPConfig) { c.Password = "secret" }},
		{"auth in clear text", func(c *mail.SMTPConfig) {
			c.Security, c.Username, c.Password = mail.SecurityNone, "nexus", "secret"
		}},
		{"missing root CA file", func(c *mail.SMTPConfig) { c.RootCAFile = filepath.Join(t.TempDir(), "missing.pem") }},
		{"root CA file without certificate", func(c *mail.SMTPConfig) { c.RootCAFile = garbage }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.change(&cfg)
			if _, err := mail.NewSMTPSender(cfg); err == nil {
				t.Errorf("NewSMTPSender(%+v) = nil error, want an error", cfg)
			}
		})
	}

	local := valid
	local.Host, local.Security, local.Username, local.Password = "localhost", mail.SecurityNone, "nexus", "secret"
	if _, err := mail.NewSMTPSender(local); err != nil {
		t.Errorf("NewSMTPSender with auth in clear text to localhost = %v, want nil", err)
	}
}

func TestSMTPConfigLogValueRedactsPassword(t *testing.T) {
	var out bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&out, nil))
	cfg := mail.SMTPConfig{Host: "smtp.example.com", Port: 587, Username: "nexus", Password: testPassword}

	logger.Info("smtp config", "smtp", cfg)

	if strings.Contains(out.String(), testPassword) {
		t.Errorf("log line %q contains the password", out.String())
	}
	if !strings.Contains(out.String(), "smtp.host=smtp.example.com") {
		t.Errorf("log line %q does not contain the host", out.String())
	}
}
