package templates

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// A made-up key: the templates do not parse keys, internal/cloudinit does.
const fakePEM = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ==\n-----END OPENSSH PRIVATE KEY-----\n"

// hostile holds values that would change a YAML or JSON document's
// structure if they were written as they are.
var hostile = []string{
	`a"b`, `back\slash`, "two\nlines", "cr\r\nlf", "tab\there", "key: value", "# comment",
	"- item", "{flow: map}", "[1, 2]", "&anchor *alias", "!!binary x", "'single'", "%TAG",
	"nul\x00byte", "bell\x07", "del\x7f", "nel\u0085", "c1\u009b", "ls\u2028ps\u2029",
	"bom\ufeff", "nonchar\ufffe\uffff", "bad\xffutf8\xc3", "é ü 日本 🐳", "", " ", "yes", "~", "null", "0x1F",
	"-----BEGIN X-----\nAAAA\n-----END X-----\n",
}

// golden compares got with testdata/NAME, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./templates -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./templates -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestGolden(t *testing.T) {
	str := func(s string, err error) ([]byte, error) { return []byte(s), err }
	for name, render := range map[string]func() ([]byte, error){
		"dockerd-tls-dropin.conf": func() ([]byte, error) {
			return str(DockerdTLSDropIn(DockerdTLS{ExecStart: "/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock", Port: 2376, TLSDir: "/etc/docker/shoal"}))
		},
		"dockerd-env-dropin.conf": func() ([]byte, error) {
			return str(DockerdEnvDropIn([]string{"HTTP_PROXY=http://p:3128", `G=hello "q" $HOME 100% \n`, "T=tab\there"}))
		},
		"hosts-block": func() ([]byte, error) {
			return str(HostsBlock([]HostsEntry{{IP: "10.0.0.1", Names: []string{"manager-1"}}, {IP: "fd00::2", Names: []string{"worker-1", "w1.lab"}}}))
		},
		"hosts-block-empty": func() ([]byte, error) { return str(HostsBlock(nil)) },
		"meta-data": func() ([]byte, error) {
			return CloudInitMetaData(MetaData{InstanceID: "i-0123", Hostname: "vm1"})
		},
		"user-data": func() ([]byte, error) {
			return CloudInitUserData(UserData{
				Hostname: "vm1", User: "shoal",
				AuthorizedKeys:    []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ3k me@host", "ssh-rsa AAAAB3Nza other@host"},
				SSHGenKeyTypes:    []string{"ed25519"},
				HostKeyPrivatePEM: fakePEM,
				HostKeyPublic:     "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHost",
			})
		},
		"user-data-no-keys": func() ([]byte, error) {
			return CloudInitUserData(UserData{Hostname: "vm2", User: "debian", SSHGenKeyTypes: []string{"rsa", "ecdsa", "ed25519"}})
		},
		"user-data-hostile": func() ([]byte, error) {
			return CloudInitUserData(UserData{
				Hostname: "h: x\n- y", User: `u"ser`, AuthorizedKeys: hostile,
				SSHGenKeyTypes: []string{"ed25519"}, HostKeyPrivatePEM: "# not\n\"a key", HostKeyPublic: "{x}",
			})
		},
		"network-config-dhcp": func() ([]byte, error) {
			return CloudInitNetworkConfig([]Ethernet{{ID: "all-en", Name: "e*", DHCP4: true}})
		},
		"network-config-static": func() ([]byte, error) {
			return CloudInitNetworkConfig([]Ethernet{
				{ID: "nic0", MAC: "52:54:00:aa:bb:01", DHCP4: true},
				{ID: "nic1", MAC: "52:54:00:aa:bb:02", Addresses: []string{"192.168.56.10/24"}, Gateway: "192.168.56.1"},
				{ID: "nic2", MAC: "52:54:00:aa:bb:03", Addresses: []string{"10.0.0.5/8", "fd00::5/64"}},
			})
		},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := render()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name, got)
			// The cloud-init documents are JSON (and so YAML).
			if doc, ok := bytes.CutPrefix(got, []byte("#cloud-config\n")); ok || strings.Contains(name, "data") || strings.HasPrefix(name, "network") {
				if !json.Valid(doc) {
					t.Fatalf("not JSON:\n%s", got)
				}
			}
		})
	}
}

// The marker constants are the block's first and last lines.
func TestHostsMarkers(t *testing.T) {
	block, err := HostsBlock([]HostsEntry{{IP: "10.0.0.1", Names: []string{"a"}}})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(block, "\n"), "\n")
	if lines[0] != HostsBegin || lines[len(lines)-1] != HostsEnd || len(lines) != 3 {
		t.Fatalf("block %q", block)
	}
}

// Values that would add a line or a directive are refused, not written.
func TestRefusesHostileValues(t *testing.T) {
	for name, render := range map[string]func() error{
		"unit newline": func() error {
			_, err := DockerdTLSDropIn(DockerdTLS{ExecStart: "/usr/bin/dockerd\nExecStartPre=/bin/sh -c evil", Port: 2376, TLSDir: "/etc/docker/shoal"})
			return err
		},
		"unit cr": func() error {
			_, err := DockerdTLSDropIn(DockerdTLS{ExecStart: "/usr/bin/dockerd", Port: 2376, TLSDir: "/etc/x\r"})
			return err
		},
		"env newline": func() error {
			_, err := DockerdEnvDropIn([]string{"A=1\nExecStartPre=/bin/sh -c evil"})
			return err
		},
		"env cr":      func() error { _, err := DockerdEnvDropIn([]string{"A=1\r"}); return err },
		"env nul":     func() error { _, err := DockerdEnvDropIn([]string{"A=\x00"}); return err },
		"hosts space": func() error { _, err := HostsBlock([]HostsEntry{{IP: "10.0.0.1", Names: []string{"a b"}}}); return err },
		"hosts newline": func() error {
			_, err := HostsBlock([]HostsEntry{{IP: "10.0.0.1\n6.6.6.6", Names: []string{"bank"}}})
			return err
		},
		"hosts hash":  func() error { _, err := HostsBlock([]HostsEntry{{IP: "10.0.0.1", Names: []string{"#a"}}}); return err },
		"hosts empty": func() error { _, err := HostsBlock([]HostsEntry{{IP: "10.0.0.1", Names: []string{""}}}); return err },
		"hosts nbsp": func() error {
			_, err := HostsBlock([]HostsEntry{{IP: "10.0.0.1", Names: []string{"a\u00a0b"}}})
			return err
		},
	} {
		if render() == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// wantDecoded is what a JSON or YAML reader makes of YAMLString(s): s,
// with each invalid UTF-8 byte read as U+FFFD.
func wantDecoded(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		b.WriteRune(r)
	}
	return b.String()
}

func TestYAMLString(t *testing.T) {
	for in, want := range map[string]string{
		"plain":        `"plain"`,
		`a"b\c`:        `"a\"b\\c"`,
		"l1\nl2\r\t":   `"l1\nl2\r\t"`,
		"\x00\x1f\x7f": `"\u0000\u001f\u007f"`,
		"\u0085\u009f": `"\u0085\u009f"`,
		"\u2028":       `"\u2028"`,
		"\xff":         `"\ufffd"`,
		"é🐳":           `"é🐳"`,
		"<&>":          `"<&>"`,
	} {
		if got := YAMLString(in); got != want {
			t.Errorf("YAMLString(%q) = %s, want %s", in, got, want)
		}
	}
	for _, s := range hostile {
		var back string
		if err := json.Unmarshal([]byte(YAMLString(s)), &back); err != nil || back != wantDecoded(s) {
			t.Errorf("%q: JSON reads back %q (%v)", s, back, err)
		}
	}
}

// TestYAMLStringPyYAML reads the hostile values back with PyYAML, the
// parser cloud-init uses. In CI (CI=true) a missing PyYAML fails the test.
func TestYAMLStringPyYAML(t *testing.T) {
	// The first python3 with yaml: the PATH's, else Debian's (python3-yaml,
	// which `make lab-setup` installs).
	var py string
	err := fmt.Errorf("no python3 on the PATH or in /usr/bin")
	for _, cand := range []string{"python3", "/usr/bin/python3"} {
		if p, lerr := exec.LookPath(cand); lerr == nil {
			if err = exec.Command(p, "-c", "import yaml").Run(); err == nil {
				py = p
				break
			}
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3 with its yaml module is needed: %v", err)
		}
		t.Skipf("no python3 with yaml: %v", err)
	}
	doc, err := CloudInitUserData(UserData{Hostname: "h", User: "u", AuthorizedKeys: hostile, SSHGenKeyTypes: hostile})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", "import sys, yaml, json; json.dump(yaml.safe_load(sys.stdin.buffer), sys.stdout)")
	cmd.Stdin = bytes.NewReader(doc)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("PyYAML: %v\n%s\n%s", err, stderr.Bytes(), doc)
	}
	var m struct {
		Users []struct {
			Keys []string `json:"ssh_authorized_keys"`
		} `json:"users"`
		GenKeyTypes []string `json:"ssh_genkeytypes"`
	}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Users) != 1 || len(m.Users[0].Keys) != len(hostile) || len(m.GenKeyTypes) != len(hostile) {
		t.Fatalf("PyYAML read %s", out)
	}
	for i, s := range hostile {
		if m.Users[0].Keys[i] != wantDecoded(s) || m.GenKeyTypes[i] != wantDecoded(s) {
			t.Errorf("%q: PyYAML read %q", s, m.Users[0].Keys[i])
		}
	}
}

// FuzzYAMLString: JSON reads every output back as the input, and for the
// strings YAML takes raw the output is exactly encoding/json's.
func FuzzYAMLString(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := YAMLString(s)
		var back string
		if err := json.Unmarshal([]byte(q), &back); err != nil || back != wantDecoded(s) {
			t.Fatalf("%q -> %s -> %q (%v)", s, q, back, err)
		}
		if strings.ContainsFunc(s, func(r rune) bool { return r == 0x7f || r >= 0x80 && r <= 0x9f || r == 0xfffe || r == 0xffff }) {
			return
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if want := strings.TrimSuffix(b.String(), "\n"); q != want {
			t.Fatalf("%q: %s, encoding/json writes %s", s, q, want)
		}
	})
}

// The docker driver seeds this file and user-data carries it: both hosts
// offer the pinned ed25519 key only.
func TestSSHDHostKeyConf(t *testing.T) {
	if !strings.Contains(string(SSHDHostKeyConf()), "\nHostKey /etc/ssh/ssh_host_ed25519_key\n") {
		t.Fatalf("%q", SSHDHostKeyConf())
	}
}

// TestHostsBlockAllocatesOnlyItsText: every node's block names every node
// (a million lines a run at 1,000 nodes), so rendering one costs the text
// and little else: a few allocations however many entries, where
// text/template made several for every field.
func TestHostsBlockAllocatesOnlyItsText(t *testing.T) {
	entries := make([]HostsEntry, 1000)
	for i := range entries {
		entries[i] = HostsEntry{IP: fmt.Sprintf("10.20.%d.%d", i/250, i%250+1), Names: []string{fmt.Sprintf("node-%04d", i), fmt.Sprintf("n%d.lab", i)}}
	}
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := HostsBlock(entries); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 4 {
		t.Errorf("HostsBlock of %d entries: %.0f allocations, want at most 4", len(entries), allocs)
	}
}
