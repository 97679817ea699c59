package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Tests of issue 14: hosts as people have them (passwords, sudo with a
// password, jump hosts, ~/.ssh/config, reboots, several interfaces). Lab
// containers are e2e-ac-*, networks shoal-lab-ac*.

// acHost starts a lab host with lab.sh's extra options and removes it (and
// its network, when no other host uses it) when the test ends.
func acHost(t *testing.T, name, network string, extra ...string) string {
	t.Helper()
	args := append([]string{labScript(), "host-up", name, "--network", network}, extra...)
	t.Cleanup(func() { run(t, time.Minute, "docker", "network", "rm", network) })
	for i, a := range extra {
		if a == "--network2" && i+1 < len(extra) {
			n2 := extra[i+1]
			t.Cleanup(func() { run(t, time.Minute, "docker", "network", "rm", n2) })
		}
	}
	t.Cleanup(func() { run(t, 2*time.Minute, "bash", labScript(), "host-rm", name) })
	r := run(t, 5*time.Minute, "bash", args...)
	if r.code != 0 {
		t.Fatalf("lab host %s: %s", name, r)
	}
	ip := strings.TrimSpace(r.stdout)
	if ip == "" {
		t.Fatalf("lab host %s: no IP: %s", name, r)
	}
	return ip
}

// secretFile writes a password file (0600) and returns its path.
func secretFile(t *testing.T, secret string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// assertNowhere fails when secret appears in any file of the store or in
// any output given.
func assertNowhere(t *testing.T, s *shoal, secret string, outputs ...result) {
	t.Helper()
	for p, b := range storageFiles(t, s.storage) {
		if strings.Contains(string(b), secret) {
			t.Errorf("the password is in %s", p)
		}
	}
	for i, r := range outputs {
		if strings.Contains(r.stdout, secret) || strings.Contains(r.stderr, secret) {
			t.Errorf("the password is in the output of command %d", i)
		}
	}
}

// TestAccessPasswordFirstContact: a host where only a password logs in
// (authorized_keys empty) is provisioned with --ssh-password-file; with
// password logins then switched off in its sshd, machine ssh and machine
// provision still work with the key shoal installed.
func TestAccessPasswordFirstContact(t *testing.T) {
	requireE2E(t)
	s := newShoal(t)
	// Shell-special characters: the password must never go through a shell.
	pw := `pa ss'"$(touch /tmp/pwned)w;0rd`
	pwFile := secretFile(t, pw)
	name := "e2e-ac-pw"
	ip := acHost(t, name, "shoal-lab-ac", "--password-user", "hadoop", "--password-file", pwFile)
	if got := dockerExec(t, name, "stat", "-c", "%s", "/home/hadoop/.ssh/authorized_keys"); strings.TrimSpace(got.stdout) != "0" {
		t.Fatalf("authorized_keys should be empty: %s", got)
	}

	// Without the password: refused, with a clear message, nothing kept.
	r := s.machine("create", "-d", "ssh", "--ssh-host", ip, "--ssh-user", "hadoop", "nopw")
	if r.code == 0 || !strings.Contains(r.stderr, "authentication failed") {
		t.Fatalf("a host that takes only a password must refuse the keys: %s", r)
	}

	create := s.machine("create", "-d", "ssh", "--ssh-host", ip, "--ssh-user", "hadoop", "--ssh-password-file", pwFile, "pwhost")
	if create.code != 0 {
		t.Fatalf("create with a password: %s", create)
	}
	if got := dockerExec(t, name, "sh", "-c", "test -e /tmp/pwned && echo pwned; stat -c %a /home/hadoop/.ssh/authorized_keys; wc -l < /home/hadoop/.ssh/authorized_keys"); strings.Contains(got.stdout, "pwned") || !strings.HasPrefix(got.stdout, "600\n") {
		t.Fatalf("authorized_keys after create: %s", got)
	}

	// Password logins off, as a careful admin does next.
	dockerExec(t, name, "rm", "-f", "/etc/ssh/sshd_config.d/00-shoal-lab-password.conf")
	if r := dockerExec(t, name, "sh", "-c", "systemctl reload ssh && sshd -T | grep -E '^(passwordauthentication|kbdinteractiveauthentication) '"); !strings.Contains(r.stdout, "passwordauthentication no") || !strings.Contains(r.stdout, "kbdinteractiveauthentication no") {
		t.Fatalf("password authentication still on: %s", r)
	}
	who := s.machine("ssh", "pwhost", "--", "id", "-un")
	if who.code != 0 || strings.TrimSpace(who.stdout) != "hadoop" {
		t.Fatalf("machine ssh with the key: %s", who)
	}
	prov := s.machine("provision", "pwhost")
	if prov.code != 0 {
		t.Fatalf("machine provision with the key: %s", prov)
	}
	// A password given again is not needed and not used.
	again := s.machine("provision", "--ssh-password-file", pwFile, "pwhost")
	if again.code != 0 {
		t.Fatalf("provision with a password it does not need: %s", again)
	}
	log, err := os.ReadFile(filepath.Join(s.storage, "machines", "pwhost", "provision.log"))
	if err != nil || len(log) == 0 {
		t.Fatalf("provision.log: %v", err)
	}
	assertNowhere(t, s, pw, r, create, who, prov, again)
	assertNowhere(t, s, "w;0rd")
	for _, f := range []string{"id_ed25519", "config.json", "known_hosts"} {
		st, err := os.Stat(filepath.Join(s.storage, "machines", "pwhost", f))
		if err != nil || st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: %v, mode %v: want 0600", f, err, st.Mode())
		}
	}
	// SSHPASS works too, and is what sshpass users have.
	cmd := exec.Command(bin("machine"), "--storage-path", s.storage, "--output", "plain", "create", "-d", "ssh", "--ssh-host", ip, "--ssh-user", "hadoop", "pwhost")
	cmd.Env = append(os.Environ(), "SSHPASS="+pw)
	if out, err := cmd.CombinedOutput(); err != nil || strings.Contains(string(out), pw) {
		t.Fatalf("create again with $SSHPASS: %v\n%s", err, out)
	}
}

// TestAccessSudoPassword: a user whose sudo asks for a password provisions
// with --sudo-password-file; a wrong password fails within seconds with a
// clear message, after one try.
func TestAccessSudoPassword(t *testing.T) {
	requireE2E(t)
	s := newShoal(t)
	pw := "sudo secret 'x\"$"
	pwFile := secretFile(t, pw)
	name := "e2e-ac-sudo"
	ip := acHost(t, name, "shoal-lab-ac", "--password-user", "hadoop", "--password-file", pwFile, "--sudo-password")
	if r := dockerExec(t, name, "su", "hadoop", "-c", "sudo -n true"); r.code == 0 {
		t.Fatal("the lab host's sudo should ask for a password")
	}

	// Without the sudo password: a clear error that names the flag.
	r := s.machine("create", "-d", "ssh", "--ssh-host", ip, "--ssh-user", "hadoop", "--ssh-password-file", pwFile, "--engine-install", "skip", "sudohost")
	if r.code == 0 || !strings.Contains(r.stderr, "--sudo-password-file") {
		t.Fatalf("without the sudo password: %s", r)
	}
	create := s.machine("create", "-d", "ssh", "--ssh-host", ip, "--ssh-user", "hadoop", "--ssh-password-file", pwFile, "--sudo-password-file", pwFile, "sudohost")
	if create.code != 0 {
		t.Fatalf("create with the sudo password: %s", create)
	}
	if got := s.sshOut("sudohost", "id", "-nG"); !strings.Contains(got, "docker") {
		t.Errorf("hadoop is not in the docker group: %q", got)
	}
	if got := dockerExec(t, name, "hostname"); strings.TrimSpace(got.stdout) != "sudohost" {
		t.Errorf("hostname: %s", got)
	}

	// A wrong one: refused at once, said clearly, tried once.
	wrong := secretFile(t, "not-the-password")
	before := dockerExec(t, name, "sh", "-c", "journalctl -q --no-pager | grep -c 'incorrect password attempt' || true")
	start := time.Now()
	bad := s.machine("provision", "--sudo-password-file", wrong, "sudohost")
	took := time.Since(start)
	if bad.code == 0 || !strings.Contains(bad.stderr, "sudo refused the password") {
		t.Fatalf("wrong sudo password: %s", bad)
	}
	if took > 30*time.Second {
		t.Errorf("a wrong sudo password took %s to fail", took)
	}
	after := dockerExec(t, name, "sh", "-c", "journalctl -q --no-pager | grep -c 'incorrect password attempt' || true")
	// sudo logs each refused password: exactly one try, no lockout.
	if n, m := atoi(before.stdout), atoi(after.stdout); m-n != 1 {
		t.Errorf("sudo was tried %d times with the wrong password, want 1", m-n)
	}
	t.Logf("the wrong password said:\n%s", bad.stderr)
	ok := s.machine("provision", "--sudo-password-file", pwFile, "sudohost")
	if ok.code != 0 {
		t.Fatalf("provision again: %s", ok)
	}
	assertNowhere(t, s, pw, r, create, bad, ok)
	assertNowhere(t, s, "not-the-password")
}

func atoi(s string) int {
	var n int
	fmt.Sscan(strings.TrimSpace(s), &n)
	return n
}

var _ = net.ParseIP
