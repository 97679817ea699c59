package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAccessSudoRequireTTY: a login user named as on LDAP hosts (john.doe)
// whose sudo asks for a password under `Defaults requiretty` (CentOS 7's
// default) is provisioned with --sudo-password-file; then, its sudo made
// NOPASSWD (requiretty kept), provisioning with the password given anyway
// works too and the password reaches no file.
func TestAccessSudoRequireTTY(t *testing.T) {
	requireE2E(t)
	s := newShoal(t)
	pw := "tty pw 'x\"1"
	pwFile := secretFile(t, pw)
	name := "e2e-ac-tty"
	ip := acHost(t, name, "shoal-lab-actty", "--password-user", "john.doe", "--password-file", pwFile, "--sudo-password")
	dockerExec(t, name, "sh", "-c", "echo 'Defaults requiretty' > /etc/sudoers.d/00-requiretty && chmod 0440 /etc/sudoers.d/00-requiretty")
	if r := dockerExec(t, name, "su", "john.doe", "-c", "echo | sudo -S true"); r.code == 0 || !strings.Contains(r.stdout+r.stderr, "must have a tty") {
		t.Fatalf("the lab host's sudo should want a tty: %s", r)
	}

	create := s.machine("create", "-d", "ssh", "--ssh-host", ip, "--ssh-user", "john.doe", "--ssh-password-file", pwFile, "--sudo-password-file", pwFile, "ttyhost")
	if create.code != 0 {
		t.Fatalf("create with requiretty and a sudo password: %s", create)
	}
	if got := s.sshOut("ttyhost", "id", "-nG"); !strings.Contains(got, "docker") {
		t.Errorf("john.doe is not in the docker group: %q", got)
	}

	dockerExec(t, name, "sh", "-c", "echo 'john.doe ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-shoal-lab-john_doe")
	again := s.machine("provision", "--sudo-password-file", pwFile, "ttyhost")
	if again.code != 0 {
		t.Fatalf("provision with NOPASSWD, requiretty and a password given: %s", again)
	}
	if r := dockerExec(t, name, "sh", "-c", "grep -rlF "+shellQuote("tty pw")+" /etc /home/john.doe /root 2>/dev/null"); strings.TrimSpace(r.stdout) != "" {
		t.Errorf("the password reached files on the host: %s", r.stdout)
	}
	log, err := os.ReadFile(filepath.Join(s.storage, "machines", "ttyhost", "provision.log"))
	if err != nil || len(log) == 0 {
		t.Fatalf("provision.log: %v", err)
	}
	assertNowhere(t, s, pw, create, again)
}
