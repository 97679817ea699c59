// Package ui shows progress: a live line per host on a terminal, plain
// timestamped lines in a pipe, JSON events for scripts.
package ui

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// Status of a step.
type Status string

const (
	Started   Status = "start"
	Changed   Status = "changed"
	Unchanged Status = "ok"
	Failed    Status = "failed"
	Info      Status = "info"
)

// Event is one thing that happened to one host.
type Event struct {
	Time   time.Time `json:"time"`
	Host   string    `json:"host"`
	Step   string    `json:"step"`
	Status Status    `json:"status"`
	Detail string    `json:"detail,omitempty"`
}

// Progress receives events from many goroutines.
type Progress interface {
	Event(host, step string, status Status, detail string)
	// Close finishes the display (the live lines stay on screen).
	Close()
}

// Output modes for --output.
const (
	ModeAuto  = "auto"
	ModePlain = "plain"
	ModeJSON  = "json"
	ModeQuiet = "quiet"
)

// IsTerminal tells whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// NewProgress returns the progress display for mode on w.
func NewProgress(w io.Writer, mode string) Progress {
	switch mode {
	case ModeJSON:
		return &jsonProgress{enc: json.NewEncoder(w)}
	case ModeQuiet:
		return quiet{}
	case ModePlain:
		return &plainProgress{w: w}
	}
	if IsTerminal(w) {
		return &liveProgress{w: w, lines: map[string]string{}}
	}
	return &plainProgress{w: w}
}

type quiet struct{}

func (quiet) Event(string, string, Status, string) {}
func (quiet) Close()                               {}

type jsonProgress struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (p *jsonProgress) Event(host, step string, status Status, detail string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.enc.Encode(Event{Time: time.Now().UTC(), Host: host, Step: step, Status: status, Detail: detail})
}
func (p *jsonProgress) Close() {}

type plainProgress struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *plainProgress) Event(host, step string, status Status, detail string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Host, step and detail may hold a host's text: no escapes reach the
	// terminal; a multi-line detail (a stderr tail) keeps its lines.
	line := fmt.Sprintf("%s %-12s %-16s %s", time.Now().Format("15:04:05"), CleanLine(host), CleanLine(step), status)
	if detail != "" {
		line += "  " + Clean(detail)
	}
	fmt.Fprintln(p.w, line)
}
func (p *plainProgress) Close() {}

// liveProgress redraws one line per host in place.
type liveProgress struct {
	mu    sync.Mutex
	w     io.Writer
	lines map[string]string
	order []string
	drawn int
	start time.Time
}

func (p *liveProgress) Event(host, step string, status Status, detail string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.start.IsZero() {
		p.start = time.Now()
	}
	if _, ok := p.lines[host]; !ok {
		p.order = append(p.order, host)
		sort.Strings(p.order)
	}
	mark := map[Status]string{Started: "…", Changed: "✓", Unchanged: "✓", Failed: "✗", Info: "·"}[status]
	// One line per host, redrawn in place: a newline or an escape from
	// the host's text would break the redraw, or worse.
	text := fmt.Sprintf("%s %-12s %-16s %s", mark, CleanLine(host), CleanLine(step), status)
	if detail != "" {
		text += "  " + CleanLine(detail)
	}
	p.lines[host] = text
	p.redraw()
}

func (p *liveProgress) redraw() {
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	width := 120
	if f, ok := p.w.(*os.File); ok {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 10 {
			width = w - 1
		}
	}
	for _, h := range p.order {
		line := p.lines[h]
		if len([]rune(line)) > width {
			line = string([]rune(line)[:width])
		}
		b.WriteString("\r\x1b[2K" + line + "\n")
	}
	p.drawn = len(p.order)
	io.WriteString(p.w, b.String())
}

func (p *liveProgress) Close() {}
