package main

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// Log buffering: the access log writes one line per request, and a write
// system call per line would cost more than the rest of the hot path. The
// buffer is flushed when it fills, every logFlushInterval, and on Close.
const (
	logBufferBytes   = 64 << 10
	logFlushInterval = 100 * time.Millisecond
)

// bufferedWriter is an io.Writer safe for concurrent use that batches
// writes to the underlying writer.
type bufferedWriter struct {
	mu     sync.Mutex
	buffer *bufio.Writer
	stop   chan struct{}
	done   chan struct{}
}

func newBufferedWriter(w io.Writer) *bufferedWriter {
	b := &bufferedWriter{
		buffer: bufio.NewWriterSize(w, logBufferBytes),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go b.flushLoop()
	return b
}

// Write appends p to the buffer; a full buffer is written out first.
func (b *bufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buffer.Write(p)
}

// Close stops the periodic flush and writes out what is buffered.
func (b *bufferedWriter) Close() error {
	close(b.stop)
	<-b.done
	return b.flush()
}

func (b *bufferedWriter) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buffer.Flush()
}

func (b *bufferedWriter) flushLoop() {
	defer close(b.done)
	ticker := time.NewTicker(logFlushInterval)
	defer ticker.Stop()

	for {
		select {
		case <-b.stop:
			return
		case <-ticker.C:
			_ = b.flush()
		}
	}
}
