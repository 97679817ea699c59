package sshrun

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The output buffer keeps the last max bytes and counts what it dropped,
// whatever the sizes of the writes.
func TestLockedBufferKeepsTail(t *testing.T) {
	for _, chunk := range []int{1, 7, 100, 1000, 5000} {
		b := &lockedBuffer{max: 1000}
		var all bytes.Buffer
		for i := 0; all.Len() < 12345; i++ {
			p := bytes.Repeat([]byte{byte('a' + i%26)}, chunk)
			all.Write(p)
			if n, err := b.Write(p); n != len(p) || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
		}
		want := all.Bytes()[all.Len()-1000:]
		if got := b.Bytes(); !bytes.Equal(got, want) {
			t.Errorf("chunk %d: kept %d bytes, not the tail", chunk, len(got))
		}
		if b.Cut() != int64(all.Len()-1000) {
			t.Errorf("chunk %d: cut %d, want %d", chunk, b.Cut(), all.Len()-1000)
		}
	}
	small := &lockedBuffer{max: 10}
	small.Write([]byte("hello"))
	if string(small.Bytes()) != "hello" || small.Cut() != 0 {
		t.Errorf("under the bound: %q cut %d", small.Bytes(), small.Cut())
	}
}

// A command that prints more than the bound: Run keeps the tail, says it
// cut, and the error shows how the command ended.
func TestRunOutputBounded(t *testing.T) {
	_, cfg := setup(t, serverOpts{})
	c := dial(t, cfg)
	res, err := c.Run(ctx10(t), "head -c 20000000 /dev/zero; echo the-end; echo err-end >&2; exit 3")
	if err == nil || !strings.Contains(err.Error(), "err-end") {
		t.Fatalf("want the stderr tail in the error, got %v", err)
	}
	if len(res.Stdout) != maxStdout || !res.Truncated || !bytes.HasSuffix(res.Stdout, []byte("the-end\n")) {
		t.Errorf("stdout %d bytes (truncated %v), want the last %d", len(res.Stdout), res.Truncated, maxStdout)
	}
}

// The upload's temp file lives in a directory only its owner can enter,
// from before the file exists until it is gone.
func TestWriteFileTempIsPrivate(t *testing.T) {
	logf := filepath.Join(t.TempDir(), "install.log")
	// install -m M -o U -g G TMP NEXT: record the temp's directory mode.
	bin := fakeBin(t, map[string]string{"install": `stat -c '%a %F' "$(dirname "$7")" >> ` + logf + `; exec /usr/bin/install "$@"`})
	srv, cfg := setup(t, serverOpts{env: []string{pathEnv(bin)}})
	c := dial(t, cfg)
	dst := filepath.Join(t.TempDir(), "secret")
	if err := c.WriteFile(ctx10(t), dst, []byte("key material"), 0o600, ""); err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(logf)
	if strings.TrimSpace(string(log)) != "700 directory" {
		t.Errorf("temp directory was %q, want 700", log)
	}
	assertOnly(t, srv.home) // file and directory are gone
}
