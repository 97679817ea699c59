package provision

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 10 item 2: an /etc/hosts without a final newline, with CRLF, or
// empty, is edited with every other line kept byte for byte.
func TestEditHostsShapes(t *testing.T) {
	block := []HostEntry{{IP: "10.0.0.1", Names: []string{"n1"}}}
	const b = "# BEGIN shoal: cluster nodes (managed, do not edit)"
	for _, tc := range []struct{ name, in, want string }{
		{"no final newline",
			"127.0.0.1 localhost\n127.0.1.1\tn1\nff02::2 ip6-allrouters",
			"127.0.0.1 localhost\n127.0.1.1\tn1\nff02::2 ip6-allrouters\n" + b + "\n10.0.0.1\tn1\n# END shoal\n"},
		{"crlf",
			"127.0.0.1 localhost\r\n::1 localhost\r\n",
			"127.0.0.1 localhost\r\n127.0.1.1\tn1\r\n::1 localhost\r\n" + b + "\r\n10.0.0.1\tn1\r\n# END shoal\r\n"},
		{"crlf, old block, no final newline",
			"127.0.0.1 localhost\r\n127.0.1.1 n1\r\n" + b + "\r\n10.0.0.9\told\r\n# END shoal",
			"127.0.0.1 localhost\r\n127.0.1.1 n1\r\n" + b + "\r\n10.0.0.1\tn1\r\n# END shoal\r\n"},
		{"empty", "", "127.0.1.1\tn1\n" + b + "\n10.0.0.1\tn1\n# END shoal\n"},
		{"blank lines and spaces kept",
			"127.0.0.1 localhost  \n\n\n#  x \t\n127.0.1.1 n1\n\n",
			"127.0.0.1 localhost  \n\n\n#  x \t\n127.0.1.1 n1\n\n" + b + "\n10.0.0.1\tn1\n# END shoal\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mustEditHosts(t, tc.in, "n1", block)
			if got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
			if again := mustEditHosts(t, got, "n1", block); again != got {
				t.Errorf("not idempotent: %q", again)
			}
			if strings.Contains(got, "@@") {
				t.Errorf("probe marker in the file: %q", got)
			}
		})
	}
	// Nothing to change: the file stays exactly as it is, final newline or not.
	for _, in := range []string{"127.0.0.1 localhost\n127.0.1.1\tn1", "127.0.0.1 localhost\r\n127.0.1.1\tn1\r\n"} {
		if got := mustEditHosts(t, in, "n1", nil); got != in {
			t.Errorf("%q changed to %q", in, got)
		}
	}
}

// outside returns the lines of an /etc/hosts outside shoal's block and
// other than 127.0.1.1, without their line ends.
func outside(s string) []string {
	var out []string
	in := false
	for _, l := range strings.SplitAfter(s, "\n") {
		text := strings.TrimSpace(l)
		switch {
		case !in && text == hostsBegin:
			in = true
		case in && text == hostsEnd:
			in = false
		case !in && l != "" && !strings.HasPrefix(strings.TrimSpace(l), "127.0.1.1"):
			out = append(out, strings.TrimRight(l, "\r\n"))
		}
	}
	return out
}

func FuzzEditHosts(f *testing.F) {
	for _, s := range []string{
		"", "\n", "127.0.0.1 localhost", "127.0.0.1 localhost\nff02::2 ip6-allrouters",
		"127.0.0.1 localhost\r\n::1 localhost\r\n",
		"127.0.0.1 localhost\n" + hostsBegin + "\n10.0.0.9 old\n" + hostsEnd + "\n192.168.1.9 nas",
		hostsBegin + "\n10.0.0.9 old", "# END shoal\n" + hostsBegin + "\n",
		"ff02::2 ip6-allrouters@@user\n", "127.0.1.1 other\r\n127.0.1.1 n1",
	} {
		f.Add(s, "n1")
	}
	block := []HostEntry{{IP: "10.0.0.1", Names: []string{"n1"}}, {IP: "10.0.0.2", Names: []string{"n2", "w"}}}
	f.Fuzz(func(t *testing.T, in, hostname string) {
		// Hostnames are validated before they get here: one word.
		if hostname == "" || strings.ContainsAny(hostname, " \t\r\n#") || strings.Contains(in, "\r") && !strings.Contains(in, "\r\n") {
			return
		}
		out := mustEditHosts(t, in, hostname, block)
		if again := mustEditHosts(t, out, hostname, block); again != out {
			t.Fatalf("not idempotent:\n%q\n%q", out, again)
		}
		// Every line outside the block is kept, in order.
		want, got := outside(in), outside(out)
		if strings.Join(want, "\x00") != strings.Join(got, "\x00") {
			t.Fatalf("lines outside the block changed:\nin  %q\nout %q", in, out)
		}
		if !strings.HasSuffix(out, "\n") || !strings.Contains(out, hostsBegin) {
			t.Fatalf("no block or no final newline: %q", out)
		}
		if strings.TrimSpace(in) != "" && !strings.Contains(in, hostsBegin) && !strings.HasPrefix(out, strings.SplitAfter(in, "\n")[0]) &&
			!strings.HasPrefix(strings.TrimSpace(in), "127.0.1.1") {
			t.Fatalf("the first line moved: %q -> %q", in, out)
		}
	})
}

// Issue 10 item 2: keys appended to an authorized_keys without a final
// newline, with CRLF, or empty, each land on a line of their own and the
// old content stays byte for byte.
func TestAppendKeysShapes(t *testing.T) {
	keys := []string{"ssh-ed25519 AAAAnew shoal-cluster-c1", "ssh-rsa AAAA'quote $(id) x"}
	added := "ssh-ed25519 AAAAnew shoal-cluster-c1\nssh-rsa AAAA'quote $(id) x\n"
	for _, tc := range []struct{ name, in, want string }{
		{"no final newline", "ssh-ed25519 AAAAold me", "ssh-ed25519 AAAAold me\n" + added},
		{"final newline", "ssh-ed25519 AAAAold me\n", "ssh-ed25519 AAAAold me\n" + added},
		{"crlf", "ssh-ed25519 AAAAold me\r\n", "ssh-ed25519 AAAAold me\r\n" + added},
		{"crlf, no final newline", "a\r\nssh-ed25519 AAAAold me", "a\r\nssh-ed25519 AAAAold me\n" + added},
		{"empty", "", added},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "authorized_keys")
			if err := os.WriteFile(f, []byte(tc.in), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("sh", "-c", `f="$1" && `+appendKeys(keys), "sh", f)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			got, _ := os.ReadFile(f)
			if string(got) != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
			// The keys read back from the file are all there.
			h := &Host{Spec: Spec{AuthorizedKeys: keys}, Facts: &Facts{sections: map[string]string{"authorized-keys": string(got)}}}
			if missing := (userStep{}).missingKeys(h); len(missing) > 0 {
				t.Errorf("keys not found after the append: %v", missing)
			}
		})
	}
	// Keys already there, in a CRLF file without a final newline, are seen.
	h := &Host{Spec: Spec{AuthorizedKeys: keys[:1]}, Facts: &Facts{sections: map[string]string{"authorized-keys": "x\r\nssh-ed25519 AAAAnew other-comment"}}}
	if missing := (userStep{}).missingKeys(h); len(missing) > 0 {
		t.Errorf("a key present was not seen: %v", missing)
	}
}

func FuzzAuthorizedKeys(f *testing.F) {
	for _, s := range []string{"", "ssh-ed25519 AAAAold me", "ssh-ed25519 AAAAold me\r\n", "a\r\nb", "\n\n", "ssh-ed25519 AAAAnew shoal-cluster-c1@@commands\nsystemctl\n"} {
		f.Add(s, "ssh-ed25519 AAAAnew shoal-cluster-c1")
	}
	f.Fuzz(func(t *testing.T, content, key string) {
		if len(strings.Fields(key)) < 2 || strings.ContainsAny(key, "\r\n") {
			return // keys are validated one-line "TYPE BASE64 [COMMENT]"
		}
		h := &Host{Spec: Spec{AuthorizedKeys: []string{key}}, Facts: &Facts{sections: map[string]string{"authorized-keys": content}}}
		missing := (userStep{}).missingKeys(h)
		// After the append the key is found, whatever the file held.
		sep := ""
		if content != "" && !strings.HasSuffix(content, "\n") {
			sep = "\n"
		}
		h.Facts.sections["authorized-keys"] = content + sep + strings.Join(missing, "\n") + "\n"
		if again := (userStep{}).missingKeys(h); len(again) > 0 {
			t.Fatalf("key still missing after the append: %q", h.Facts.sections["authorized-keys"])
		}
	})
}
