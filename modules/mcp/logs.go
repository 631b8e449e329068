package mcp

import (
	"bytes"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nexus-suite/nexus/runtime/clock"
)

// maxLogLineBytes caps one stored line; the rest of a longer line is dropped.
const maxLogLineBytes = 4 << 10

// Sources of a log line.
const (
	logSourceStderr     = "stderr"
	logSourceSupervisor = "supervisor"
)

// logLine is one line of a server's log as GET …/logs returns it.
type logLine struct {
	Time time.Time `json:"time"`
	// Source is "stderr" for the plugin's own output and "supervisor" for
	// the starts, exits and restarts that nexus recorded.
	Source string `json:"source"`
	Line   string `json:"line"`
}

// logRing keeps the last lines of a server's stderr and of its supervisor's
// events, across restarts of the process. It is safe for concurrent use.
type logRing struct {
	clock clock.Clock

	mu    sync.Mutex
	lines []logLine
	next  int
	full  bool
	// dropped counts the lines that fell out of the ring.
	dropped int64
}

func newLogRing(size int, clk clock.Clock) *logRing {
	return &logRing{clock: clk, lines: make([]logLine, size)}
}

// Write stores p as stderr lines. plugins/host calls it with one whole line
// at a time, but Write splits p on newlines anyway.
func (r *logRing) Write(p []byte) (int, error) {
	for line := range bytes.SplitSeq(bytes.TrimRight(p, "\r\n"), []byte("\n")) {
		r.add(logSourceStderr, string(bytes.TrimRight(line, "\r")))
	}
	return len(p), nil
}

// record stores a supervisor event.
func (r *logRing) record(line string) { r.add(logSourceSupervisor, line) }

func (r *logRing) add(source, line string) {
	if len(line) > maxLogLineBytes {
		line = line[:maxLogLineBytes]
		for !utf8.ValidString(line) {
			line = line[:len(line)-1]
		}
	}
	entry := logLine{Time: r.clock.Now().UTC(), Source: source, Line: line}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.full {
		r.dropped++
	}
	r.lines[r.next] = entry
	r.next++
	if r.next == len(r.lines) {
		r.next, r.full = 0, true
	}
}

// tail returns up to n of the newest lines, oldest first, and how many
// lines fell out of the ring before them.
func (r *logRing) tail(n int) ([]logLine, int64) {
	r.mu.Lock()
	defer r.mu.Unlock()

	var ordered []logLine
	if r.full {
		ordered = append(ordered, r.lines[r.next:]...)
	}
	ordered = append(ordered, r.lines[:r.next]...)
	if n >= 0 && len(ordered) > n {
		return append([]logLine(nil), ordered[len(ordered)-n:]...), r.dropped + int64(len(ordered)-n)
	}
	return ordered, r.dropped
}
