package host

import (
	"bytes"
	"io"
	"sync"
)

// maxOutputLineBytes is the longest line passed on whole; a longer line is
// passed on in pieces of this size.
const maxOutputLineBytes = 16 << 10

// outputLines joins what the plugin writes to stderr and stdout, which reach
// the host through several go-plugin goroutines in pieces, into whole lines
// written to one io.Writer one at a time.
type outputLines struct {
	mu      sync.Mutex
	out     io.Writer
	writers []*lineWriter
}

func newOutputLines(out io.Writer) *outputLines {
	if out == nil {
		out = io.Discard
	}
	return &outputLines{out: out}
}

// writer returns a writer for one source of output (stderr, synced stderr or
// stdout). Each source keeps its own
// partial line, so pieces from two sources never mix within a line.
func (o *outputLines) writer() io.Writer {
	w := &lineWriter{lines: o}
	o.mu.Lock()
	o.writers = append(o.writers, w)
	o.mu.Unlock()
	return w
}

// flush passes on every partial line, ended with '\n'.
func (o *outputLines) flush() {
	o.mu.Lock()
	writers := append([]*lineWriter(nil), o.writers...)
	o.mu.Unlock()

	for _, w := range writers {
		w.flush()
	}
}

func (o *outputLines) emit(line []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, _ = o.out.Write(line)
}

type lineWriter struct {
	lines *outputLines

	mu      sync.Mutex
	partial []byte
}

func (w *lineWriter) Write(data []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()

	written := len(data)
	for len(data) > 0 {
		end := bytes.IndexByte(data, '\n')
		if end < 0 {
			w.partial = append(w.partial, data...)
			for len(w.partial) >= maxOutputLineBytes {
				w.emitLocked(w.partial[:maxOutputLineBytes])
				w.partial = w.partial[maxOutputLineBytes:]
			}
			break
		}

		w.partial = append(w.partial, data[:end]...)
		w.emitLocked(w.partial)
		w.partial = w.partial[:0]
		data = data[end+1:]
	}
	return written, nil
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.emitLocked(w.partial)
		w.partial = nil
	}
}

// emitLocked writes one line with its '\n'. The caller holds w.mu.
func (w *lineWriter) emitLocked(text []byte) {
	line := make([]byte, 0, len(text)+1)
	line = append(line, text...)
	line = append(line, '\n')
	w.lines.emit(line)
}
