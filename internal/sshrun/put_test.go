package sshrun

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkg/sftp"
)

// pipeSFTP is an SFTP client talking to an in-process server on the local
// file system (paths are absolute).
func pipeSFTP(t *testing.T) *sftp.Client {
	t.Helper()
	cr, sw := io.Pipe()
	sr, cw := io.Pipe()
	srv, err := sftp.NewServer(struct {
		io.Reader
		io.WriteCloser
	}{sr, sw})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	sc, err := sftp.NewClientPipe(cr, cw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cw.Close(); srv.Close(); sc.Close() })
	return sc
}

// spyReader checks, when the upload reads its data, that nothing in dir
// another user could open holds it yet.
type spyReader struct {
	t    *testing.T
	dir  string
	data io.Reader
	seen bool
}

func (s *spyReader) Read(p []byte) (int, error) {
	if !s.seen {
		s.seen = true
		entries, err := os.ReadDir(s.dir)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, e := range entries {
			fi, err := os.Lstat(filepath.Join(s.dir, e.Name()))
			if err != nil {
				s.t.Fatal(err)
			}
			if fi.Mode().Perm()&0o077 != 0 {
				s.t.Errorf("while the data is written, %s is %v: others can open it", e.Name(), fi.Mode())
			}
		}
	}
	return s.data.Read(p)
}

func TestPutFilePrivateWhileWritten(t *testing.T) {
	sc := pipeSFTP(t)
	for _, exists := range []bool{false, true} {
		dir := t.TempDir()
		dst := filepath.Join(dir, "secret")
		if exists {
			if err := os.WriteFile(dst, []byte("old contents that are longer"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		r := &spyReader{t: t, dir: dir, data: strings.NewReader("token")}
		if err := PutFile(sc, dst, r, 0o640); err != nil {
			t.Fatalf("exists=%v: %v", exists, err)
		}
		got, err := os.ReadFile(dst)
		if err != nil || string(got) != "token" {
			t.Errorf("exists=%v: dst holds %q, %v", exists, got, err)
		}
		fi, _ := os.Stat(dst)
		if fi.Mode().Perm() != 0o640 {
			t.Errorf("exists=%v: dst is %v, want 0640", exists, fi.Mode())
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("exists=%v: %d entries left in the folder, want only dst", exists, len(entries))
		}
	}
}

func TestPutFileRefusesFolder(t *testing.T) {
	sc := pipeSFTP(t)
	dir := t.TempDir()
	if err := PutFile(sc, dir, strings.NewReader("x"), 0o600); err == nil {
		t.Error("PutFile over a folder worked")
	}
}
