package ui

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPTY opens a pseudo-terminal pair with the syscall package only.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		m.Close()
		t.Skipf("unlockpt: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		m.Close()
		t.Skipf("ptsname: %v", e)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("open pts: %v", err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// readAvailable collects what the terminal shows until want appears (or 5s pass).
func readAvailable(t *testing.T, m *os.File, want string) string {
	t.Helper()
	var buf bytes.Buffer
	chunk := make([]byte, 4096)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(buf.String(), want) && time.Now().Before(deadline) {
		_ = m.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := m.Read(chunk)
		buf.Write(chunk[:n])
		if err != nil && err != io.EOF && !os.IsTimeout(err) {
			break
		}
	}
	return buf.String()
}

func TestLiveProgressOnTerminal(t *testing.T) {
	m, s := openPTY(t)
	if !IsTerminal(s) {
		t.Fatal("IsTerminal(pty) = false")
	}
	p := NewProgress(s, ModeAuto)
	p.Event("zeta", "docker", Started, "")
	p.Event("alpha", "hostname", Changed, "set")
	p.Event("zeta", "docker", Failed, "exit 1")
	p.Close()
	out := readAvailable(t, m, "exit 1")
	// Lines are redrawn in place: erase-line sequences and a cursor-up by
	// the number of lines drawn before.
	if !strings.Contains(out, "\x1b[2K") {
		t.Errorf("live output has no erase-line: %q", out)
	}
	if !strings.Contains(out, "\x1b[1A") || !strings.Contains(out, "\x1b[2A") {
		t.Errorf("live output does not move the cursor up over its lines: %q", out)
	}
	// The last frame: one line per host, sorted by host, the latest step.
	frames := strings.Split(out, "\x1b[2A")
	last := frames[len(frames)-1]
	ia, iz := strings.Index(last, "alpha"), strings.Index(last, "zeta")
	if ia < 0 || iz < 0 || ia > iz {
		t.Fatalf("last frame %q: want alpha then zeta", last)
	}
	if !strings.Contains(last, "✓") || !strings.Contains(last, "✗") {
		t.Errorf("last frame %q: want the changed and failed marks", last)
	}
	if !strings.Contains(last, "failed  exit 1") || strings.Contains(last, "start") {
		t.Errorf("last frame %q: zeta's line should be its latest event only", last)
	}
	if strings.Count(last, "\x1b[2K") != 2 {
		t.Errorf("last frame %q: want exactly 2 lines redrawn", last)
	}
	// No plain timestamps on a terminal.
	if timestampRE.MatchString(out) {
		t.Errorf("live output has plain timestamps: %q", out)
	}
}

var timestampRE = regexp.MustCompile(`\d\d:\d\d:\d\d `)
