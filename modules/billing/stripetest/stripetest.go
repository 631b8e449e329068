// Package stripetest runs stripe-mock, Stripe's stateless API mock, for
// tests. stripe-mock returns fixture objects for each call: creations
// succeed with canned ids and nothing is stored between calls.
//
// stripe-mock is installed with
//
//	go install github.com/stripe/stripe-mock@v0.203.0
//
// and looked up on PATH, then in $GOBIN, then in $GOPATH/bin. When it is
// missing, Start skips the test, unless NEXUS_TEST_SERVICES=required, where
// it fails the test.
package stripetest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/storage/storagetest"
)

// StripeMockVersion is the stripe-mock release these helpers are written
// and tested against, and the one .ci/run installs.
const StripeMockVersion = "v0.203.0"

// SecretKey is a test-mode key; stripe-mock accepts any key of this form.
const SecretKey = "sk_test_nexus"

const (
	startTimeout  = 20 * time.Second
	stopTimeout   = 5 * time.Second
	pollInterval  = 25 * time.Millisecond
	startAttempts = 3
)

// Server is a running stripe-mock bound to 127.0.0.1.
type Server struct {
	// URL is the HTTP base URL, such as http://127.0.0.1:41234.
	URL string
}

// Start runs stripe-mock with its HTTP and HTTPS listeners on free
// loopback ports and stops it at cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	binary := storagetest.GoTool(t, "stripe-mock", "github.com/stripe/stripe-mock@"+StripeMockVersion)
	dir := t.TempDir()

	// Another process can take a free port between picking and binding it,
	// so a start that exits early is retried on new ports.
	var lastErr error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		server, err := start(t, binary, dir, attempt)
		if err == nil {
			return server
		}
		lastErr = err
	}
	t.Fatalf("stripetest: start stripe-mock: %v", lastErr)
	return nil
}

var errExited = errors.New("stripe-mock exited before it was ready")

// start runs one stripe-mock process and waits until its HTTP port
// accepts connections. It returns an error, rather than failing the test,
// when the process exits early.
func start(t testing.TB, binary, dir string, attempt int) (*Server, error) {
	t.Helper()
	httpAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(storagetest.FreePort(t)))
	// Without -https-addr, stripe-mock also listens for HTTPS on every
	// interface.
	httpsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(storagetest.FreePort(t)))

	logFile := filepath.Join(dir, fmt.Sprintf("stripe-mock-%d.log", attempt))
	output, err := os.Create(logFile)
	if err != nil {
		t.Fatalf("stripetest: create log file: %v", err)
	}
	cmd := exec.Command(binary, "-http-addr", httpAddr, "-https-addr", httpsAddr)
	cmd.Stdout = output
	cmd.Stderr = output
	if err := cmd.Start(); err != nil {
		_ = output.Close()
		t.Fatalf("stripetest: run %s: %v", binary, err)
	}

	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		_ = output.Close()
		close(exited)
	}()

	if err := waitReady(httpAddr, exited); err != nil {
		stop(cmd, exited)
		log, _ := os.ReadFile(logFile)
		if errors.Is(err, errExited) {
			return nil, fmt.Errorf("stripe-mock exited (%v) with output:\n%s", waitErr, log)
		}
		t.Fatalf("stripetest: %v; stripe-mock output:\n%s", err, log)
	}

	t.Cleanup(func() {
		stop(cmd, exited)
		if t.Failed() {
			log, _ := os.ReadFile(logFile)
			t.Logf("stripe-mock output:\n%s", log)
		}
	})
	return &Server{URL: "http://" + httpAddr}, nil
}

func waitReady(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()

	for {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stripe-mock did not become ready within %s", startTimeout)
		}
		select {
		case <-exited:
			return errExited
		case <-ticker.C:
		}
	}
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
