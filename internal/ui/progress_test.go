package ui

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPlainProgress(t *testing.T) {
	var buf bytes.Buffer
	p := NewProgress(&buf, ModePlain)
	p.Event("node-1", "docker", Changed, "installed 24.0.9")
	p.Event("node-2", "hostname", Unchanged, "")
	p.Close()
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", buf.String())
	}
	re := regexp.MustCompile(`^\d\d:\d\d:\d\d node-1\s+docker\s+changed  installed 24\.0\.9$`)
	if !re.MatchString(lines[0]) {
		t.Errorf("line 1 = %q, want %s", lines[0], re)
	}
	re2 := regexp.MustCompile(`^\d\d:\d\d:\d\d node-2\s+hostname\s+ok$`)
	if !re2.MatchString(lines[1]) {
		t.Errorf("line 2 = %q, want %s (no trailing detail)", lines[1], re2)
	}
	if strings.Contains(buf.String(), "\x1b") {
		t.Error("plain output holds escape sequences")
	}
}

func TestAutoOnNonTerminalIsPlain(t *testing.T) {
	// A buffer and a regular file are not terminals.
	var buf bytes.Buffer
	NewProgress(&buf, ModeAuto).Event("h", "step", Started, "d")
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Fatal("IsTerminal(regular file) = true")
	}
	if IsTerminal(&buf) {
		t.Fatal("IsTerminal(buffer) = true")
	}
	NewProgress(f, ModeAuto).Event("h", "step", Started, "d")
	fromFile, _ := os.ReadFile(f.Name())
	re := regexp.MustCompile(`^\d\d:\d\d:\d\d h\s+step\s+start  d\n$`)
	for what, got := range map[string]string{"buffer": buf.String(), "file": string(fromFile)} {
		if !re.MatchString(got) {
			t.Errorf("auto on a %s = %q, want a plain line", what, got)
		}
	}
	// An unknown mode falls back to auto.
	var other bytes.Buffer
	NewProgress(&other, "whatever").Event("h", "step", Started, "d")
	if !re.MatchString(other.String()) {
		t.Errorf("unknown mode = %q, want a plain line", other.String())
	}
}

func TestJSONProgress(t *testing.T) {
	var buf bytes.Buffer
	p := NewProgress(&buf, ModeJSON)
	before := time.Now().Add(-time.Second)
	p.Event("m1", "provision", Failed, "exit 1: \"quoted\"\nsecond line")
	p.Event("m2", "swarm", Info, "")
	p.Close()
	sc := bufio.NewScanner(&buf)
	var events []Event
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q is not a JSON event: %v", sc.Text(), err)
		}
		events = append(events, e)
	}
	if len(events) != 2 {
		t.Fatalf("got %d events, want 2", len(events))
	}
	e := events[0]
	if e.Host != "m1" || e.Step != "provision" || e.Status != Failed || e.Detail != "exit 1: \"quoted\"\nsecond line" {
		t.Errorf("event = %+v", e)
	}
	if e.Time.Before(before) || e.Time.After(time.Now().Add(time.Second)) {
		t.Errorf("event time %v is not now", e.Time)
	}
	if e.Time.Location() != time.UTC {
		t.Errorf("event time %v is not UTC", e.Time)
	}
	if events[1].Status != Info || events[1].Host != "m2" {
		t.Errorf("event 2 = %+v", events[1])
	}
	// An empty detail is left out.
	raw := map[string]any{}
	var second bytes.Buffer
	NewProgress(&second, ModeJSON).Event("h", "s", Unchanged, "")
	if err := json.Unmarshal(second.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["detail"]; ok {
		t.Errorf("empty detail is in the JSON: %s", second.String())
	}
	for _, k := range []string{"time", "host", "step", "status"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON event has no %q: %s", k, second.String())
		}
	}
}

func TestJSONProgressConcurrent(t *testing.T) {
	var buf bytes.Buffer
	p := NewProgress(&buf, ModeJSON)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				p.Event("h", "s", Started, strings.Repeat("x", 100))
			}
		}()
	}
	wg.Wait()
	n := 0
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("interleaved output: %q: %v", sc.Text(), err)
		}
		n++
	}
	if n != 400 {
		t.Errorf("got %d events, want 400", n)
	}
}

func TestQuietProgress(t *testing.T) {
	var buf bytes.Buffer
	p := NewProgress(&buf, ModeQuiet)
	p.Event("h", "s", Failed, "boom")
	p.Close()
	if buf.Len() != 0 {
		t.Errorf("quiet wrote %q", buf.String())
	}
}

// A host's text (os-release's PRETTY_NAME, a stderr tail) reaches neither
// printer with its escapes; the live printer keeps one line per host.
func TestProgressCleansHostText(t *testing.T) {
	pretty := "Ubuntu\x1b]0;owned\x07 24.04\x1b[2J"
	tail := "E: locked\r\n\x1b[31mstill\x1b[0m locked"
	var plain bytes.Buffer
	p := NewProgress(&plain, ModePlain)
	p.Event("node\x1b[1A-1", "facts", Unchanged, pretty)
	p.Event("node-1", "install", Failed, tail)
	if strings.ContainsAny(plain.String(), "\x1b\r\x07") {
		t.Errorf("plain output holds control characters: %q", plain.String())
	}
	if !strings.Contains(plain.String(), "node-1") || !strings.Contains(plain.String(), "ok  Ubuntu 24.04\n") ||
		!strings.Contains(plain.String(), "failed  E: locked\nstill locked\n") {
		t.Errorf("plain output lost the text: %q", plain.String())
	}
	var live bytes.Buffer
	lp := &liveProgress{w: &live, lines: map[string]string{}}
	lp.Event("node-1", "install", Failed, tail)
	out := strings.ReplaceAll(strings.ReplaceAll(live.String(), "\r\x1b[2K", ""), "\n", "")
	if strings.ContainsAny(out, "\x1b\r") || strings.Count(live.String(), "\n") != 1 {
		t.Errorf("live output = %q, want one clean line", live.String())
	}
}
