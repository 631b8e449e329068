// Package plugintest helps tests that run real plugin processes: it builds
// plugin binaries and installs a real stdio MCP server from the npm registry
// for the stdio bridge.
package plugintest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/plugins/host"
)

// Import paths of the plugins built from this repository.
const (
	NotesPackage       = "github.com/nexus-suite/nexus/plugins/examples/notes"
	StdioBridgePackage = "github.com/nexus-suite/nexus/plugins/builtin/stdio"
	// TestPluginPackage is a plugin for fault tests; see its package comment.
	TestPluginPackage = "github.com/nexus-suite/nexus/plugins/plugintest/testplugin"
)

// buildTimeout bounds one go build of a plugin.
const buildTimeout = 5 * time.Minute

// Binary is a built plugin.
type Binary struct {
	Path   string
	SHA256 []byte
}

// buildCache holds the binaries built by Build once per test process while
// Main runs the tests.
var buildCache struct {
	mu       sync.Mutex
	dir      string
	binaries map[string]Binary
}

// Main runs a package's tests with a shared build cache, so Build compiles
// each plugin once per test process instead of once per call, and removes
// the cache afterwards. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(plugintest.Main(m)) }
func Main(m *testing.M) int {
	dir, err := os.MkdirTemp("", "nexus-plugintest-*")
	if err != nil {
		fmt.Fprintf(os.Stderr, "create plugin build cache: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)

	buildCache.mu.Lock()
	buildCache.dir = dir
	buildCache.binaries = make(map[string]Binary)
	buildCache.mu.Unlock()
	return m.Run()
}

// Build compiles the main package pkg and returns the binary with its
// sha256. Under Main it builds each package once into the shared cache, and
// otherwise into a temporary directory of tb. It runs the go command of the
// test's toolchain, so it uses the test build's module and build cache.
// Callers must not modify the binary, because other tests may share it.
func Build(tb testing.TB, pkg string) Binary {
	tb.Helper()

	buildCache.mu.Lock()
	defer buildCache.mu.Unlock()
	if binary, ok := buildCache.binaries[pkg]; ok {
		return binary
	}
	dir := buildCache.dir
	if dir == "" {
		dir = tb.TempDir()
	}

	binary := filepath.Join(dir, path.Base(pkg))
	cmd := exec.Command(goCommand(), "build", "-o", binary, pkg)
	output, err := runWithTimeout(cmd, buildTimeout)
	if err != nil {
		tb.Fatalf("build plugin %s: %v\n%s", pkg, err, output)
	}

	digest, err := host.FileSHA256(binary)
	if err != nil {
		tb.Fatalf("checksum plugin %s: %v", binary, err)
	}
	built := Binary{Path: binary, SHA256: digest}
	if buildCache.binaries != nil {
		buildCache.binaries[pkg] = built
	}
	return built
}

// goCommand returns the go command of the toolchain running the test.
func goCommand() string {
	if goroot := os.Getenv("GOROOT"); goroot != "" {
		candidate := filepath.Join(goroot, "bin", "go")
		if _, err := os.Stat(candidate); err == nil {
			return candidate
		}
	}
	return "go"
}

// runWithTimeout runs cmd and returns its combined output, killing it after
// timeout.
func runWithTimeout(cmd *exec.Cmd, timeout time.Duration) ([]byte, error) {
	var output strings.Builder
	cmd.Stdout = &output
	cmd.Stderr = &output
	if err := cmd.Start(); err != nil {
		return nil, err
	}

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return []byte(output.String()), err
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return []byte(output.String()), errors.New("timed out after " + timeout.String())
	}
}

// requiredServices reports whether NEXUS_TEST_SERVICES=required, under which
// a missing node or npm registry fails the test instead of skipping it.
func requiredServices() bool {
	return os.Getenv("NEXUS_TEST_SERVICES") == "required"
}

// skipOrFail skips the test, or fails it when services are required.
func skipOrFail(tb testing.TB, format string, args ...any) {
	tb.Helper()
	message := fmt.Sprintf(format, args...)
	if requiredServices() {
		tb.Fatalf("%s (NEXUS_TEST_SERVICES=required)", message)
	}
	tb.Skip(message)
}
