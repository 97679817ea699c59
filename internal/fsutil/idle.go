package fsutil

import (
	"os"
	"sync"
	"time"
)

// IdleFile appends to a file that it keeps open only while it is written
// to: idle for a while, the file is closed, and the next write opens it
// again. A run over many hosts keeps each host's log so without holding a
// descriptor per host while the host waits for the others.
type IdleFile struct {
	path string
	idle time.Duration

	mu     sync.Mutex
	f      *os.File
	timer  *time.Timer
	closed bool
}

// NewIdleFile appends to the file at path (which must exist), closing it
// after idle without a write.
func NewIdleFile(path string, idle time.Duration) *IdleFile {
	return &IdleFile{path: path, idle: idle}
}

// Write appends p, opening the file when it is closed.
func (w *IdleFile) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, os.ErrClosed
	}
	if w.f == nil {
		f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return 0, err
		}
		w.f = f
	}
	if w.timer == nil {
		w.timer = time.AfterFunc(w.idle, w.closeIdle)
	} else {
		w.timer.Reset(w.idle)
	}
	return w.f.Write(p)
}

// closeIdle closes the file after a time without writes.
func (w *IdleFile) closeIdle() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
}

// open tells whether the file is open now (for tests).
func (w *IdleFile) open() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f != nil
}

// Close closes the file; later writes fail.
func (w *IdleFile) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	if w.timer != nil {
		w.timer.Stop()
	}
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}
