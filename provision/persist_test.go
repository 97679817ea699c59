package provision

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostsAwkMatchesEditHosts: the awk that runs at boot writes exactly
// what EditHosts writes, so that a restored /etc/hosts is no change.
func TestHostsAwkMatchesEditHosts(t *testing.T) {
	if _, err := exec.LookPath("awk"); err != nil {
		t.Fatal("awk is needed for this test")
	}
	entries := []HostEntry{{IP: "10.0.0.1", Names: []string{"n1", "n1.lab"}}, {IP: "10.0.0.2", Names: []string{"n2"}}}
	docker := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n172.18.0.2\te2e-ac-r1\n"
	for _, tc := range []struct {
		name, content, hostname string
		entries                 []HostEntry
	}{
		{"docker rewrote it", docker, "n1", entries},
		{"already right", must(EditHosts(docker, "n1", entries)), "n1", entries},
		{"old block and loopback", "127.0.0.1 localhost\n127.0.1.1 old\n# BEGIN shoal: cluster nodes (managed, do not edit)\n1.2.3.4 x\n# END shoal\n10.1.1.1 other\n", "n2", entries},
		{"no 127.0.0.1", "10.0.0.9 a\n", "h", entries},
		{"empty", "", "h", entries},
		{"only newline", "\n", "h", entries},
		{"trailing blank lines", "127.0.0.1 localhost\n\n\n", "h", nil},
		{"comments and spaces", "  # c\n   127.0.1.1   h other\n\t127.0.0.1 l\n", "h", entries},
		{"stray end marker", "# END shoal\n127.0.0.1 l\n", "h", entries},
		{"unclosed block", "127.0.0.1 l\n# BEGIN shoal: cluster nodes (managed, do not edit)\n1.1.1.1 y\n", "h", entries},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			hosts := filepath.Join(dir, "hosts")
			block := filepath.Join(dir, "block")
			os.WriteFile(hosts, []byte(tc.content), 0o644)
			os.WriteFile(block, []byte(must(hostsBlock(tc.entries))), 0o644)
			out, err := exec.Command("awk", "-v", "hn="+tc.hostname, "-v", "begin="+hostsBegin, "-v", "end="+hostsEnd,
				"-v", "blockfile="+block, hostsAwk, hosts).Output()
			if err != nil {
				t.Fatal(err)
			}
			want := must(EditHosts(tc.content, tc.hostname, tc.entries))
			if string(out) != want {
				t.Errorf("awk:\n%q\nEditHosts:\n%q", out, want)
			}
		})
	}
}

func TestRestoreScriptParses(t *testing.T) {
	f := filepath.Join(t.TempDir(), "restore")
	os.WriteFile(f, []byte(restoreScript()), 0o755)
	if out, err := exec.Command("sh", "-n", f).CombinedOutput(); err != nil {
		t.Fatalf("sh -n: %v\n%s", err, out)
	}
}

func TestPersistChanges(t *testing.T) {
	entries := []HostEntry{{IP: "10.0.0.1", Names: []string{"n1"}}}
	sums := func(files []PersistFile) string {
		var b strings.Builder
		for _, f := range files {
			s := sha256.Sum256(f.Data)
			fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(s[:]), f.Path)
		}
		return b.String()
	}
	all := must(PersistFiles("n1", entries, false))
	allCloud := must(PersistFiles("n1", entries, true))
	for _, tc := range []struct {
		name, probe string
		write       int
		enable      bool
	}{
		{"fresh host", "@@enabled\n@@cloud\n", 4, true},
		{"fresh cloud host", "@@enabled\n@@cloud\nyes\n", 5, true},
		{"all there", sums(all) + "@@enabled\nenabled\n@@cloud\n", 0, false},
		{"all there, cloud", sums(allCloud) + "@@enabled\nenabled\n@@cloud\nyes\n", 0, false},
		{"cloud-init appeared", sums(all) + "@@enabled\nenabled\n@@cloud\nyes\n", 1, false},
		{"disabled", sums(all) + "@@enabled\ndisabled\n@@cloud\n", 0, true},
		{"new block", sums(must(PersistFiles("n1", nil, false))) + "@@enabled\nenabled\n@@cloud\n", 1, false},
		// As the facts probe's section carries it: the final newline trimmed.
		{"all there, trimmed", sums(all) + "@@enabled\nenabled\n@@cloud", 0, false},
		{"all there, cloud, trimmed", sums(allCloud) + "@@enabled\nenabled\n@@cloud\nyes", 0, false},
		{"fresh host, trimmed", "@@enabled\n@@cloud", 4, true},
	} {
		w, en, err := PersistChanges(tc.probe, "n1", entries)
		if err != nil {
			t.Fatal(err)
		}
		if len(w) != tc.write || en != tc.enable {
			t.Errorf("%s: write %d enable %v, want %d %v", tc.name, len(w), en, tc.write, tc.enable)
		}
	}
}

// must is for values a test builds from valid input.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
