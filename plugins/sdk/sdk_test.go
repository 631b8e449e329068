package sdk_test

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/plugins/contract"
	"github.com/nexus-suite/nexus/plugins/plugintest"
)

// syncBuffer is a bytes.Buffer safe for the writer goroutine of exec.Cmd and
// the test.
type syncBuffer struct {
	mu     sync.Mutex
	buffer bytes.Buffer
}

func (b *syncBuffer) Write(data []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buffer.Write(data)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buffer.String()
}

// startPlugin starts the plugin binary the way go-plugin does, in its own
// process group, with hostPID as the host it belongs to.
func startPlugin(t *testing.T, path string, hostPID int) (*exec.Cmd, chan error, *syncBuffer) {
	t.Helper()

	cmd := exec.Command(path)
	cmd.Env = []string{
		contract.Handshake.MagicCookieKey + "=" + contract.Handshake.MagicCookieValue,
		"PLUGIN_PROTOCOL_VERSIONS=1",
		contract.EnvHostPID + "=" + strconv.Itoa(hostPID),
		// Without it go-plugin puts the socket in the system's temporary
		// directory, where a killed plugin would leave it.
		"PLUGIN_UNIX_SOCKET_DIR=" + t.TempDir(),
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr := &syncBuffer{}
	cmd.Stdout = &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start plugin: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return cmd, exited, stderr
}

func TestServeWatchesHost(t *testing.T) {
	testPlugin := plugintest.Build(t, plugintest.TestPluginPackage)

	t.Run("ExitsWithoutHost", func(t *testing.T) {
		// pid 1 is never the test's own pid, so the plugin finds that its
		// parent is not its host, as after the host died.
		_, exited, _ := startPlugin(t, testPlugin.Path, 1)
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			t.Fatal("plugin without its host still runs after 3s")
		}
	})

	t.Run("RunsWithHost", func(t *testing.T) {
		_, exited, stderr := startPlugin(t, testPlugin.Path, os.Getpid())
		select {
		case err := <-exited:
			t.Fatalf("plugin whose host runs exited: %v\n%s", err, stderr.String())
		case <-time.After(1500 * time.Millisecond):
		}
	})
}

// TestServeRejectsDirectRun runs a plugin binary without the handshake
// cookie, as a person trying it from a shell would.
func TestServeRejectsDirectRun(t *testing.T) {
	testPlugin := plugintest.Build(t, plugintest.TestPluginPackage)

	output, err := exec.Command(testPlugin.Path).CombinedOutput()
	if err == nil {
		t.Fatal("plugin run without the handshake cookie exited 0")
	}
	if !strings.Contains(string(output), "This binary is a plugin") {
		t.Errorf("output = %q; want go-plugin's explanation", output)
	}
}

func TestMain(m *testing.M) { os.Exit(plugintest.Main(m)) }
