package host_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/plugins/host"
	"github.com/nexus-suite/nexus/plugins/plugintest"
)

// Environment of the helper host process that TestPluginExitsWhenHostDies
// starts from the test binary.
const (
	envHelperPluginPath = "PLUGINS_HOST_TEST_HELPER_PLUGIN"
	envHelperPluginSum  = "PLUGINS_HOST_TEST_HELPER_SHA256"
)

// hostDeathTimeout is how soon a plugin must exit after its host was killed.
const hostDeathTimeout = 5 * time.Second

func TestMain(m *testing.M) {
	if path := os.Getenv(envHelperPluginPath); path != "" {
		runHelperHost(path, os.Getenv(envHelperPluginSum))
		return
	}
	os.Exit(plugintest.Main(m))
}

// runHelperHost launches the test plugin with a child, prints the plugin's
// and the child's pids on stdout and waits to be killed.
func runHelperHost(path, sum string) {
	digest, err := host.ParseSHA256(sum)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	p, err := host.Launch(context.Background(), host.Spec{Path: path, SHA256: digest, Args: []string{"-spawn-child"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}

	childPID, err := readChildPID(p)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Printf("%d %d\n", p.Pid(), childPID)
	select {}
}

// readChildPID calls the child_pid tool over a raw JSON-RPC session.
func readChildPID(p *host.Plugin) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	session, err := p.OpenSession(ctx)
	if err != nil {
		return 0, err
	}
	defer session.Close()

	requests := []string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"helper","version":"1"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"child_pid","arguments":{}}}`,
	}
	for _, request := range requests {
		if err := session.Send(ctx, []byte(request)); err != nil {
			return 0, err
		}
	}
	for {
		message, err := session.Recv(ctx)
		if err != nil {
			return 0, err
		}
		var response struct {
			ID     int `json:"id"`
			Result struct {
				StructuredContent struct {
					PID int `json:"pid"`
				} `json:"structuredContent"`
			} `json:"result"`
		}
		if err := json.Unmarshal(message, &response); err != nil {
			return 0, fmt.Errorf("decode %s: %w", message, err)
		}
		if response.ID == 2 {
			return response.Result.StructuredContent.PID, nil
		}
	}
}

// processState returns the state letter of pid from /proc, such as R, S, T
// or Z, and "" when the process does not exist.
func processState(pid int) string {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The state follows the command name in parentheses.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(fields) == 0 {
		return ""
	}
	return fields[0]
}

// processGone reports whether pid no longer runs: it does not exist, or it
// is a zombie waiting for a parent to reap it.
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	state := processState(pid)
	return state == "" || state == "Z" || state == "X"
}

func waitGone(t *testing.T, description string, pid int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) still running after %s", description, pid, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStopKillsChildProcess(t *testing.T) {
	testPlugin := plugintest.Build(t, plugintest.TestPluginPackage)
	p := launch(t, host.Spec{Path: testPlugin.Path, SHA256: testPlugin.SHA256, Args: []string{"-spawn-child"}})
	childPID, err := readChildPID(p)
	if err != nil {
		t.Fatalf("read child pid: %v", err)
	}
	if childPID == 0 || processGone(childPID) {
		t.Fatalf("child pid %d is not running", childPID)
	}

	if err := p.Stop(context.Background(), stopGrace); err != nil {
		t.Fatalf("stop: %v", err)
	}
	waitGone(t, "child sleep 600", childPID, 2*time.Second)
}

func TestStopKillsUnresponsivePlugin(t *testing.T) {
	testPlugin := plugintest.Build(t, plugintest.TestPluginPackage)
	p := launch(t, host.Spec{Path: testPlugin.Path, SHA256: testPlugin.SHA256})

	// A stopped process handles no call, like a plugin stuck in a loop.
	if err := syscall.Kill(p.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP plugin: %v", err)
	}
	// The signal stops the process asynchronously.
	deadline := time.Now().Add(2 * time.Second)
	for processState(p.Pid()) != "T" {
		if time.Now().After(deadline) {
			t.Fatalf("plugin state %q after SIGSTOP; want T", processState(p.Pid()))
		}
		time.Sleep(5 * time.Millisecond)
	}
	const grace = 300 * time.Millisecond
	started := time.Now()
	if err := p.Stop(context.Background(), grace); err != nil {
		t.Fatalf("stop: %v", err)
	}
	waitExited(t, p, time.Second)

	if elapsed := time.Since(started); elapsed < grace {
		t.Errorf("stop took %s; want it to wait the grace of %s first", elapsed, grace)
	}
	var exitErr *exec.ExitError
	if !errors.As(p.ExitErr(), &exitErr) || !strings.Contains(exitErr.Error(), "killed") {
		t.Errorf("exit = %v; want killed by SIGKILL", p.ExitErr())
	}
}

func TestCrashEndsSessions(t *testing.T) {
	testPlugin := plugintest.Build(t, plugintest.TestPluginPackage)
	stderr := &lines{}
	p := launch(t, host.Spec{Path: testPlugin.Path, SHA256: testPlugin.SHA256, Args: []string{"-spawn-child"}, Stderr: stderr})
	childPID, err := readChildPID(p)
	if err != nil {
		t.Fatalf("read child pid: %v", err)
	}
	session, err := p.OpenSession(context.Background())
	if err != nil {
		t.Fatalf("open session: %v", err)
	}

	if err := syscall.Kill(p.Pid(), syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 plugin: %v", err)
	}
	waitExited(t, p, 2*time.Second)

	if err := p.ExitErr(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("exit = %v; want killed", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = session.Recv(ctx)
	if !errors.Is(err, io.EOF) {
		t.Errorf("recv after the crash = %v; want an error wrapping io.EOF", err)
	}
	if !errors.Is(err, host.ErrExited) {
		t.Errorf("recv after the crash = %v; want an error wrapping ErrExited", err)
	}
	if err := p.Health(context.Background()); !errors.Is(err, host.ErrExited) {
		t.Errorf("health after the crash = %v; want ErrExited", err)
	}
	waitGone(t, "child of the crashed plugin", childPID, 2*time.Second)
	if !strings.Contains(stderr.String(), "started child pid") {
		t.Errorf("stderr %q lacks the plugin's own line", stderr.String())
	}
}

func TestPluginExitsWhenHostDies(t *testing.T) {
	testPlugin := plugintest.Build(t, plugintest.TestPluginPackage)

	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(),
		envHelperPluginPath+"="+testPlugin.Path,
		envHelperPluginSum+"="+fmt.Sprintf("%x", testPlugin.SHA256))
	helper.Stderr = os.Stderr
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatalf("helper stdout: %v", err)
	}
	if err := helper.Start(); err != nil {
		t.Fatalf("start helper host: %v", err)
	}
	t.Cleanup(func() {
		_ = helper.Process.Kill()
		_ = helper.Wait()
	})

	pids := make(chan [2]int, 1)
	go func() {
		var pluginPID, childPID int
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		if _, err := fmt.Sscanf(line, "%d %d", &pluginPID, &childPID); err == nil {
			pids <- [2]int{pluginPID, childPID}
		}
		close(pids)
	}()
	var got [2]int
	select {
	case result, ok := <-pids:
		if !ok {
			t.Fatal("helper host printed no pids")
		}
		got = result
	case <-time.After(30 * time.Second):
		t.Fatal("helper host printed no pids within 30s")
	}
	pluginPID, childPID := got[0], got[1]

	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 helper host: %v", err)
	}
	waitGone(t, "plugin of the killed host", pluginPID, hostDeathTimeout)
	waitGone(t, "child of the plugin of the killed host", childPID, hostDeathTimeout)
}
