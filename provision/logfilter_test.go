package provision

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
)

const logNonce = "0123456789abcdef01234567"

// entry is a transcript entry as the SSH client writes it: header, the
// command, stdout, stderr lines, status.
func logEntry(cmd, stdout, stderr string) string {
	var b strings.Builder
	b.WriteString("--- 2026-01-02T03:04:05Z core@10.0.0.5\n$ " + cmd + "\n" + stdout)
	for _, l := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
		if l != "" {
			b.WriteString("stderr: " + l + "\n")
		}
	}
	b.WriteString("--- exit 0 after 1.2s\n")
	return b.String()
}

func logSection(name, text string) string { return "@@" + logNonce + " " + name + "\n" + text + "\n" }

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestHideFileContents(t *testing.T) {
	repo := "[corp]\nbaseurl=https://deploy:Repo-Pass-1@repo.corp/el9\npassword=Repo-Pass-2\n"
	envDropIn := "[Service]\nEnvironment=\"HTTPS_PROXY=http://u:Proxy-Pass-3@proxy:3128\"\n"
	daemon := `{"proxies": {"http-proxy": "http://u:Proxy-Pass-4@proxy:3128"}}` + "\n"
	stdout := logSection("os-release", "PRETTY_NAME=\"Rocky Linux 9\"") +
		logSection("daemon-json", daemon) +
		logSection("unit", "# /usr/lib/systemd/system/docker.service\n[Service]\nExecStart=/usr/bin/dockerd\n\n# /etc/systemd/system/docker.service.d/shoal-env.conf\n"+envDropIn) +
		logSection("yum-repos", "#@file /etc/yum.repos.d/corp.repo\n"+repo+"\n#@file /etc/yum.repos.d/README\n") +
		logSection("repo-reach", "https://deploy:Repo-Pass-1@repo.corp 401\nhttps://mirror.example 200") +
		logSection("hostname", "node-1") +
		"@@" + logNonce + " end\n"
	cmd := factsScript("core", "10.0.0.5", logNonce, RunningDaemon{})
	got := hideFileContents(logEntry(cmd, stdout, "sudo: a warning"))
	for _, secret := range []string{"Repo-Pass-1", "Repo-Pass-2", "Proxy-Pass-3", "Proxy-Pass-4"} {
		if strings.Contains(got, secret) {
			t.Errorf("the transcript keeps %s:\n%s", secret, got)
		}
	}
	for _, want := range []string{
		"$ " + cmd + "\n", // the command as it was sent
		"@@" + logNonce + " os-release\nPRETTY_NAME=\"Rocky Linux 9\"\n",
		"@@" + logNonce + " daemon-json\n(" + strconv.Itoa(len(daemon)+1) + " bytes, sha256 " + sha256Hex(daemon+"\n") + ": not logged)\n",
		"# /etc/systemd/system/docker.service.d/shoal-env.conf\n(" + strconv.Itoa(len(envDropIn)+1) + " bytes, sha256 " + sha256Hex(envDropIn+"\n") + ": not logged)\n",
		"#@file /etc/yum.repos.d/corp.repo\n(" + strconv.Itoa(len(repo)+1) + " bytes, sha256 " + sha256Hex(repo+"\n") + ": not logged)\n#@file /etc/yum.repos.d/README\n",
		"https://[REDACTED]@repo.corp 401\nhttps://mirror.example 200\n",
		"@@" + logNonce + " hostname\nnode-1\n",
		"stderr: sudo: a warning\n--- exit 0 after 1.2s\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the transcript lacks %q:\n%s", want, got)
		}
	}
	// Entries that are not the probe's go through as they are.
	for _, e := range []string{logEntry("systemctl restart docker", "", "oops"), "# a comment line\n", logEntry("echo '@@x y'", "@@x y\n", "")} {
		if got := hideFileContents(e); got != e {
			t.Errorf("hideFileContents changed %q to %q", e, got)
		}
	}
}

// A probe that ended early (no end marker) keeps its stderr and status in
// the transcript, and the file it was printing out of it; a file line that
// looks like a marker of another nonce does not end the file.
func TestHideFileContentsEarlyEndAndForgedMarker(t *testing.T) {
	stdout := logSection("yum-repos", "#@file /etc/yum.repos.d/a.repo\n@@ffffffffffffffffffffffff hostname\npassword=Secret-5")
	got := hideFileContents(logEntry("probe", stdout, "Killed"))
	if strings.Contains(got, "Secret-5") || strings.Contains(got, "@@ffff") {
		t.Errorf("the transcript keeps the file:\n%s", got)
	}
	if !strings.HasSuffix(got, "stderr: Killed\n--- exit 0 after 1.2s\n") {
		t.Errorf("the transcript lost the entry's end:\n%s", got)
	}
	// The stream's start was cut (64 KiB kept): what precedes the first
	// marker may be the rest of a file.
	cut := "$ probe\n[... 70000 bytes cut ...]\npassword=Secret-6\n" + logSection("hostname", "node-1") + "--- exit 0 after 1s\n"
	if got := hideFileContents(cut); strings.Contains(got, "Secret-6") || !strings.Contains(got, "node-1") {
		t.Errorf("a cut entry:\n%s", got)
	}
}

func TestNewTranscript(t *testing.T) {
	if NewTranscript(nil) != nil {
		t.Error("NewTranscript(nil) is not nil: the SSH client would log into nothing")
	}
	var b strings.Builder
	w := NewTranscript(&b)
	e := logEntry("probe", logSection("dropin", "[Service]\nsecret"), "")
	if n, err := w.Write([]byte(e)); n != len(e) || err != nil || strings.Contains(b.String(), "secret") {
		t.Errorf("Write = %d, %v; wrote %q", n, err, b.String())
	}
}

// Whatever a hidden file holds, none of it reaches the transcript.
func FuzzHideFileContents(f *testing.F) {
	for _, s := range []string{"", "x\n", "#@file /etc/x\n", "@@" + logNonce + " hostname\n", "stderr: a\n", "--- exit 0\n", "\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if strings.Contains(text, logNonce) {
			t.Skip() // the nonce is random: a file cannot hold it
		}
		for _, e := range []string{
			logEntry("probe", logSection("daemon-json", "SECRET-7"+text)+logSection("hostname", "h")+"@@"+logNonce+" end\n", ""),
			logEntry("probe", logSection("yum-repos", "#@file /a.repo\nSECRET-7"+text)+"@@"+logNonce+" end\n", ""),
			logEntry("probe", logSection("unit", "# /a\nSECRET-7"+text), "x"),
		} {
			if got := hideFileContents(e); strings.Contains(got, "SECRET-7") {
				t.Fatalf("the transcript keeps the file:\n%s", got)
			}
		}
	})
}
