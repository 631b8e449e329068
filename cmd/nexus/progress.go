package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"
)

// progressRedrawInterval limits how often the progress line is redrawn.
const progressRedrawInterval = 100 * time.Millisecond

// progressBar draws one line of progress on a terminal: the label, the
// share done when the total is known, and the bytes. Each redraw returns
// the cursor to the line's start, and End ends the line.
type progressBar struct {
	mu       sync.Mutex
	out      io.Writer
	label    string
	total    int64
	done     int64
	drawn    time.Time
	anything bool
}

// newProgress returns a progress display on the command's stderr when it
// is a terminal and --json is off, and nil otherwise.
func newProgress(cmd *cobra.Command) *progressBar {
	if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
		return nil
	}
	file, ok := cmd.ErrOrStderr().(*os.File)
	if !ok || !isTerminal(file) {
		return nil
	}
	return &progressBar{out: file}
}

func (p *progressBar) Begin(label string, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.label, p.total, p.done, p.anything = label, total, 0, false
	p.draw(true)
}

func (p *progressBar) Advance(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	p.draw(false)
}

func (p *progressBar) End() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw(true)
	if p.anything {
		fmt.Fprintln(p.out)
	}
}

// Upload reports the bytes of one request body as they are sent, as a
// client.Request.UploadProgress function.
func (p *progressBar) Upload(sent, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total, p.done = total, sent
	p.draw(sent == total)
}

func (p *progressBar) draw(force bool) {
	now := time.Now()
	if !force && now.Sub(p.drawn) < progressRedrawInterval {
		return
	}
	p.drawn, p.anything = now, true
	if p.total > 0 {
		share := min(100*p.done/p.total, 100)
		fmt.Fprintf(p.out, "\r%s %3d%% %s of %s\033[K", p.label, share, formatBytes(p.done), formatBytes(p.total))
		return
	}
	fmt.Fprintf(p.out, "\r%s %s\033[K", p.label, formatBytes(p.done))
}

// formatBytes formats n in binary units, such as 1.5 MiB.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	value, suffix := float64(n)/unit, 0
	for value >= unit && suffix < 4 {
		value /= unit
		suffix++
	}
	return fmt.Sprintf("%.1f %ciB", value, "KMGTP"[suffix])
}
