package cluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/provision/osfamily"
)

// runPurgeFunc runs one of purgeFuncs on a temp file holding content and
// returns what the file holds afterwards.
func runPurgeFunc(t *testing.T, call string, content string, args ...string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", append([]string{"-c", purgeFuncs + call + ` "$@"`, "sh", f}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", call, err, out)
	}
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(f); st.Mode().Perm() != 0o640 {
		t.Errorf("%s changed the mode to %v", call, st.Mode().Perm())
	}
	return string(b)
}

func TestPurgeStripBlock(t *testing.T) {
	const b, e = "# BEGIN shoal cluster a.b", "# END shoal cluster a.b"
	for _, tc := range []struct{ name, in, want string }{
		{"middle", "x\n" + b + "\nHost n1\n" + e + "\ny\n", "x\ny\n"},
		{"no final newline", "x\ny\n" + b + "\nk\n" + e, "x\ny\n"},
		{"crlf", "x\r\n" + b + "\r\nk\r\n" + e + "\r\ny\r\n", "x\r\ny\r\n"},
		{"empty", "", ""},
		// A name is matched as text, not as a pattern: "a.b" is not "axb".
		{"other cluster", "# BEGIN shoal cluster axb\nk\n# END shoal cluster axb\n", "# BEGIN shoal cluster axb\nk\n# END shoal cluster axb\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := runPurgeFunc(t, "strip", tc.in, b, e); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPurgeDropKeys(t *testing.T) {
	in := "ssh-ed25519 AAAA me@laptop\nssh-ed25519 BBBB shoal-cluster-c1\r\nssh-ed25519 CCCC shoal-cluster-c10\nssh-ed25519 DDDD shoal-cluster-c1"
	want := "ssh-ed25519 AAAA me@laptop\nssh-ed25519 CCCC shoal-cluster-c10\n"
	if got := runPurgeFunc(t, "dropkeys", in, " shoal-cluster-c1"); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// restorerepos puts back what os_mirror set aside, byte for byte, and
// drops shoal's mirror file; other files stay.
func TestPurgeRestoresRepos(t *testing.T) {
	if osfamily.MirrorRepoFile != "/etc/yum.repos.d/shoal-os-mirror.repo" || osfamily.RepoBackupExt != ".shoal-orig" {
		t.Fatalf("restorerepos names %s and %s: change it with them", osfamily.MirrorRepoFile, osfamily.RepoBackupExt)
	}
	dir := t.TempDir()
	files := map[string]string{
		"CentOS-Base.repo.shoal-orig": "[base]\nmirrorlist=http://mirrorlist.centos.org/\n",
		"CentOS-Media.repo":           "[c7-media]\nenabled=0\n",
		"shoal-os-mirror.repo":        "[base]\nbaseurl=https://vault.centos.org/7.9.2009/os/$basearch/\n",
		"docker-ce.repo":              "[docker-ce-stable]\n",
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("sh", "-c", purgeFuncs+`restorerepos "$1"`, "sh", dir).CombinedOutput(); err != nil {
		t.Fatalf("restorerepos: %v\n%s", err, out)
	}
	want := map[string]string{
		"CentOS-Base.repo":  files["CentOS-Base.repo.shoal-orig"],
		"CentOS-Media.repo": files["CentOS-Media.repo"],
		"docker-ce.repo":    files["docker-ce.repo"],
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(want) {
		t.Errorf("want %d files, got %v", len(want), entries)
	}
	for n, c := range want {
		if b, err := os.ReadFile(filepath.Join(dir, n)); err != nil || string(b) != c {
			t.Errorf("%s: got %q (%v), want %q", n, b, err, c)
		}
	}
	// No /etc/yum.repos.d (Debian): nothing to do, no error.
	if out, err := exec.Command("sh", "-c", purgeFuncs+`restorerepos "$1"`, "sh", filepath.Join(dir, "none")).CombinedOutput(); err != nil {
		t.Fatalf("restorerepos without the directory: %v\n%s", err, out)
	}
}

// A hostile docker user or cluster name is one quoted word of the script:
// it parses, and the values appear only inside single quotes.
func TestPurgeScriptQuotes(t *testing.T) {
	s := purgeScript("x; touch /tmp/pwned; echo x", "c'$(id)")
	if out, err := exec.Command("sh", "-n", "-c", s).CombinedOutput(); err != nil {
		t.Fatalf("sh -n: %v\n%s", err, out)
	}
	for _, want := range []string{
		`getent passwd 'x; touch /tmp/pwned; echo x'`,
		`rm -f "$h/.ssh/"'shoal-c'\''$(id)'`,
		`dropkeys "$h/.ssh/authorized_keys" ' shoal-cluster-c'\''$(id)'`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %s:\n%s", want, s)
		}
	}
	if strings.Contains(s, "/tmp/.shoal") || !strings.HasPrefix(s, "set -e\n") {
		t.Errorf("want set -e and no fixed temp path:\n%s", s)
	}
}

// One host's panic fails that host alone: the others run to the end.
func TestParallelIsolatesPanics(t *testing.T) {
	hosts := []*host{{spec: Node{Name: "a"}}, {spec: Node{Name: "b"}}, {spec: Node{Name: "c"}}}
	var done sync.Map
	err := parallel(context.Background(), 3, hosts, func(_ context.Context, h *host) error {
		if h.spec.Name == "b" {
			var m map[string]any
			m["x"] = 1 // the daemon.json null panic of issue 10
		}
		time.Sleep(20 * time.Millisecond)
		done.Store(h.spec.Name, true)
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "b: internal error") {
		t.Fatalf("want b's panic as its error, got %v", err)
	}
	for _, n := range []string{"a", "c"} {
		if _, ok := done.Load(n); !ok {
			t.Errorf("host %s did not finish", n)
		}
	}
}
