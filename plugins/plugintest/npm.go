package plugintest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The stdio MCP server from the npm registry that the bridge tests run: the
// reference knowledge-graph memory server, pinned so tests see one tool list.
const (
	StdioServerPackage = "@modelcontextprotocol/server-memory"
	StdioServerVersion = "2026.8.31"
	// stdioServerEntry is the package's bin script, relative to its folder.
	stdioServerEntry = "dist/index.js"
)

// npmInstallTimeout bounds the npm install of the stdio server.
const npmInstallTimeout = 5 * time.Minute

// StdioServer is a command line that runs a stdio MCP server, in the shape of
// the stdio bridge's config.
type StdioServer struct {
	Command string
	Args    []string
	Env     map[string]string
}

// Config returns the stdio bridge config that runs the server.
func (s StdioServer) Config() map[string]any {
	return map[string]any{"command": s.Command, "args": s.Args, "env": s.Env}
}

// NPMStdioServer installs StdioServerPackage with npm into the user's cache
// directory, once per version, and returns the node command line that runs
// it, storing its memory file in a temporary directory of tb. It skips the
// test when node or npm is missing or the install fails, and fails it
// instead when NEXUS_TEST_SERVICES=required.
func NPMStdioServer(tb testing.TB) StdioServer {
	tb.Helper()

	node, err := exec.LookPath("node")
	if err != nil {
		skipOrFail(tb, "node is not installed; the stdio bridge test needs it to run %s", StdioServerPackage)
	}
	dir, err := installNPMPackage(StdioServerPackage, StdioServerVersion)
	if err != nil {
		skipOrFail(tb, "install %s@%s from the npm registry: %v", StdioServerPackage, StdioServerVersion, err)
	}

	return StdioServer{
		Command: node,
		Args:    []string{filepath.Join(dir, stdioServerEntry)},
		Env:     map[string]string{"MEMORY_FILE_PATH": filepath.Join(tb.TempDir(), "memory.jsonl")},
	}
}

// installNPMPackage installs name@version into a cache folder unless it is
// there already, and returns the package's folder. It installs into a fresh
// folder and renames it into place, so a cancelled install leaves nothing
// half-written and concurrent test processes agree on one result.
func installNPMPackage(name, version string) (string, error) {
	cacheRoot, err := os.UserCacheDir()
	if err != nil {
		cacheRoot = os.TempDir()
	}
	prefix := filepath.Join(cacheRoot, "nexus-test", "npm", filepath.Base(name)+"@"+version)
	packageDir := filepath.Join(prefix, "node_modules", filepath.FromSlash(name))
	if _, err := os.Stat(filepath.Join(packageDir, stdioServerEntry)); err == nil {
		return packageDir, nil
	}

	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", fmt.Errorf("npm is not installed: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(prefix), 0o755); err != nil {
		return "", err
	}
	staging, err := os.MkdirTemp(filepath.Dir(prefix), "install-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(staging)

	cmd := exec.Command(npm, "install", "--no-audit", "--no-fund", "--prefix", staging, name+"@"+version)
	if output, err := runWithTimeout(cmd, npmInstallTimeout); err != nil {
		return "", fmt.Errorf("npm install: %w\n%s", err, output)
	}
	if err := os.Rename(staging, prefix); err != nil {
		if _, statErr := os.Stat(filepath.Join(packageDir, stdioServerEntry)); statErr != nil {
			return "", fmt.Errorf("move npm install into place: %w", err)
		}
	}
	return packageDir, nil
}
