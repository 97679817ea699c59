package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/machine"
)

const (
	oldEntry = "ssh-ed25519 AAAAold shoal-cluster-c1"
	newEntry = "ssh-ed25519 AAAAnew shoal-cluster-c1"
)

func TestEditAuthorizedKeys(t *testing.T) {
	for _, tc := range []struct{ name, in, pub, want string }{
		{"empty file", "", newEntry, newEntry + "\n"},
		{"old replaced, others kept in place",
			"ssh-rsa AAAAme me@laptop\n" + oldEntry + "\nssh-ed25519 AAAAops ops\n",
			newEntry, "ssh-rsa AAAAme me@laptop\nssh-ed25519 AAAAops ops\n" + newEntry + "\n"},
		{"already there: unchanged",
			"a b c\n" + newEntry + "\nd e f\n", newEntry, "a b c\n" + newEntry + "\nd e f\n"},
		{"already there, old one too: old dropped",
			oldEntry + "\n" + newEntry + "\n", newEntry, newEntry + "\n"},
		{"duplicates of the new one: one stays",
			newEntry + "\nx y z\n" + newEntry + "\n", newEntry, newEntry + "\nx y z\n"},
		{"options before the key",
			`from="10.0.0.0/8" ` + oldEntry + "\n", newEntry, newEntry + "\n"},
		{"crlf and trailing blanks", "x y\r\n" + oldEntry + " \r\n", newEntry, "x y\r\n" + newEntry + "\n"},
		{"no final newline", "ssh-rsa AAAAme me", newEntry, "ssh-rsa AAAAme me\n" + newEntry + "\n"},
		// Another cluster's entry, one whose name starts the same, a
		// comment line, and a mention in another comment stay.
		{"other clusters stay",
			"ssh-ed25519 AAAAx shoal-cluster-c10\n# shoal-cluster-c1\nssh-ed25519 AAAAy shoal-cluster-c1 for real\n" + oldEntry + "\n",
			newEntry, "ssh-ed25519 AAAAx shoal-cluster-c10\n# shoal-cluster-c1\nssh-ed25519 AAAAy shoal-cluster-c1 for real\n" + newEntry + "\n"},
		{"revoke: pub empty drops them", "a b c\n" + oldEntry + "\n" + newEntry + "\n", "", "a b c\n"},
		{"blank lines stay", "\n\na b\n", newEntry, "\n\na b\n" + newEntry + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := editAuthorizedKeys(tc.in, "shoal-cluster-c1", tc.pub)
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if again := editAuthorizedKeys(got, "shoal-cluster-c1", tc.pub); again != got {
				t.Errorf("not idempotent: %q then %q", got, again)
			}
		})
	}
}

// FuzzEditAuthorizedKeys: whatever the file holds, every line that is not
// the cluster's stays, in order; the cluster's entries are the new key
// alone; a second edit changes nothing.
func FuzzEditAuthorizedKeys(f *testing.F) {
	f.Add("ssh-rsa AAAAme me@laptop\n"+oldEntry+"\n", "c1")
	f.Add("# c\n\r\n\t x y shoal-cluster-c1\nshoal-cluster-c1", "c1")
	f.Add("a\x00b shoal-cluster-x\n", "x")
	f.Fuzz(func(t *testing.T, text, cluster string) {
		if store.ValidateName(cluster) != nil {
			return // a cluster's name is checked before any key is made
		}
		comment := clusterKeyComment(cluster)
		pub := "ssh-ed25519 AAAAnew " + comment
		got := editAuthorizedKeys(text, comment, pub)
		var others, wantOthers []string
		entries := 0
		for _, l := range strings.SplitAfter(got, "\n") {
			if isClusterEntry(l, comment) {
				entries++
				if strings.Join(strings.Fields(l), " ") != strings.Join(strings.Fields(pub), " ") {
					t.Fatalf("a cluster entry that is not the new key: %q", l)
				}
			} else if l != "" {
				others = append(others, strings.TrimSuffix(l, "\n"))
			}
		}
		if entries != 1 {
			t.Fatalf("%d cluster entries in %q", entries, got)
		}
		for _, l := range strings.SplitAfter(text, "\n") {
			if l != "" && !isClusterEntry(l, comment) {
				wantOthers = append(wantOthers, strings.TrimSuffix(l, "\n"))
			}
		}
		if !reflect.DeepEqual(others, wantOthers) {
			t.Fatalf("other lines changed: %q -> %q", wantOthers, others)
		}
		if again := editAuthorizedKeys(got, comment, pub); again != got {
			t.Fatalf("not idempotent: %q then %q", got, again)
		}
		if revoked := editAuthorizedKeys(got, comment, ""); strings.Contains(revoked, "AAAAnew") && !strings.Contains(text, "AAAAnew") {
			t.Fatalf("revoke kept the key: %q", revoked)
		}
	})
}

func TestKeyRotationDue(t *testing.T) {
	for _, tc := range []struct {
		name          string
		holders, keep []string
		want          bool
	}{
		{"first run", nil, []string{"a", "b"}, false},
		{"same machines", []string{"a", "b", "a"}, []string{"a", "b"}, false},
		{"a machine added", []string{"a"}, []string{"a", "b"}, false},
		{"a machine removed", []string{"a", "b", "c"}, []string{"a", "b"}, true},
		{"replaced by another name", []string{"a", "b"}, []string{"a", "c"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := keyRotationDue(tc.holders, tc.keep); got != tc.want {
				t.Errorf("keyRotationDue(%v, %v) = %v, want %v", tc.holders, tc.keep, got, tc.want)
			}
		})
	}
}

func TestReplaceKeyList(t *testing.T) {
	got := replaceKeyList([]string{"ssh-rsa AAAAme me", oldEntry}, "shoal-cluster-c1", newEntry)
	if want := []string{"ssh-rsa AAAAme me", newEntry}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// upKey makes a new key (0600, the public half matching) when a machine
// that held the old one is gone from the file, and keeps it otherwise.
func TestUpKeyRotatesWhenAMachineLeaves(t *testing.T) {
	st := newStore(t)
	c := &Converger{Machines: &machine.Manager{Store: st}}
	three := &Spec{Name: "lab", Machines: []Node{{Name: "n1"}, {Name: "n2"}, {Name: "n3"}}}
	priv, pub, err := c.upKey(three, nil)
	if err != nil {
		t.Fatal(err)
	}
	prev := &State{Name: "lab", Machines: []string{"n1", "n2", "n3"}}
	priv2, pub2, err := c.upKey(three, prev)
	if err != nil {
		t.Fatal(err)
	}
	if string(priv2) != string(priv) || pub2 != pub {
		t.Fatal("the key changed though no machine left")
	}
	two := &Spec{Name: "lab", Machines: []Node{{Name: "n1"}, {Name: "n2"}}}
	priv3, pub3, err := c.upKey(two, prev)
	if err != nil {
		t.Fatal(err)
	}
	if string(priv3) == string(priv) || pub3 == pub {
		t.Fatal("n3 left and the key stayed")
	}
	if want, _ := publicOf(priv3, "lab"); want != pub3 || !strings.HasSuffix(pub3, " shoal-cluster-lab") {
		t.Errorf("public key %q does not match the private one (%q)", pub3, want)
	}
	fi, err := os.Stat(filepath.Join(st.ClusterDir("lab"), store.KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v, want 0600", fi, err)
	}
	if p, q, _ := clusterKey(st, "lab"); string(p) != string(priv3) || q != pub3 {
		t.Error("the store does not hold the new key")
	}
}

// peerProbe, run with stand-ins for getent and id on a docker user's
// home, answers five parts; its last tells whether authorized_keys must
// change: only when it lacks the key, or has an older one.
func TestPeerProbeTellsAnAuthorizedKeysChange(t *testing.T) {
	for _, tc := range []struct {
		name, keys string
		exists     bool
		due        bool
	}{
		{"no file", "", false, true},
		{"the key alone", "ssh-rsa AAAAme me\n" + newEntry + "\n", true, false},
		{"an older key", "ssh-rsa AAAAme me\n" + oldEntry + "\n", true, true},
		{"both", oldEntry + "\n" + newEntry + "\n", true, true},
		{"another cluster's", "ssh-ed25519 AAAAx shoal-cluster-c10\n" + newEntry + "\n", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			if err := os.Mkdir(filepath.Join(home, ".ssh"), 0o700); err != nil {
				t.Fatal(err)
			}
			if tc.exists {
				if err := os.WriteFile(filepath.Join(home, ".ssh", "authorized_keys"), []byte(tc.keys), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			stubs := "getent() { printf 'u:x:1:1::%s:/bin/sh\\n' \"$FAKEHOME\"; }\nid() { echo grp; }\n"
			cmd := exec.Command("sh", "-c", stubs+peerProbe("u", "c1").Cmd)
			cmd.Env = append(os.Environ(), "FAKEHOME="+home)
			out, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(string(out), "@@\n")
			if len(parts) != peerProbeParts {
				t.Fatalf("%d parts: %q", len(parts), out)
			}
			if due := editAuthorizedKeys(parts[4], "shoal-cluster-c1", newEntry) != parts[4]; due != tc.due {
				t.Errorf("change due = %v, want %v (part %q)", due, tc.due, parts[4])
			}
		})
	}
}
