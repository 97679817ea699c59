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
	// Every command that needs root takes the password (issue 27 item
	// 11): upgrade and regenerate-certs refused the flag and ignored
	// $SHOAL_SUDO_PASSWORD, though their error named them.
	noPW := s.machine("regenerate-certs", "-f", "sudohost")
	if noPW.code == 0 || !strings.Contains(noPW.stderr, "--sudo-password-file") {
		t.Errorf("regenerate-certs without the sudo password: %s", noPW)
	}
	regen := s.machine("regenerate-certs", "-f", "--sudo-password-file", pwFile, "sudohost")
	if regen.code != 0 {
		t.Errorf("regenerate-certs --sudo-password-file: %s", regen)
	}
	up := s.machineEnv([]string{"SHOAL_SUDO_PASSWORD=" + pw}, "upgrade", "sudohost")
	if up.code != 0 {
		t.Errorf("upgrade with $SHOAL_SUDO_PASSWORD: %s", up)
	}
	assertNowhere(t, s, pw, r, create, bad, ok, noPW, regen, up)
	assertNowhere(t, s, "not-the-password")
}

func atoi(s string) int {
	var n int
	fmt.Sscan(strings.TrimSpace(s), &n)
	return n
}

// fingerprint is the SHA256 fingerprint of a lab host's ed25519 host key.
func fingerprint(t *testing.T, container string) string {
	t.Helper()
	r := dockerExec(t, container, "ssh-keygen", "-lf", "/etc/ssh/ssh_host_ed25519_key.pub")
	f := strings.Fields(r.stdout)
	if r.code != 0 || len(f) < 2 {
		t.Fatalf("host key of %s: %s", container, r)
	}
	return f[1]
}

// journalCount counts the lines of a host's journal that hold s.
func journalCount(t *testing.T, container, s string) int {
	t.Helper()
	r := dockerExec(t, container, "sh", "-c", "journalctl -q --no-pager | grep -c -F "+shellQuote(s)+" || true")
	return atoi(r.stdout)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// runHome runs a binary with HOME set, so that ~/.ssh/config is the test's.
func runHome(t *testing.T, home string, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "HOME="+home)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s %s -> exit %d", filepath.Base(name), strings.Join(args, " "), code)
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// TestAccessJumpHostAndSSHConfig: hosts that accept SSH only from a jump
// host (a firewall rule in each host) are made a 3-node cluster through
// it, one of them named by an ~/.ssh/config alias; machine ssh, scp and
// env work through it; one connection to the jump host serves the run; an
// alias with a port, a user, an identity file and a ProxyJump works for
// machine create --ssh-host ALIAS; the jump host's key is pinned.
func TestAccessJumpHostAndSSHConfig(t *testing.T) {
	requireE2E(t)
	s := newShoal(t)
	archive := labArchive(t)
	priv, pub := userKey(t)
	net1 := "shoal-lab-acj"
	jumpIP := acHost(t, "e2e-ac-jump", net1, "--image", "shoal-lab/base:bookworm", "--user", "ops", "--pubkey", pub)
	ips := map[string]string{}
	for _, n := range []string{"t1", "t2", "t3", "t4"} {
		ips[n] = acHost(t, "e2e-ac-"+n, net1, "--user", "deploy", "--pubkey", pub, "--only-from", jumpIP)
	}
	// t2's sshd forwards no TCP, as hardened servers are set: shoal asks
	// the registry from it with curl, from the others through the SSH
	// connection (sshd takes a keyword's first value: the line goes first).
	if r := dockerExec(t, "e2e-ac-t2", "sh", "-c", "sed -i '1i AllowTcpForwarding no' /etc/ssh/sshd_config && systemctl reload ssh"); r.code != 0 {
		t.Fatalf("AllowTcpForwarding no on t2: %s", r)
	}
	// t4's sshd is reached on port 2222 (as the alias says).
	if r := dockerExec(t, "e2e-ac-t4", "iptables", "-t", "nat", "-I", "PREROUTING", "-p", "tcp", "--dport", "2222", "-j", "REDIRECT", "--to-ports", "22"); r.code != 0 {
		t.Fatalf("port 2222 on t4: %s", r)
	}
	// The firewall holds: no SSH from here.
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(ips["t1"], "22"), 3*time.Second); err == nil {
		c.Close()
		t.Fatal("t1 answers SSH from outside the jump host: the test would prove nothing")
	}

	home := t.TempDir()
	conf := fmt.Sprintf(`Host jumpbox
  HostName %s
  User ops
  IdentityFile %s

Host web3
  HostName %s
  User deploy
  IdentityFile %s
  ProxyJump jumpbox

Host web4
  HostName %s
  Port 2222
  User deploy
  IdentityFile %s
  ProxyJump jumpbox
`, jumpIP, priv, ips["t3"], priv, ips["t4"], priv)
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}

	file := filepath.Join(t.TempDir(), "jump.hcl")
	hcl := fmt.Sprintf(`cluster "acj" {}

defaults {
  driver         = "ssh"
  image_archives = [%[1]q]
}

machine "m1" {
  role = "manager"
  ssh {
    host       = %[2]q
    user       = "deploy"
    key        = %[3]q
    proxy_jump = "ops@%[4]s"
  }
}

machine "w1" {
  ssh {
    host       = %[5]q
    user       = "deploy"
    key        = %[3]q
    proxy_jump = "ops@%[4]s:22"
  }
}

# An alias of ~/.ssh/config: HostName, User, IdentityFile, ProxyJump.
machine "w2" {
  ssh { host = "web3" }
}

registry { node = "m1" }
`, archive, ips["t1"], priv, jumpIP, ips["t2"])
	if err := os.WriteFile(file, []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	logins := journalCount(t, "e2e-ac-jump", "Accepted publickey for ops")
	up := runHome(t, home, bin("cluster"), "--storage-path", s.storage, "--output", "plain", "up", file)
	if up.code != 0 {
		t.Fatalf("cluster up through the jump host: %s", up)
	}
	if fp := fingerprint(t, "e2e-ac-jump"); !strings.Contains(up.stderr, "pinned the host key of "+jumpIP+" on first contact: "+fp) {
		t.Errorf("the jump host's key %s was not shown on first contact:\n%s", fp, up.stderr)
	}
	if n := journalCount(t, "e2e-ac-jump", "Accepted publickey for ops") - logins; n != 1 {
		t.Errorf("cluster up logged in to the jump host %d times, want 1 connection shared by the 3 machines", n)
	}
	nodes := s.sshOut("m1", "docker", "node", "ls", "--format", "'{{.Hostname}} {{.Status}}'")
	if strings.Count(nodes, " Ready") != 3 {
		t.Fatalf("want 3 Ready nodes:\n%s", nodes)
	}
	if got := s.sshOut("w2", "hostname"); got != "w2" {
		t.Errorf("w2 (alias web3) hostname %q", got)
	}
	for n, want := range map[string]bool{"m1": false, "w1": true, "w2": false} {
		log, err := os.ReadFile(filepath.Join(s.storage, "machines", n, "provision.log"))
		if got := strings.Contains(string(log), "curl -fsS -m 5 -o /dev/null"); err != nil || got != want {
			t.Errorf("%s: the registry asked with curl on the host: %v, want %v (%v): only where sshd forwards no TCP", n, got, want, err)
		}
	}
	if kh, err := os.ReadFile(filepath.Join(s.storage, "jumphosts", jumpIP+"_22", "known_hosts")); err != nil || !strings.Contains(string(kh), jumpIP) {
		t.Errorf("the jump host's key is not pinned in the store: %v %s", err, kh)
	}
	again := runHome(t, home, bin("cluster"), "--storage-path", s.storage, "--output", "plain", "up", file)
	if again.code != 0 {
		t.Fatalf("cluster up again: %s", again)
	}

	// machine ssh, scp and env through the jump host.
	src := filepath.Join(t.TempDir(), "hello.txt")
	os.WriteFile(src, []byte("through the jump host\n"), 0o644)
	s.mustMachine("scp", src, "w1:/tmp/hello.txt")
	if got := s.sshOut("w1", "cat", "/tmp/hello.txt"); got != "through the jump host" {
		t.Errorf("scp to w1: %q", got)
	}
	back := filepath.Join(t.TempDir(), "back.txt")
	s.mustMachine("scp", "w1:/tmp/hello.txt", back)
	if b, _ := os.ReadFile(back); string(b) != "through the jump host\n" {
		t.Errorf("scp from w1: %q", b)
	}
	if r := s.dockerEnv("m1", "node", "ls", "-q"); r.code != 0 || len(strings.Fields(r.stdout)) != 3 {
		t.Errorf("docker through machine env m1: %s", r)
	}

	// machine create with an alias: port 2222, user, identity file and
	// ProxyJump from ~/.ssh/config; the jump host's key pinned before the
	// first contact with --ssh-jump-host-key (another store: nothing
	// pinned yet).
	s2 := newShoal(t)
	wrong := "SHA256:" + strings.Repeat("A", 43)
	bad := runHome(t, home, bin("machine"), "--storage-path", s2.storage, "--output", "plain", "create", "-d", "ssh", "--ssh-host", "web4", "--ssh-jump-host-key", wrong, "--engine-install", "skip", "n4")
	if bad.code == 0 || !strings.Contains(bad.stderr, "jump host") || !strings.Contains(bad.stderr, "does not match") {
		t.Fatalf("a wrong jump host key must be refused: %s", bad)
	}
	good := runHome(t, home, bin("machine"), "--storage-path", s2.storage, "--output", "plain", "create", "-d", "ssh", "--ssh-host", "web4", "--ssh-jump-host-key", fingerprint(t, "e2e-ac-jump"), "n4")
	if good.code != 0 {
		t.Fatalf("machine create --ssh-host web4: %s", good)
	}
	var cfg struct {
		DriverConfig struct {
			Host, User, Key, ProxyJump, Alias string
			Port                              int
		} `json:"driverConfig"`
	}
	b, _ := os.ReadFile(filepath.Join(s2.storage, "machines", "n4", "config.json"))
	mustJSON(t, string(b), &cfg)
	dc := cfg.DriverConfig
	if dc.Host != ips["t4"] || dc.Port != 2222 || dc.User != "deploy" || dc.Key != priv || dc.ProxyJump != "ops@"+jumpIP+":22" || dc.Alias != "web4" {
		t.Errorf("the alias was not resolved: %s", b)
	}
	// Later commands need no ~/.ssh/config for the host itself.
	if got := strings.TrimSpace(runHome(t, home, bin("machine"), "--storage-path", s2.storage, "ssh", "n4", "--", "hostname").stdout); got != "n4" {
		t.Errorf("machine ssh n4: %q", got)
	}
	// Flags win over the alias: port 22 (through the jump host, which
	// t4's firewall lets in), and a user the host does not have.
	s3 := newShoal(t)
	over := runHome(t, home, bin("machine"), "--storage-path", s3.storage, "--output", "plain", "create", "-d", "ssh", "--ssh-host", "web4", "--ssh-port", "22", "--engine-install", "skip", "n5")
	b, _ = os.ReadFile(filepath.Join(s3.storage, "machines", "n5", "config.json"))
	mustJSON(t, string(b), &cfg)
	if over.code != 0 || cfg.DriverConfig.Port != 22 || cfg.DriverConfig.User != "deploy" {
		t.Errorf("--ssh-port 22 should win over the alias's Port 2222: %s\n%s", over, b)
	}
	nouser := runHome(t, home, bin("machine"), "--storage-path", t.TempDir(), "--output", "plain", "create", "-d", "ssh", "--ssh-host", "web4", "--ssh-user", "nosuchuser", "--engine-install", "skip", "n6")
	if nouser.code == 0 || !strings.Contains(nouser.stderr, "user nosuchuser") {
		t.Errorf("--ssh-user should win over the alias's User: %s", nouser)
	}
}

// waitFor polls check every 3 s until it returns "" or the time is up, and
// returns its last complaint.
func waitFor(timeout time.Duration, check func() string) string {
	deadline := time.Now().Add(timeout)
	for {
		msg := check()
		if msg == "" || time.Now().After(deadline) {
			return msg
		}
		time.Sleep(3 * time.Second)
	}
}

func containerIP(t *testing.T, container, network string) string {
	t.Helper()
	r := run(t, time.Minute, "docker", "inspect", "-f", fmt.Sprintf("{{(index .NetworkSettings.Networks %q).IPAddress}}", network), container)
	return strings.TrimSpace(r.stdout)
}

// TestAccessReboot: a 3-node cluster of container hosts restarted (docker
// restart of every host: systemd boots again, Docker rewrites /etc/hosts
// and the hostname). Without any shoal command, the swarm has 3 Ready
// nodes, every node resolves the others by the names shoal gave them (not
// the container names Docker's DNS knows) and reaches the registry by
// name; then cluster up has nothing to change.
func TestAccessReboot(t *testing.T) {
	requireE2E(t)
	s := newShoal(t)
	archive := labArchive(t)
	priv, pub := userKey(t)
	netName := "shoal-lab-acr"
	names := []string{"alpha", "beta", "gamma"}
	containers := map[string]string{"alpha": "e2e-ac-r1", "beta": "e2e-ac-r2", "gamma": "e2e-ac-r3"}
	ips := map[string]string{}
	for _, n := range names {
		ips[n] = acHost(t, containers[n], netName, "--user", "tester", "--pubkey", pub)
	}
	file := adoptedClusterFile(t, "acr", priv, archive, []string{"alpha"}, []string{"beta", "gamma"}, ips)
	if r := s.cluster("up", file); r.code != 0 {
		t.Fatalf("cluster up: %s", r)
	}
	if got := dockerExec(t, "e2e-ac-r2", "systemctl", "is-enabled", "shoal-restore.service"); strings.TrimSpace(got.stdout) != "enabled" {
		t.Fatalf("the restore unit is not enabled: %s", got)
	}

	args := []string{"restart", "-t", "30"}
	for _, n := range names {
		args = append(args, containers[n])
	}
	if r := run(t, 5*time.Minute, "docker", args...); r.code != 0 {
		t.Fatalf("docker restart: %s", r)
	}
	for _, n := range names {
		if ip := containerIP(t, containers[n], netName); ip != ips[n] {
			t.Fatalf("%s came back at %s, not %s: Docker gave it another address, the swarm cannot survive that", n, ip, ips[n])
		}
	}
	// Docker rewrote /etc/hosts and the hostname at start; what shoal set
	// is back, from the host's own boot.
	for _, n := range names {
		c := containers[n]
		if msg := waitFor(2*time.Minute, func() string {
			// A node's own name is 127.0.1.1 (Debian's way); the others'
			// come from shoal's block.
			r := dockerExec(t, c, "sh", "-c", "systemctl is-system-running --wait >/dev/null 2>&1; hostname; for n in alpha beta gamma; do getent hosts $n | awk '{print $1; exit}'; done")
			want := n + "\n"
			for _, o := range names {
				if o == n {
					want += "127.0.1.1\n"
				} else {
					want += ips[o] + "\n"
				}
			}
			if r.stdout != want {
				return fmt.Sprintf("%s after the reboot: hostname and names %q, want %q", n, r.stdout, want)
			}
			return ""
		}); msg != "" {
			t.Error(msg)
			t.Log(dockerExec(t, c, "sh", "-c", "cat /etc/hosts; systemctl status shoal-restore.service --no-pager").stdout)
		}
		if r := dockerExec(t, c, "sh", "-c", "id -nG tester; cat /etc/docker/daemon.json; systemctl is-active docker"); !strings.Contains(r.stdout, "docker") || !strings.Contains(r.stdout, "alpha:5000") || !strings.HasSuffix(r.stdout, "active\n") {
			t.Errorf("%s after the reboot: docker group, daemon.json, dockerd: %s", n, r)
		}
	}
	if msg := waitFor(3*time.Minute, func() string {
		r := dockerExec(t, "e2e-ac-r1", "docker", "node", "ls", "--format", "{{.Hostname}} {{.Status}}")
		if strings.Count(r.stdout, " Ready") != 3 {
			return "docker node ls after the reboot:\n" + r.stdout + r.stderr
		}
		for _, n := range names {
			if !strings.Contains(r.stdout, n+" Ready") {
				return "docker node ls after the reboot:\n" + r.stdout
			}
		}
		return ""
	}); msg != "" {
		t.Fatal(msg)
	}
	for _, n := range names {
		c := containers[n]
		if msg := waitFor(3*time.Minute, func() string {
			r := dockerExec(t, c, "curl", "-fsS", "-m", "5", "http://alpha:5000/v2/")
			if strings.TrimSpace(r.stdout) != "{}" {
				return fmt.Sprintf("%s: the registry at alpha:5000 answered %s\n%s", n, r,
					dockerExec(t, c, "sh", "-c", "cat /etc/hosts; journalctl -b --no-pager -u shoal-restore.service -u docker.service | head -n 30").stdout)
			}
			return ""
		}); msg != "" {
			t.Error(msg)
		}
	}
	// TLS still serves machine env.
	if r := s.dockerEnv("alpha", "info", "--format", "{{.Swarm.LocalNodeState}}"); strings.TrimSpace(r.stdout) != "active" {
		t.Errorf("docker through machine env after the reboot: %s", r)
	}
	again := run(t, 20*time.Minute, bin("cluster"), "--storage-path", s.storage, "--output", "json", "up", file)
	if again.code != 0 {
		t.Fatalf("cluster up after the reboot: %s", again)
	}
	var changed []string
	for _, l := range strings.Split(strings.TrimSpace(again.stdout), "\n") {
		if strings.Contains(l, `"status":"changed"`) {
			changed = append(changed, l)
		}
	}
	if len(changed) > 0 || !strings.Contains(again.stdout, `"changed":false`) {
		t.Errorf("cluster up after the reboot changed something:\n%s", strings.Join(changed, "\n"))
	}
}

// TestAccessTwoInterfaces: every host has two networks. The first (eth0,
// the default route, the address Docker would pick on its own) also holds
// the same 10.0.2.15 on every host, as VirtualBox's NAT gives every VM. shoal connects to each host on its second network: the swarm
// advertises that address, and /etc/hosts and the registry's trust use it.
func TestAccessTwoInterfaces(t *testing.T) {
	requireE2E(t)
	s := newShoal(t)
	archive := labArchive(t)
	priv, pub := userKey(t)
	first, second := "shoal-lab-acn1", "shoal-lab-acn2"
	names := []string{"n1", "n2", "n3"}
	ips, firstIPs := map[string]string{}, map[string]string{}
	for _, n := range names {
		firstIPs[n] = acHost(t, "e2e-ac-"+n, first, "--network2", second, "--nat-addr", "10.0.2.15/24", "--user", "tester", "--pubkey", pub)
		ips[n] = containerIP(t, "e2e-ac-"+n, second)
		if ips[n] == "" || ips[n] == firstIPs[n] {
			t.Fatalf("%s: no second address (%q, first %q)", n, ips[n], firstIPs[n])
		}
	}
	// What the test stands on: eth0 is the default route, and 10.0.2.15
	// is on every host.
	for _, n := range names {
		r := dockerExec(t, "e2e-ac-"+n, "sh", "-c", "ip -4 -o addr show | awk '{print $2, $4}'; ip route show default")
		if !strings.Contains(r.stdout, "eth0 10.0.2.15/24") || !strings.Contains(r.stdout, "default via") || !strings.Contains(r.stdout, "dev eth0") {
			t.Fatalf("%s: not the two-interface host the test needs:\n%s", n, r)
		}
	}
	file := adoptedClusterFile(t, "acn", priv, archive, []string{"n1"}, []string{"n2", "n3"}, ips)
	if r := s.cluster("up", file); r.code != 0 {
		t.Fatalf("cluster up: %s", r)
	}
	for _, n := range names {
		addr := s.sshOut("n1", "docker", "node", "inspect", n, "--format", "'{{.Status.Addr}}'")
		if addr != ips[n] {
			t.Errorf("%s: the swarm has it at %s, want %s (the address shoal connected to; first network %s, NAT 10.0.2.15)", n, addr, ips[n], firstIPs[n])
		}
	}
	if got := s.sshOut("n1", "docker", "node", "inspect", "n1", "--format", "'{{.ManagerStatus.Addr}}'"); got != ips["n1"]+":2377" {
		t.Errorf("the manager advertises %s, want %s:2377", got, ips["n1"])
	}
	for _, n := range names {
		hosts := s.sshOut(n, "cat", "/etc/hosts")
		for _, o := range names {
			if !strings.Contains(hosts, ips[o]+"\t"+o) {
				t.Errorf("%s: /etc/hosts does not name %s at %s:\n%s", n, o, ips[o], hosts)
			}
		}
		if strings.Contains(hosts, "10.0.2.15") || strings.Contains(hosts, firstIPs["n1"]+"\tn1") {
			t.Errorf("%s: /etc/hosts names a node at an address the others cannot use:\n%s", n, hosts)
		}
		dj := s.sshOut(n, "cat", "/etc/docker/daemon.json")
		if !strings.Contains(dj, ips["n1"]+":5000") || strings.Contains(dj, "10.0.2.15") {
			t.Errorf("%s: daemon.json does not trust the registry at %s:5000:\n%s", n, ips["n1"], dj)
		}
		if got := s.sshOut(n, "curl", "-fsS", "http://n1:5000/v2/"); got != "{}" {
			t.Errorf("%s: registry answered %q", n, got)
		}
	}
}

// TestAccessClusterPasswords: a cluster file takes the login and sudo
// passwords from sensitive variables set in the environment (SHOAL_VAR_*);
// they reach no file, output or transcript.
func TestAccessClusterPasswords(t *testing.T) {
	requireE2E(t)
	s := newShoal(t)
	archive := labArchive(t)
	pw := `cl"uster p'w $x`
	pwFile := secretFile(t, pw)
	ip := acHost(t, "e2e-ac-clpw", "shoal-lab-ac", "--password-user", "hadoop", "--password-file", pwFile, "--sudo-password")
	file := filepath.Join(t.TempDir(), "pw.hcl")
	hcl := fmt.Sprintf(`cluster "acpw" {}

variable "pw" { sensitive = true }

machine "solo" {
  role   = "manager"
  driver = "ssh"
  ssh {
    host          = %q
    user          = "hadoop"
    password      = var.pw
    sudo_password = var.pw
  }
  image_archives = [%q]
}
`, ip, archive)
	if err := os.WriteFile(file, []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	up := func() result {
		cmd := exec.Command(bin("cluster"), "--storage-path", s.storage, "--output", "plain", "up", file)
		cmd.Env = append(os.Environ(), "SHOAL_VAR_pw="+pw)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		r := result{stdout: out.String(), stderr: errb.String()}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		}
		return r
	}
	first := up()
	if first.code != 0 {
		t.Fatalf("cluster up with passwords from SHOAL_VAR_pw: %s", first)
	}
	if strings.Contains(first.stderr, "Password in") {
		t.Errorf("a sensitive variable should not be warned about:\n%s", first.stderr)
	}
	if got := s.sshOut("solo", "docker", "node", "ls", "--format", "'{{.Hostname}} {{.Status}}'"); got != "solo Ready" {
		t.Errorf("node ls: %q", got)
	}
	again := up()
	if again.code != 0 {
		t.Fatalf("cluster up again: %s", again)
	}
	assertNowhere(t, s, pw, first, again)
	// Without the variable: its value is missing, said before anything.
	r := s.cluster("up", file)
	if r.code != 2 || !strings.Contains(r.stderr, "SHOAL_VAR_pw") {
		t.Errorf("cluster up without the password: %s", r)
	}
}
