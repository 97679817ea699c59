package buildctx

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func tarNames(t *testing.T, c *Context) []string {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Tar(&buf); err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

func TestReadHonoursDockerignore(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"Dockerfile":               "FROM busybox\n",
		".dockerignore":            "node_modules\n*.log\n!keep.log\nDockerfile\n",
		"app/main.go":              "package main\n",
		"node_modules/x/index.js":  "x",
		"debug.log":                "noise",
		"keep.log":                 "kept",
		"app/deep/node_modules/ok": "only the top node_modules is ignored",
	})
	c, err := Read(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".dockerignore", "Dockerfile", "app/", "app/deep/", "app/deep/node_modules/", "app/deep/node_modules/ok", "app/main.go", "keep.log"}
	if got := tarNames(t, c); !reflect.DeepEqual(got, want) {
		t.Errorf("context sends %q, want %q", got, want)
	}
}

func TestDigestFollowsContentOnly(t *testing.T) {
	files := map[string]string{"Dockerfile": "FROM busybox\nCOPY . /app\n", "a.txt": "one", ".dockerignore": "*.tmp\n"}
	dir := writeTree(t, files)
	first, err := Read(dir, "Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first.Digest, "sha256:") || len(first.Digest) != 71 {
		t.Fatalf("digest %q", first.Digest)
	}
	same := func(what string, wantSame bool) {
		t.Helper()
		c, err := Read(dir, "Dockerfile")
		if err != nil {
			t.Fatal(err)
		}
		if (c.Digest == first.Digest) != wantSame {
			t.Errorf("%s: digest %s, first %s, want same=%v", what, c.Digest, first.Digest, wantSame)
		}
	}
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "a.txt"), future, future); err != nil {
		t.Fatal(err)
	}
	same("a file's time changed", true)
	if err := os.WriteFile(filepath.Join(dir, "scratch.tmp"), []byte("ignored"), 0o644); err != nil {
		t.Fatal(err)
	}
	same("an ignored file appeared", true)
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	same("a file's content changed", false)
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "a.txt"), 0o755); err != nil {
		t.Fatal(err)
	}
	same("a file's mode changed", false)
}

func TestReadRefuses(t *testing.T) {
	dir := writeTree(t, map[string]string{"sub/Dockerfile": "FROM busybox\n", "x": "x"})
	for _, df := range []string{"../Dockerfile", "/etc/passwd", "missing", ".", "sub"} {
		if _, err := Read(filepath.Join(dir, "sub"), df); err == nil {
			t.Errorf("Read(sub, %q) accepted", df)
		}
	}
	if c, err := Read(dir, "sub/Dockerfile"); err != nil || c.Dockerfile != "sub/Dockerfile" {
		t.Errorf("a Dockerfile in a subdirectory: %+v, %v", c, err)
	}
	if c, err := Read(dir, filepath.Join(dir, "sub", "Dockerfile")); err != nil || c.Dockerfile != "sub/Dockerfile" {
		t.Errorf("an absolute Dockerfile inside the context: %+v, %v", c, err)
	}
}

func TestSymlinkIsSentAsALink(t *testing.T) {
	dir := writeTree(t, map[string]string{"Dockerfile": "FROM busybox\n"})
	if err := os.Symlink("/etc/shadow", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	c, err := Read(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.Tar(&buf); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatal("no link in the tar stream:", err)
		}
		if h.Name == "link" {
			if h.Typeflag != tar.TypeSymlink || h.Linkname != "/etc/shadow" || h.Size != 0 {
				t.Errorf("link sent as %+v, want a symlink with no content", h)
			}
			return
		}
	}
}
