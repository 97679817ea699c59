package sftpcopy

import (
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pkg/sftp"
)

func TestDestPath(t *testing.T) {
	cases := []struct {
		src, dst string
		isDir    bool
		want     string // "" = refused
	}{
		{"/etc/docker", "/tmp", true, "/tmp/docker"},
		{"/etc/docker/", "/tmp", true, "/tmp/docker"},
		{"/etc/docker", "/tmp/d", false, "/tmp/d"},
		{"..", "/tmp/d", true, ""},
		{"..", "/tmp/d", false, "/tmp/d"},
		{"a/..", "/tmp/d", true, ""},
		{"/etc/..", "/tmp/d", true, ""},
		{".", "/tmp/d", true, ""},
		{"./", "/tmp/d", true, ""},
		{"/", "/tmp/d", true, ""},
		{"/", "/tmp/d", false, "/tmp/d"},
		{"../..", ".", true, ""},
		{"../x", ".", true, "x"},
		{"x/../y", "d", true, "d/y"},
	}
	for _, c := range cases {
		got, err := destPath(c.dst, c.isDir, copyName(path.Base(path.Clean(c.src))), path.Join)
		if c.want == "" {
			if err == nil {
				t.Errorf("destPath(%q -> %q, dir=%v) = %q, want refused", c.src, c.dst, c.isDir, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("destPath(%q -> %q, dir=%v) = %q, %v; want %q", c.src, c.dst, c.isDir, got, err, c.want)
		}
	}
}

// pipeSFTP is an SFTP client talking to an in-process server on the local
// file system; relative paths are in wd, the SSH user's home.
func pipeSFTP(t *testing.T, wd string) *sftp.Client {
	t.Helper()
	cr, sw := io.Pipe()
	sr, cw := io.Pipe()
	srv, err := sftp.NewServer(struct {
		io.Reader
		io.WriteCloser
	}{sr, sw}, sftp.WithServerWorkingDirectory(wd))
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

// tree lists every path under root.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		out = append(out, strings.TrimPrefix(p, root))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// TestSCPStaysInDestination copies "..", "." and "/"-like sources into
// existing and new destinations and checks nothing is written anywhere but
// the destination given: not its parent, not $TMPDIR's.
func TestSCPStaysInDestination(t *testing.T) {
	base := t.TempDir()
	remote := filepath.Join(base, "remote")
	home := filepath.Join(remote, "home")
	for _, d := range []string{home, filepath.Join(remote, "dst"), filepath.Join(base, "local", "dst"), filepath.Join(base, "t", "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(home, "f"), []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", filepath.Join(base, "t", "tmp"))
	sc := pipeSFTP(t, home)
	t.Chdir(filepath.Join(base, "local", "dst"))
	up := ".."
	before := tree(t, base)
	for _, run := range []func() error{
		func() error { return Download(sc, up, filepath.Join(base, "local", "dst"), true) },
		func() error { return Download(sc, ".", filepath.Join(base, "local", "dst"), true) },
		func() error { return Download(sc, "/", filepath.Join(base, "local", "dst"), true) },
		func() error { return Download(sc, "..", ".", true) },
		func() error { return Relay(sc, sc, "a", "b", up, filepath.Join(remote, "dst"), true) },
		func() error { return Upload(sc, "..", filepath.Join(remote, "dst"), true) },
		func() error { return Upload(sc, ".", "..", true) },
	} {
		if err := run(); err == nil {
			t.Error("a source without a name of its own was copied into an existing folder")
		}
	}
	// Refused before anything is downloaded: the source is never asked.
	if err := Relay(nil, sc, "a", "b", "..", filepath.Join(remote, "dst"), true); err == nil || !strings.Contains(err.Error(), "no name of its own") {
		t.Errorf("relay of .. into an existing folder: %v", err)
	}
	if after := tree(t, base); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatalf("refused copies changed the files:\nbefore %q\nafter  %q", before, after)
	}
	// Into a new destination, the copy is the destination itself.
	if err := Relay(sc, sc, "a", "b", up, filepath.Join(remote, "dst", "new"), true); err != nil {
		t.Fatal(err)
	}
	if err := Download(sc, up, filepath.Join(base, "local", "dst", "new"), true); err != nil {
		t.Fatal(err)
	}
	var grown []string
	for _, p := range tree(t, base) {
		if !strings.HasPrefix(p, "/remote/dst/new") && !strings.HasPrefix(p, "/local/dst/new") && !contains(before, p) {
			grown = append(grown, p)
		}
	}
	if len(grown) > 0 {
		t.Errorf("written outside the destinations: %q", grown)
	}
	if _, err := os.Stat(filepath.Join(base, "local", "dst", "new", "home", "f")); err != nil {
		t.Errorf("the download is not in its destination: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// FuzzDestPath: whatever SRC is, a copy into an existing folder lands one
// level inside it, never on it or above it.
func FuzzDestPath(f *testing.F) {
	for _, s := range []string{"..", ".", "/", "a/..", "../x", "x/../..", "~", "a//b/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		got, err := destPath("/d", true, copyName(path.Base(path.Clean(src))), path.Join)
		if err != nil {
			return
		}
		if path.Dir(got) != "/d" || got == "/d" {
			t.Errorf("destPath(%q) = %q: not one level inside /d", src, got)
		}
	})
}

func TestSafeEntry(t *testing.T) {
	for _, ok := range []string{"a", "a.txt", "..a", ".hidden", "a b"} {
		if err := safeEntry("/d", ok); err != nil {
			t.Errorf("safeEntry(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "../x", "a/b", `..\x`, "a\x00"} {
		if err := safeEntry("/d", bad); err == nil {
			t.Errorf("safeEntry(%q) took it", bad)
		}
	}
}
