package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMachineSSHDriver adopts two real hosts as a non-root user with
// passwordless sudo: a bare Debian without Docker, and one with Docker and a
// daemon.json of its own.
func TestMachineSSHDriver(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	priv, pub := userKey(t)

	original := `{"log-level": "warn", "insecure-registries": ["old.example:5000"], "max-concurrent-downloads": 3}` + "\n"
	djson := filepath.Join(t.TempDir(), "daemon.json")
	if err := os.WriteFile(djson, []byte(original), 0o644); err != nil {
		t.Fatal(err)
	}
	bareIP := labHost(t, "e2e-bare", hostOpts{image: "shoal-lab/base:bookworm", user: "tester", pubkey: pub})
	dockIP := labHost(t, "e2e-dock", hostOpts{user: "tester", pubkey: pub, daemonJSON: djson})

	if r := dockerExec(t, "e2e-bare", "sh", "-c", "command -v dockerd"); r.code == 0 {
		t.Fatalf("the bare host already has Docker: %s", r)
	}
	s.mustMachine("create", "-d", "ssh", "--ssh-host", bareIP, "--ssh-user", "tester", "--ssh-key", priv,
		"--engine-install", "distro", "--engine-insecure-registry", "new.example:5000", "bare")
	s.mustMachine("create", "-d", "generic", "--generic-ip-address", dockIP, "--generic-ssh-user", "tester", "--generic-ssh-key", priv,
		"--engine-insecure-registry", "new.example:5000", "--engine-label", "env=e2e", "--hostname", "dock-host", "dock")

	for name, hostname := range map[string]string{"bare": "bare", "dock": "dock-host"} {
		if got := s.sshOut(name, "hostname"); got != hostname {
			t.Errorf("%s: hostname %q, want %q", name, got, hostname)
		}
		if got := s.sshOut(name, "grep", "^127.0.1.1", "/etc/hosts"); !strings.Contains(got, hostname) {
			t.Errorf("%s: 127.0.1.1 line %q lacks %s", name, got, hostname)
		}
		if got := s.sshOut(name, "id", "-nG"); !strings.Contains(" "+got+" ", " docker ") {
			t.Errorf("%s: tester's groups %q lack docker", name, got)
		}
		// A new login, no sudo: the group membership works.
		if got := s.sshOut(name, "docker", "info", "--format", "'{{.ServerVersion}}'"); got == "" {
			t.Errorf("%s: docker info as tester printed nothing", name)
		}
		if got := s.sshOut(name, "id", "-un"); got != "tester" {
			t.Errorf("%s: logged in as %q, want tester", name, got)
		}
		// dockerd answers with TLS on 2376 too.
		if got := s.sshOut(name, "sudo", "ss", "-ltn"); !strings.Contains(got, ":2376") {
			t.Errorf("%s: nothing listens on 2376:\n%s", name, got)
		}
	}

	var merged map[string]any
	mustJSON(t, s.sshOut("dock", "sudo", "cat", "/etc/docker/daemon.json"), &merged)
	if merged["log-level"] != "warn" || merged["max-concurrent-downloads"] != float64(3) {
		t.Errorf("daemon.json lost the host's keys: %v", merged)
	}
	if got := toStrings(merged["insecure-registries"]); strings.Join(got, ",") != "old.example:5000,new.example:5000" {
		t.Errorf("insecure-registries %v, want the union old + new", got)
	}
	if got := toStrings(merged["labels"]); strings.Join(got, ",") != "env=e2e" {
		t.Errorf("labels %v", got)
	}
	if got := s.sshOut("dock", "sudo", "cat", "/etc/docker/daemon.json.shoal-orig"); got != strings.TrimSpace(original) {
		t.Errorf("backup of the original daemon.json is %q", got)
	}
	var bareJSON map[string]any
	mustJSON(t, s.sshOut("bare", "sudo", "cat", "/etc/docker/daemon.json"), &bareJSON)
	if got := toStrings(bareJSON["insecure-registries"]); strings.Join(got, ",") != "new.example:5000" {
		t.Errorf("bare: insecure-registries %v", got)
	}

	// A second provisioning changes nothing: dockerd keeps its PID.
	pids := map[string]string{}
	for _, n := range []string{"bare", "dock"} {
		pids[n] = s.sshOut(n, "sudo", "systemctl", "show", "-p", "MainPID", "--value", "docker")
	}
	r := s.machine("provision", "bare", "dock")
	if r.code != 0 {
		t.Fatalf("provision again: %s", r)
	}
	if strings.Contains(r.stderr, " changed") {
		t.Errorf("a second provisioning changed something:\n%s", r.stderr)
	}
	for _, n := range []string{"bare", "dock"} {
		if got := s.sshOut(n, "sudo", "systemctl", "show", "-p", "MainPID", "--value", "docker"); got != pids[n] || got == "0" {
			t.Errorf("%s: dockerd PID %s before, %s after a no-op provision", n, pids[n], got)
		}
	}

	// ls, ip, inspect, ssh, scp.
	ls := s.mustMachine("ls")
	for _, want := range []string{"NAME", "ACTIVE", "DRIVER", "STATE", "URL", "SWARM", "DOCKER", "ERRORS", "bare", "dock", "Running", "ssh", "tcp://" + bareIP + ":2376"} {
		if !strings.Contains(ls, want) {
			t.Errorf("machine ls lacks %q:\n%s", want, ls)
		}
	}
	if got := strings.Fields(s.mustMachine("ls", "-q")); strings.Join(got, ",") != "bare,dock" {
		t.Errorf("ls -q: %v", got)
	}
	if got := strings.TrimSpace(s.mustMachine("ls", "--filter", "name=dock", "--format", "{{.Name}} {{.State}}")); got != "dock Running" {
		t.Errorf("ls --filter --format: %q", got)
	}
	var rows []map[string]any
	mustJSON(t, s.mustMachine("ls", "--output", "json"), &rows)
	if len(rows) != 2 {
		t.Errorf("ls --output json: %d rows", len(rows))
	}
	if got := strings.TrimSpace(s.mustMachine("ip", "bare")); got != bareIP {
		t.Errorf("ip bare = %q, want %s", got, bareIP)
	}
	var cfg map[string]any
	mustJSON(t, s.mustMachine("inspect", "dock"), &cfg)
	if cfg["driver"] != "ssh" || cfg["name"] != "dock" || cfg["version"] != float64(1) {
		t.Errorf("inspect: %v", cfg)
	}
	if got := strings.TrimSpace(s.mustMachine("inspect", "-f", "{{.Address}}", "dock")); got != dockIP {
		t.Errorf("inspect -f: %q", got)
	}
	if r := s.machine("ssh", "dock", "--", "exit", "7"); r.code != 7 {
		t.Errorf("ssh exit status: %d, want 7", r.code)
	}
	local := filepath.Join(t.TempDir(), "hello.txt")
	os.WriteFile(local, []byte("hello from the test\n"), 0o644)
	s.mustMachine("scp", local, "dock:/tmp/hello.txt")
	if got := s.sshOut("dock", "cat", "/tmp/hello.txt"); got != "hello from the test" {
		t.Errorf("scp upload: %q", got)
	}
	back := filepath.Join(t.TempDir(), "back.txt")
	s.mustMachine("scp", "dock:/tmp/hello.txt", back)
	if b, _ := os.ReadFile(back); string(b) != "hello from the test\n" {
		t.Errorf("scp download: %q", b)
	}

	// Key files are private.
	for _, f := range []string{"machines/dock/id_ed25519", "certs/ca-key.pem", "certs/key.pem", "machines/dock/server-key.pem"} {
		st, err := os.Stat(filepath.Join(s.storage, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, st.Mode(), err)
		}
	}

	// A replaced host key is refused, and the error says why.
	if r := dockerExec(t, "e2e-dock", "sh", "-c", "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh"); r.code != 0 {
		t.Fatalf("replace host key: %s", r)
	}
	r = s.machine("ssh", "dock", "--", "true")
	if r.code == 0 {
		t.Fatalf("machine ssh accepted a changed host key")
	}
	t.Logf("the refusal: %s", r.stderr)
	if !strings.Contains(r.stderr, "host key") || strings.Count(r.stderr, "SHA256:") < 2 {
		t.Errorf("the refusal should name the host key and both fingerprints:\n%s", r.stderr)
	}

	// rm forgets an adopted host and leaves it running with its Docker.
	s.mustMachine("rm", "-y", "dock")
	if strings.Contains(s.mustMachine("ls", "-q"), "dock") {
		t.Errorf("dock still listed after rm")
	}
	if r := dockerExec(t, "e2e-dock", "systemctl", "is-active", "docker"); strings.TrimSpace(r.stdout) != "active" {
		t.Errorf("rm harmed the adopted host: docker is %q", r.stdout)
	}
}

// TestMachineInvalidDaemonJSON: a host whose daemon.json is not JSON makes
// create fail clearly, and the file and the host stay as they were.
func TestMachineInvalidDaemonJSON(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	priv, pub := userKey(t)
	bad := "{\"log-level\": \"warn\",\n"
	djson := filepath.Join(t.TempDir(), "daemon.json")
	os.WriteFile(djson, []byte(bad), 0o644)
	ip := labHost(t, "e2e-badjson", hostOpts{user: "tester", pubkey: pub, daemonJSON: djson})

	r := s.machine("create", "-d", "ssh", "--ssh-host", ip, "--ssh-user", "tester", "--ssh-key", priv, "badjson")
	if r.code != 1 {
		t.Fatalf("create on an invalid daemon.json: want exit 1, got %s", r)
	}
	t.Logf("the error: %s", r.stderr)
	if !strings.Contains(r.stderr, "daemon.json") || !strings.Contains(r.stderr, "not valid JSON") {
		t.Errorf("the error should say daemon.json is not valid JSON:\n%s", r.stderr)
	}
	if got := dockerExec(t, "e2e-badjson", "cat", "/etc/docker/daemon.json").stdout; got != bad {
		t.Errorf("daemon.json changed: %q", got)
	}
	if got := strings.TrimSpace(dockerExec(t, "e2e-badjson", "hostname").stdout); got != "e2e-badjson" {
		t.Errorf("the hostname changed to %q although create failed first", got)
	}
}

// TestMachineDockerDriver: a host that is a container on the local engine.
func TestMachineDockerDriver(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	// Last first: the network goes after the containers on it.
	t.Cleanup(func() { run(t, time.Minute, "docker", "network", "rm", "shoal-e2e") })
	t.Cleanup(func() { run(t, time.Minute, "docker", "rm", "-fv", "shoal-e2e-d1") })
	s.mustMachine("create", "-d", "docker", "--docker-network", "shoal-e2e", "e2e-d1")
	if got := s.sshOut("e2e-d1", "docker", "info", "--format", "'{{.Swarm.LocalNodeState}}'"); got != "inactive" {
		t.Errorf("docker info on the container host: %q", got)
	}
	if got := s.sshOut("e2e-d1", "hostname"); got != "e2e-d1" {
		t.Errorf("hostname %q", got)
	}
	if got := strings.TrimSpace(s.mustMachine("status", "e2e-d1")); got != "Running" {
		t.Errorf("status %q", got)
	}
	oldIP := strings.TrimSpace(s.mustMachine("ip", "e2e-d1"))
	s.mustMachine("stop", "e2e-d1")
	if got := strings.TrimSpace(s.mustMachine("status", "e2e-d1")); got != "Stopped" {
		t.Errorf("status after stop %q", got)
	}
	// The stopped host is given another address, as a DHCP server or a
	// busy bridge would: it comes back with it, and its server certificate
	// must follow.
	if r := run(t, time.Minute, "docker", "network", "disconnect", "shoal-e2e", "shoal-e2e-d1"); r.code != 0 {
		t.Fatalf("network disconnect: %s", r)
	}
	t.Cleanup(func() { run(t, time.Minute, "docker", "rm", "-f", "e2e-ipthief") })
	if r := run(t, time.Minute, "docker", "run", "-d", "--name", "e2e-ipthief", "--network", "shoal-e2e",
		"--entrypoint", "sleep", "shoal/node:bookworm", "600"); r.code != 0 {
		t.Fatalf("another container on the network: %s", r)
	}
	if r := run(t, time.Minute, "docker", "network", "connect", "shoal-e2e", "shoal-e2e-d1"); r.code != 0 {
		t.Fatalf("network connect: %s", r)
	}
	s.mustMachine("start", "e2e-d1")
	newIP := strings.TrimSpace(s.mustMachine("ip", "e2e-d1"))
	if newIP == oldIP {
		t.Fatalf("the host kept %s: the test could not change its address", oldIP)
	}
	if got := s.sshOut("e2e-d1", "docker", "info", "--format", "'{{.ServerVersion}}'"); got == "" {
		t.Errorf("docker does not answer after a restart")
	}
	if got := strings.TrimSpace(s.mustMachine("url", "e2e-d1")); got != "tcp://"+newIP+":2376" {
		t.Errorf("url after the address changed: %q", got)
	}
	if r := s.dockerEnv("e2e-d1", "version", "--format", "{{.Server.Version}}"); r.code != 0 {
		t.Errorf("TLS to the new address (the server certificate should have been issued again): %s", r)
	}
	s.mustMachine("regenerate-certs", "e2e-d1")
	if r := s.dockerEnv("e2e-d1", "version", "--format", "{{.Server.Version}}"); r.code != 0 {
		t.Errorf("TLS after regenerate-certs: %s", r)
	}
	s.mustMachine("rm", "-y", "e2e-d1")
	if r := run(t, time.Minute, "docker", "inspect", "shoal-e2e-d1"); r.code == 0 {
		t.Errorf("machine rm left the container behind")
	}
}

// TestMachineUsage: bad input is exit status 2 and creates nothing.
func TestMachineUsage(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	for _, args := range [][]string{
		{"create", "-d", "nosuchdriver", "x"},
		{"create", "-d", "ssh", "x"},
		{"create", "bad_name!"},
		{"create", "--no-such-flag", "x"},
		{"ssh"},
	} {
		if r := s.machine(args...); r.code != 2 {
			t.Errorf("machine %v: exit %d, want 2\n%s", args, r.code, r)
		}
	}
	if got := strings.TrimSpace(s.mustMachine("ls", "-q")); got != "" {
		t.Errorf("bad input left machines behind: %q", got)
	}
	if r := s.machine("inspect", "nothere"); r.code != 1 || !strings.Contains(r.stderr, "no such machine") {
		t.Errorf("inspect of a missing machine: %s", r)
	}
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestMachineVirtualBoxWithoutVirtualBox: VirtualBox cannot be installed
// here; the driver must say so at once and leave nothing in the store.
func TestMachineVirtualBoxWithoutVirtualBox(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	help := s.mustMachine("create", "-d", "virtualbox", "--help")
	for _, f := range []string{"--virtualbox-image", "--virtualbox-cpus", "--virtualbox-memory", "--virtualbox-disk-size",
		"--virtualbox-hostonly-cidr", "--virtualbox-hostonly-ip", "--virtualbox-ssh-user"} {
		if !strings.Contains(help, f) {
			t.Errorf("create --help does not document %s", f)
		}
	}
	image := filepath.Join(t.TempDir(), "cloud.qcow2")
	os.WriteFile(image, []byte("not really an image"), 0o644)
	start := time.Now()
	r := s.machine("create", "-d", "virtualbox", "--virtualbox-image", image, "vb1")
	if r.code != 1 || !strings.Contains(r.stderr, "VirtualBox is not installed") {
		t.Fatalf("want a clear failure without VBoxManage, got %s", r)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("failing took %s: it should fail at once", d)
	}
	if entries, _ := os.ReadDir(filepath.Join(s.storage, "machines")); len(entries) != 0 {
		t.Errorf("a failed create left %d entries in the store", len(entries))
	}
}
