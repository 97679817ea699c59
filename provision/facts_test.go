package provision

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// testNonce is the probe's marker in these tests.
const testNonce = "0123456789abcdef01234567"

func probeLine(name, content string) string {
	return "@@" + testNonce + " " + name + "\n" + content + "\n"
}

const endLine = "@@" + testNonce + " end\n"

// TestParseFactsFraming: whatever a file holds, each section reads back
// byte for byte and the next one is intact (issue 10 item 2: a file
// without a final newline swallowed the next marker).
func TestParseFactsFraming(t *testing.T) {
	contents := map[string]string{
		"no final newline": `{"debug": true}`,
		"crlf":             "127.0.0.1 localhost\r\n::1 localhost\r\n",
		"empty":            "",
		"marker lookalike": "x\n@@end\n@@commands\nsystemctl\n",
		"hosts no newline": "127.0.0.1 localhost\nff02::2 ip6-allrouters",
	}
	for name, c := range contents {
		out := probeLine("daemon-json", c) + probeLine("commands", "systemctl\ncurl\n") + endLine
		for _, variant := range []string{out, strings.ReplaceAll(out, "\n", "\r\n"), "sudo: unable to resolve host x\n" + out} {
			f, err := parseFacts(variant, testNonce)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got := f.sections["daemon-json"]; got != c {
				t.Errorf("%s: daemon-json = %q, want %q", name, got, c)
			}
			if !f.Has("systemctl") || !f.Has("curl") {
				t.Errorf("%s: the next section was damaged: %q", name, f.sections["commands"])
			}
			if _, ok := f.sections["end"]; !ok {
				t.Errorf("%s: no end marker", name)
			}
		}
	}
	for _, garbled := range []string{"@@" + testNonce + " hosts", "@@" + testNonce + " Hosts!\nx\n" + endLine, "@@" + testNonce + " hosts\nno newline after" + "@@" + testNonce + " end"} {
		if _, err := parseFacts(garbled, testNonce); err == nil {
			t.Errorf("a garbled section must be an error: %q", garbled)
		}
	}
	// Markers without this run's nonce are content.
	f, err := parseFacts(probeLine("hosts", "@@end\n@@0000 end\n")+endLine, testNonce)
	if err != nil || f.sections["hosts"] != "@@end\n@@0000 end\n" {
		t.Errorf("another nonce's marker: %q, %v", f.sections["hosts"], err)
	}
}

// TestFactsScriptOnThisMachine runs the real probe with sh here: files come
// back byte for byte, a missing one is an empty section, and a hostile user
// name stays one quoted word.
func TestFactsScriptOnThisMachine(t *testing.T) {
	for _, tool := range []string{"sh", "cut", "getent"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed: %v", tool, err)
		}
	}
	dir := t.TempDir()
	pwned := dir + "/pwned"
	out, err := exec.Command("sh", "-c", factsScript("x; touch "+pwned+"; echo x", testNonce)).Output()
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	f, err := parseFacts(string(out), testNonce)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("the docker user's name ran as a command")
	}
	for section, file := range map[string]string{"hosts": "/etc/hosts", "os-release": "/etc/os-release"} {
		want, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		if f.sections[section] != string(want) {
			t.Errorf("%s: got %q, want %q", section, f.sections[section], want)
		}
	}
	if _, ok := f.sections["end"]; !ok || f.sections["authorized-keys"] != "" {
		t.Errorf("want the end marker and no keys for a user that does not exist: %v", f.sections)
	}
}

func FuzzParseFacts(f *testing.F) {
	for _, seed := range []string{
		"",
		endLine,
		probeLine("daemon-json", "null") + endLine,
		probeLine("daemon-json", `{"a":1}}`) + probeLine("hosts", "127.0.0.1 localhost") + endLine,
		probeLine("authorized-keys", "ssh-ed25519 AAAA me") + probeLine("commands", "systemctl\n") + strings.TrimSuffix(endLine, "\n") + "\r\n",
		"@@hosts\n127.0.0.1 localhost@@user\n", // the old framing's failure
		"@@ \n@@x @@\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, out string) {
		facts, err := parseFacts(out, testNonce)
		if err != nil {
			return
		}
		// Every section read re-encodes to what a probe would print, and
		// reads back the same.
		var again strings.Builder
		for name, c := range facts.sections {
			if strings.ContainsAny(name, " \n\r") {
				t.Fatalf("section name %q holds a separator", name)
			}
			again.WriteString(probeLine(name, c))
		}
		back, err := parseFacts(again.String(), testNonce)
		if err != nil {
			t.Fatalf("re-encoded facts do not parse: %v", err)
		}
		for name, c := range facts.sections {
			if back.sections[name] != c {
				t.Fatalf("section %q: %q read back as %q", name, c, back.sections[name])
			}
		}
		_ = facts.DockerVersion()
		_, _ = facts.UserGroups()
	})
}

func TestRunningDocker(t *testing.T) {
	for in, want := range map[string]string{
		`{"Platform":{"Name":""},"Version":"20.10.24+dfsg1","ApiVersion":"1.41"}`: "20.10.24+dfsg1",
		`{"Version":"24.0.9"}`:                "24.0.9",
		``:                                    "",
		`Cannot connect to the Docker daemon`: "",
		`{"Version":""}`:                      "",
		`{"Version":"garbage"}`:               "",
	} {
		f := &Facts{sections: map[string]string{"docker-info": in}}
		if got := f.RunningDocker(); got != want {
			t.Errorf("RunningDocker(%q) = %q, want %q", in, got, want)
		}
	}
}
