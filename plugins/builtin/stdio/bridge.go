package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nexus-suite/nexus/plugins/contract"
	"github.com/nexus-suite/nexus/plugins/sdk"
)

// Limits of one bridged session.
const (
	// maxLineBytes is the longest line read from the command's stdout; the
	// same bound as a message on the plugin's gRPC stream.
	maxLineBytes = contract.MaxMessageBytes
	// stdinCloseWait is how long the command may take to exit after its stdin
	// closed before it gets SIGTERM, and again before SIGKILL.
	stdinCloseWait = time.Second
)

// envNamePattern matches portable environment variable names.
var envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// bridgeConfig is a bridged server's config.
type bridgeConfig struct {
	Command string            `json:"command"`
	Args    []string          `json:"args"`
	Env     map[string]string `json:"env"`
	Dir     string            `json:"dir"`
}

// bridge is the sdk.Backend that starts the configured command per session.
type bridge struct {
	mu     sync.Mutex
	config bridgeConfig
	path   string
	logger *slog.Logger
}

func (b *bridge) Configure(_ context.Context, raw json.RawMessage) error {
	var cfg bridgeConfig
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&cfg); err != nil {
		return fmt.Errorf("invalid stdio bridge config: %w", err)
	}
	if cfg.Command == "" {
		return errors.New("invalid stdio bridge config: missing command")
	}
	for name := range cfg.Env {
		if !envNamePattern.MatchString(name) || contract.IsReservedEnv(name) {
			return fmt.Errorf("invalid stdio bridge config: environment variable name %q is invalid or reserved", name)
		}
	}

	path, err := exec.LookPath(cfg.Command)
	if err != nil {
		return fmt.Errorf("invalid stdio bridge config: command %q not found: %w", cfg.Command, err)
	}
	if cfg.Dir != "" {
		info, err := os.Stat(cfg.Dir)
		if err != nil || !info.IsDir() {
			return fmt.Errorf("invalid stdio bridge config: dir %q is not a directory", cfg.Dir)
		}
	}

	b.mu.Lock()
	b.config = cfg
	b.path = path
	b.logger = sdk.Logger().With("command", cfg.Command)
	b.mu.Unlock()
	return nil
}

// Open starts the command for one session.
//
// NOTE: the command stays in the plugin's process group, so stopping the
// plugin kills it with everything it started. Closing one session signals
// only the command itself, so a process the command started and left
// running lives until the plugin stops.
func (b *bridge) Open(context.Context) (sdk.Conn, error) {
	b.mu.Lock()
	cfg, path, logger := b.config, b.path, b.logger
	b.mu.Unlock()

	cmd := exec.Command(path, cfg.Args...)
	cmd.Dir = cfg.Dir
	cmd.Env = commandEnv(os.Environ(), cfg.Env)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("create stdin pipe: %w", err)
	}
	// An os.Pipe instead of cmd.StdoutPipe keeps cmd.Wait from closing the
	// read end, so the exit is seen even while a process the command started
	// holds stdout open.
	stdout, stdoutWrite, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create stdout pipe: %w", err)
	}
	cmd.Stdout = stdoutWrite
	err = cmd.Start()
	stdoutWrite.Close()
	if err != nil {
		stdout.Close()
		return nil, fmt.Errorf("start %s: %w", cfg.Command, err)
	}
	logger.Info("command started", "pid", cmd.Process.Pid)

	c := &commandConn{
		cmd:    cmd,
		stdin:  stdin,
		stdout: stdout,
		lines:  make(chan []byte),
		closed: make(chan struct{}),
		exited: make(chan struct{}),
		logger: logger.With("pid", cmd.Process.Pid),
	}
	go c.readStdout()
	go c.wait()
	return c, nil
}

// commandEnv returns the plugin's environment without the go-plugin
// protocol's variables, then extra.
func commandEnv(base []string, extra map[string]string) []string {
	env := make([]string, 0, len(base)+len(extra))
	for _, entry := range base {
		name, _, _ := strings.Cut(entry, "=")
		if contract.IsReservedEnv(name) {
			continue
		}
		env = append(env, entry)
	}
	for name, value := range extra {
		env = append(env, name+"="+value)
	}
	return env
}

// commandConn is one session: a running command and its stdio.
type commandConn struct {
	cmd    *exec.Cmd
	logger *slog.Logger

	writeMu sync.Mutex
	stdin   io.WriteCloser
	stdout  *os.File

	// lines carries stdout lines to Read; readErr is set before it closes.
	lines   chan []byte
	readErr error

	exited  chan struct{}
	waitErr error

	closeOnce sync.Once
	closed    chan struct{}
}

// Write passes one message to the command's stdin as a single line. A message
// that spans lines is compacted first, since the stdio transport separates
// messages by newlines.
func (c *commandConn) Write(_ context.Context, message []byte) error {
	var line bytes.Buffer
	if err := json.Compact(&line, message); err != nil {
		return fmt.Errorf("invalid JSON-RPC message: %w", err)
	}
	line.WriteByte('\n')

	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if _, err := c.stdin.Write(line.Bytes()); err != nil {
		return fmt.Errorf("write to command stdin: %w", err)
	}
	return nil
}

// Read returns the next JSON line of the command's stdout, or io.EOF once
// stdout closed.
func (c *commandConn) Read(ctx context.Context) ([]byte, error) {
	select {
	case line, ok := <-c.lines:
		if !ok {
			return nil, c.readErr
		}
		return line, nil
	case <-c.closed:
		return nil, io.EOF
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// readStdout passes each JSON line of stdout to lines and skips the others,
// which a stdio server should not write but some do.
func (c *commandConn) readStdout() {
	defer close(c.lines)

	reader := bufio.NewReaderSize(c.stdout, 64<<10)
	skipped := 0
	for {
		line, err := readLine(reader)
		if len(line) > 0 {
			if json.Valid(line) {
				select {
				case c.lines <- line:
				case <-c.closed:
					c.readErr = io.EOF
					return
				}
			} else {
				skipped++
				if skipped <= maxSkippedLinesLogged {
					c.logger.Warn("skipped a stdout line that is not JSON", "bytes", len(line))
				}
			}
		}
		if err != nil {
			c.readErr = io.EOF
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				c.readErr = fmt.Errorf("read command stdout: %w", err)
			}
			return
		}
	}
}

// maxSkippedLinesLogged bounds the warnings about non-JSON stdout lines of
// one session.
const maxSkippedLinesLogged = 10

// readLine reads one line without its line ending, failing on a line longer
// than maxLineBytes.
func readLine(reader *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := reader.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxLineBytes {
			return nil, fmt.Errorf("stdout line longer than %d bytes", maxLineBytes)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimSpace(line), err
	}
}

func (c *commandConn) wait() {
	c.waitErr = c.cmd.Wait()
	close(c.exited)
	if c.waitErr != nil {
		c.logger.Info("command exited", "error", c.waitErr)
	} else {
		c.logger.Info("command exited")
	}
}

// Close ends the command in the order the MCP stdio transport specifies for
// a client: close its stdin, then SIGTERM, then SIGKILL, waiting
// stdinCloseWait between steps.
func (c *commandConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		// Not under writeMu: closing the pipe also ends a Write blocked on a
		// full pipe.
		_ = c.stdin.Close()

		c.stop()
		c.stdout.Close()
	})
	return nil
}

func (c *commandConn) stop() {
	if c.waitExit() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	if c.waitExit() {
		return
	}
	c.logger.Warn("command ignored stdin close and SIGTERM; killing it")
	_ = c.cmd.Process.Kill()
	<-c.exited
}

func (c *commandConn) waitExit() bool {
	select {
	case <-c.exited:
		return true
	case <-time.After(stdinCloseWait):
		return false
	}
}
