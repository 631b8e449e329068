// Package mailtest runs a real SMTP server, mailpit, for tests and reads the
// messages it received back through mailpit's HTTP API.
//
// mailpit is installed with
//
//	go install github.com/axllent/mailpit@v1.33.1
//
// and looked up on PATH, then in $GOBIN, then in $GOPATH/bin. When it is
// missing, Start skips the test, unless NEXUS_TEST_SERVICES=required, where it
// fails the test.
package mailtest

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/storage/storagetest"
)

// MailpitVersion is the mailpit release these helpers are written and tested
// against, and the one .ci/run installs.
const MailpitVersion = "v1.33.1"

const (
	startTimeout    = 20 * time.Second
	stopTimeout     = 5 * time.Second
	messageTimeout  = 10 * time.Second
	pollInterval    = 25 * time.Millisecond
	startAttempts   = 3
	apiRequestLimit = 5 * time.Second
)

// Server is a running mailpit bound to 127.0.0.1.
type Server struct {
	// SMTPHost and SMTPPort are where the SMTP server listens.
	SMTPHost string
	SMTPPort int
	// APIURL is the base URL of the HTTP API, without a trailing slash.
	APIURL string
	// CAFile is the PEM file of the self-signed certificate that the SMTP
	// server presents, valid for 127.0.0.1, ::1 and localhost. It is empty
	// unless WithSTARTTLS or WithImplicitTLS was given.
	CAFile string

	http *http.Client
}

// Message is a received message as mailpit's API returns it.
type Message struct {
	ID      string
	From    string
	To      []string
	Subject string
	// Text is the plain-text body.
	Text string
	// Username is the SMTP AUTH username the client logged in with, or empty.
	Username string
}

// Option changes how Start runs mailpit.
type Option func(*options)

type options struct {
	startTLS    bool
	implicitTLS bool
	username    string
	password    string
	acceptAny   bool
}

// WithSTARTTLS makes the SMTP server offer STARTTLS with a self-signed
// certificate and reject mail sent without it.
func WithSTARTTLS() Option {
	return func(o *options) { o.startTLS = true }
}

// WithImplicitTLS makes the SMTP server speak TLS from the first byte, with a
// self-signed certificate, as on port 465.
func WithImplicitTLS() Option {
	return func(o *options) { o.implicitTLS = true }
}

// WithAuth makes the SMTP server require SMTP AUTH with this username and
// password. Without a TLS option, mailpit runs with --smtp-auth-allow-insecure,
// which allows PLAIN and LOGIN on the unencrypted connection.
func WithAuth(username, password string) Option {
	return func(o *options) { o.username, o.password = username, password }
}

// WithAcceptAnyAuth makes the SMTP server accept any username and password,
// and mail sent without authentication.
func WithAcceptAnyAuth() Option {
	return func(o *options) { o.acceptAny = true }
}

// Start runs mailpit on free 127.0.0.1 ports with a database in a temporary
// directory, waits until both its HTTP API and its SMTP port respond, and
// stops it when the test ends. It skips or fails the test when mailpit is
// not installed (see the package comment).
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()

	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.startTLS && o.implicitTLS {
		t.Fatal("mailtest: WithSTARTTLS and WithImplicitTLS exclude each other")
	}

	binary := storagetest.GoTool(t, "mailpit", "github.com/axllent/mailpit@"+MailpitVersion)
	dir := t.TempDir()
	baseArgs, caFile := configArgs(t, dir, o)

	// Another process can take a free port between picking and binding it,
	// so a start that exits early is retried on new ports.
	var lastErr error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		server, err := start(t, binary, dir, baseArgs, attempt)
		if err == nil {
			server.CAFile = caFile
			return server
		}
		lastErr = err
	}
	t.Fatalf("mailtest: start mailpit: %v", lastErr)
	return nil
}

// configArgs returns the mailpit flags for o that do not depend on ports,
// writing the certificate and the password file into dir.
func configArgs(t testing.TB, dir string, o options) (args []string, caFile string) {
	t.Helper()

	args = []string{
		"--database", filepath.Join(dir, "mailpit.db"),
		// No traffic beyond loopback: no release check, no reverse DNS of
		// SMTP clients, no remote CSS or fonts in the web UI.
		"--disable-version-check",
		"--smtp-disable-rdns",
		"--block-remote-css-and-fonts",
	}

	if o.startTLS || o.implicitTLS {
		certFile, keyFile := writeCertificate(t, dir)
		args = append(args, "--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile)
		caFile = certFile
		if o.startTLS {
			args = append(args, "--smtp-require-starttls")
		} else {
			args = append(args, "--smtp-require-tls")
		}
	}

	if o.username != "" {
		// go-htpasswd, which mailpit uses, reads "{SHA}" followed by the
		// base64 SHA-1 of the password.
		sum := sha1.Sum([]byte(o.password))
		line := o.username + ":{SHA}" + base64.StdEncoding.EncodeToString(sum[:]) + "\n"
		authFile := filepath.Join(dir, "smtp-auth")
		if err := os.WriteFile(authFile, []byte(line), 0o600); err != nil {
			t.Fatalf("mailtest: write auth file: %v", err)
		}
		args = append(args, "--smtp-auth-file", authFile)
	}
	if o.acceptAny {
		args = append(args, "--smtp-auth-accept-any")
	}
	if (o.username != "" || o.acceptAny) && !o.startTLS && !o.implicitTLS {
		args = append(args, "--smtp-auth-allow-insecure")
	}
	return args, caFile
}

// start runs one mailpit process and waits until it is ready. It returns an
// error, rather than failing the test, when the process exits early.
func start(t testing.TB, binary, dir string, baseArgs []string, attempt int) (*Server, error) {
	t.Helper()

	httpPort, smtpPort := storagetest.FreePort(t), storagetest.FreePort(t)
	httpAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort))
	smtpAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(smtpPort))

	args := append([]string{"--listen", httpAddr, "--smtp", smtpAddr}, baseArgs...)
	logFile := filepath.Join(dir, fmt.Sprintf("mailpit-%d.log", attempt))
	output, err := os.Create(logFile)
	if err != nil {
		t.Fatalf("mailtest: create log file: %v", err)
	}

	cmd := exec.Command(binary, args...)
	cmd.Env = environWithoutMailpitVariables()
	cmd.Stdout = output
	cmd.Stderr = output
	if err := cmd.Start(); err != nil {
		_ = output.Close()
		t.Fatalf("mailtest: run %s: %v", binary, err)
	}

	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		_ = output.Close()
		close(exited)
	}()

	server := &Server{
		SMTPHost: "127.0.0.1",
		SMTPPort: smtpPort,
		APIURL:   "http://" + httpAddr,
		http:     &http.Client{Timeout: apiRequestLimit},
	}

	if err := waitReady(server, smtpAddr, exited); err != nil {
		stop(cmd, exited)
		log, _ := os.ReadFile(logFile)
		if errors.Is(err, errExited) {
			return nil, fmt.Errorf("mailpit exited (%v) with output:\n%s", waitErr, log)
		}
		t.Fatalf("mailtest: %v; mailpit output:\n%s", err, log)
	}

	t.Cleanup(func() {
		stop(cmd, exited)
		if t.Failed() {
			log, _ := os.ReadFile(logFile)
			t.Logf("mailpit output:\n%s", log)
		}
	})
	return server, nil
}

var errExited = errors.New("mailpit exited before it was ready")

// waitReady polls /readyz and the SMTP port until both respond.
func waitReady(server *Server, smtpAddr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()

	for {
		if ready(server, smtpAddr) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mailpit did not become ready within %s", startTimeout)
		}
		select {
		case <-exited:
			return errExited
		case <-ticker.C:
		}
	}
}

func ready(server *Server, smtpAddr string) bool {
	response, err := server.http.Get(server.APIURL + "/readyz")
	if err != nil {
		return false
	}
	_ = response.Body.Close()
	if response.StatusCode != http.StatusOK {
		return false
	}

	conn, err := net.DialTimeout("tcp", smtpAddr, time.Second)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

func stop(cmd *exec.Cmd, exited <-chan struct{}) {
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// environWithoutMailpitVariables drops MP_* variables, which mailpit reads
// as settings and which would override the flags.
func environWithoutMailpitVariables() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MP_") {
			env = append(env, kv)
		}
	}
	return env
}

// Messages returns every message mailpit holds, newest first, with its
// plain-text body.
func (s *Server) Messages(t testing.TB) []Message {
	t.Helper()

	summaries, err := s.listMessages()
	if err != nil {
		t.Fatalf("mailtest: %v", err)
	}

	messages := make([]Message, 0, len(summaries))
	for _, summary := range summaries {
		message, err := s.message(summary.ID)
		if err != nil {
			t.Fatalf("mailtest: %v", err)
		}
		messages = append(messages, message)
	}
	return messages
}

// WaitForMessage waits up to 10 seconds for a message addressed to to
// (compared without case) and returns the newest one. It fails the test when
// none arrives.
func (s *Server) WaitForMessage(t testing.TB, to string) Message {
	t.Helper()

	deadline := time.Now().Add(messageTimeout)
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()

	for {
		summaries, err := s.listMessages()
		if err != nil {
			t.Fatalf("mailtest: %v", err)
		}
		for _, summary := range summaries {
			for _, recipient := range summary.To {
				if strings.EqualFold(recipient.Address, to) {
					message, err := s.message(summary.ID)
					if err != nil {
						t.Fatalf("mailtest: %v", err)
					}
					return message
				}
			}
		}

		if time.Now().After(deadline) {
			t.Fatalf("mailtest: no message to %s arrived within %s", to, messageTimeout)
		}
		<-ticker.C
	}
}

type address struct {
	Name    string
	Address string
}

type messageSummary struct {
	ID string
	To []address
}

type messageDetail struct {
	ID       string
	From     *address
	To       []address
	Subject  string
	Text     string
	Username string
}

// listMessages reads GET /api/v1/messages, which returns at most 50
// messages unless asked for more.
func (s *Server) listMessages() ([]messageSummary, error) {
	var body struct {
		Messages []messageSummary `json:"messages"`
	}
	if err := s.getJSON("/api/v1/messages?limit=1000", &body); err != nil {
		return nil, err
	}
	return body.Messages, nil
}

func (s *Server) message(id string) (Message, error) {
	var detail messageDetail
	if err := s.getJSON("/api/v1/message/"+url.PathEscape(id), &detail); err != nil {
		return Message{}, err
	}

	message := Message{ID: detail.ID, Subject: detail.Subject, Text: detail.Text, Username: detail.Username}
	if detail.From != nil {
		message.From = detail.From.Address
	}
	for _, recipient := range detail.To {
		message.To = append(message.To, recipient.Address)
	}
	return message, nil
}

func (s *Server) getJSON(path string, target any) error {
	ctx, cancel := context.WithTimeout(context.Background(), apiRequestLimit)
	defer cancel()

	request, err := http.NewRequestWithContext(ctx, http.MethodGet, s.APIURL+path, nil)
	if err != nil {
		return fmt.Errorf("build request GET %s: %w", path, err)
	}
	response, err := s.http.Do(request)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer response.Body.Close()

	var raw bytes.Buffer
	if _, err := raw.ReadFrom(response.Body); err != nil {
		return fmt.Errorf("GET %s: read body: %w", path, err)
	}
	if response.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d: %s", path, response.StatusCode, raw.String())
	}
	if err := json.Unmarshal(raw.Bytes(), target); err != nil {
		return fmt.Errorf("GET %s: decode JSON: %w", path, err)
	}
	return nil
}
