package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/nexus-suite/nexus/plugins/contract"
)

// hostEnvAllowlist are the host's environment variables a plugin inherits.
// The rest of the host's environment, which contains nexus's own settings
// and credentials, stays out of the plugin.
var hostEnvAllowlist = []string{"PATH", "HOME", "TMPDIR", "TZ", "LANG", "LC_ALL", "SSL_CERT_FILE", "SSL_CERT_DIR"}

// pluginEnv builds a plugin's environment: the allowlisted host variables,
// then extra, then the go-plugin protocol's variables and the host's pid.
// exec.Cmd keeps the last value of a repeated name, so extra can override
// the allowlist but not the protocol.
func pluginEnv(extra, protocol []string) []string {
	env := make([]string, 0, len(hostEnvAllowlist)+len(extra)+len(protocol)+1)
	for _, name := range hostEnvAllowlist {
		if value, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+value)
		}
	}
	for _, entry := range extra {
		name, _, _ := strings.Cut(entry, "=")
		if contract.IsReservedEnv(name) {
			continue
		}
		env = append(env, entry)
	}
	env = append(env, protocol...)
	env = append(env, contract.EnvHostPID+"="+strconv.Itoa(os.Getpid()))
	return env
}

// process is the go-plugin runner of one plugin process. Unlike go-plugin's
// own runner, it reports the exit as soon as the process is gone, even while
// a process of its group still holds stdout or stderr open, and it kills the
// whole process group.
type process struct {
	cmd  *exec.Cmd
	name string
	// pid is set by Start, before which it is 0.
	pid int

	// mu orders Start and kill, which a cancelled start can run at once.
	mu     sync.Mutex
	killed bool

	stdout, stderr io.ReadCloser
	// childStdout and childStderr are the write ends handed to the process,
	// closed in the host once it started.
	childStdout, childStderr *os.File

	exited  chan struct{}
	exitErr error
}

// newProcess prepares cmd to run in its own process group with pipes for
// stdout and stderr.
func newProcess(cmd *exec.Cmd, name string) (*process, error) {
	stdoutRead, stdoutWrite, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create plugin stdout pipe: %w", err)
	}
	stderrRead, stderrWrite, err := os.Pipe()
	if err != nil {
		stdoutRead.Close()
		stdoutWrite.Close()
		return nil, fmt.Errorf("create plugin stderr pipe: %w", err)
	}

	cmd.Stdout = stdoutWrite
	cmd.Stderr = stderrWrite
	cmd.SysProcAttr = processAttributes()
	return &process{
		cmd:         cmd,
		name:        name,
		stdout:      stdoutRead,
		stderr:      stderrRead,
		childStdout: stdoutWrite,
		childStderr: stderrWrite,
		exited:      make(chan struct{}),
	}, nil
}

// Start starts the process and the goroutine that waits for its exit.
func (p *process) Start(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()

	if p.killed {
		p.childStdout.Close()
		p.childStderr.Close()
		p.stdout.Close()
		p.stderr.Close()
		p.exitErr = errStartCancelled
		close(p.exited)
		return fmt.Errorf("start plugin %s: %w", p.name, errStartCancelled)
	}
	err := p.cmd.Start()
	p.childStdout.Close()
	p.childStderr.Close()
	if err != nil {
		p.stdout.Close()
		p.stderr.Close()
		p.exitErr = err
		close(p.exited)
		return fmt.Errorf("start plugin %s: %w", p.name, err)
	}

	p.pid = p.cmd.Process.Pid
	go p.wait()
	return nil
}

// wait waits until the process has exited, kills what is left of its process
// group, reaps the process and closes p.exited.
func (p *process) wait() {
	p.exitErr = reapGroup(p.cmd)
	close(p.exited)
}

// errStartCancelled is the exit of a process killed before it started.
var errStartCancelled = errors.New("start cancelled")

// kill sends SIGKILL to the whole process group, or keeps a process that has
// not started from starting. It does not wait.
func (p *process) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()

	p.killed = true
	select {
	case <-p.exited:
		return
	default:
	}
	if p.pid > 0 {
		killGroup(p.pid)
	}
}

// killGroup sends SIGKILL to the process group pgid.
func killGroup(pgid int) {
	// ESRCH means the group is already empty.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// Wait waits for the exit reported by the wait goroutine.
func (p *process) Wait(context.Context) error {
	<-p.exited
	return p.exitErr
}

// Kill sends SIGKILL to the whole process group.
func (p *process) Kill(context.Context) error {
	p.kill()
	return nil
}

func (p *process) Stdout() io.ReadCloser { return p.stdout }
func (p *process) Stderr() io.ReadCloser { return p.stderr }
func (p *process) Name() string          { return p.name }

// ID returns the pid, or "" before the process started, so go-plugin finds
// nothing to kill.
func (p *process) ID() string {
	if p.pid == 0 {
		return ""
	}
	return strconv.Itoa(p.pid)
}

// Diagnose explains the usual causes of a failed handshake. go-plugin adds
// it to the error.
func (p *process) Diagnose(context.Context) string {
	return "The plugin must write the go-plugin handshake line as its first line of stdout: " +
		"build it with plugins/sdk and write nothing to stdout before calling sdk.Serve. " +
		"Its stderr (in the server's logs) usually tells why it failed."
}

// PluginToHost returns the plugin's address unchanged: both share the
// filesystem and the network.
func (p *process) PluginToHost(network, address string) (string, string, error) {
	return network, address, nil
}

// HostToPlugin returns the host's address unchanged.
func (p *process) HostToPlugin(network, address string) (string, string, error) {
	return network, address, nil
}
