package storagetest

import (
	"fmt"
	"go/build"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// GoTool returns the path of a program that `go install` puts in place,
// such as mailpit: from PATH, else from GOBIN or each GOPATH's bin. When it
// is missing, the test fails under NEXUS_TEST_SERVICES=required and skips
// otherwise, with a message that gives install, such as
// "github.com/axllent/mailpit@v1.33.1", as the module to install.
func GoTool(t testing.TB, name, install string) string {
	t.Helper()
	if path, err := exec.LookPath(name); err == nil {
		return path
	}

	var candidates []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		candidates = append(candidates, filepath.Join(gobin, name))
	}
	for _, gopath := range filepath.SplitList(build.Default.GOPATH) {
		candidates = append(candidates, filepath.Join(gopath, "bin", name))
	}
	for _, path := range candidates {
		if info, err := os.Stat(path); err == nil && !info.IsDir() && info.Mode()&0o111 != 0 {
			return path
		}
	}

	message := fmt.Sprintf("%s not found on PATH or in %s; install it with go install %s",
		name, strings.Join(candidates, ", "), install)
	if Required() {
		t.Fatal(message)
	}
	t.Skip(message)
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process can take it before the caller binds it, so a caller that
// starts a server on it should retry on a new port when the start fails.
func FreePort(t testing.TB) int {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pick a free port: %v", err)
	}
	defer listener.Close()
	return listener.Addr().(*net.TCPAddr).Port
}
