package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestTakeOverDockerMachineEngine (issue 27): a host whose dockerd runs
// from docker-machine's drop-in (10-machine.conf: its own ExecStart with
// -H unix://, --storage-driver, --label; the TLS flags left out here, the
// lab has no docker-machine certificates) is adopted: shoal's TLS drop-in
// keeps what dockerd was started with, so the storage driver (a different
// one hides every image and container), the labels and the local socket
// are what they were. Lab container e2e-dm1, network shoal-lab-dm.
func TestTakeOverDockerMachineEngine(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	priv, pub := userKey(t)
	ip := labHost(t, "e2e-dm1", hostOpts{user: "tester", pubkey: pub, network: "shoal-lab-dm"})
	const dropIn = "[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd -H unix:///var/run/docker.sock --storage-driver vfs --label provider=generic --log-opt=max-size=10m \nEnvironment=\n"
	if r := dockerExec(t, "e2e-dm1", "sh", "-c", "mkdir -p /etc/systemd/system/docker.service.d && printf '%s' "+shellQuote(dropIn)+
		" > /etc/systemd/system/docker.service.d/10-machine.conf && systemctl daemon-reload && systemctl restart docker"); r.code != 0 {
		t.Fatalf("docker-machine's drop-in: %s", r)
	}
	info := func(when string) string {
		t.Helper()
		// The host's local socket, as its users and cron jobs reach it.
		var r result
		deadline := time.Now().Add(time.Minute)
		for r = dockerExec(t, "e2e-dm1", "docker", "info", "--format", "{{.Driver}} {{json .Labels}}"); r.code != 0; r = dockerExec(t, "e2e-dm1", "docker", "info", "--format", "{{.Driver}} {{json .Labels}}") {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the local Docker socket does not answer: %s", when, r)
			}
			time.Sleep(time.Second)
		}
		return strings.TrimSpace(r.stdout)
	}
	before := info("before")
	if !strings.HasPrefix(before, "vfs ") || !strings.Contains(before, "provider=generic") {
		t.Fatalf("the docker-machine engine is not set up: %s", before)
	}
	pid := strings.TrimSpace(dockerExec(t, "e2e-dm1", "systemctl", "show", "-p", "MainPID", "--value", "docker").stdout)

	s.mustMachine("create", "-d", "ssh", "--ssh-host", ip, "--ssh-user", "tester", "--ssh-key", priv, "dm1")
	if now := strings.TrimSpace(dockerExec(t, "e2e-dm1", "systemctl", "show", "-p", "MainPID", "--value", "docker").stdout); now == pid {
		t.Fatalf("dockerd was not restarted (pid %s): the test shows nothing", pid)
	}
	if after := info("after create"); after != before {
		t.Errorf("the engine changed: %q, was %q", after, before)
	}
	// And the engine answers on its TLS port through shoal's certificates.
	if got := s.sshOut("dm1", "docker", "info", "--format", "'{{.Driver}}'"); got != "vfs" {
		t.Errorf("machine ssh dm1 docker info: %q", got)
	}
	dropin := dockerExec(t, "e2e-dm1", "cat", "/etc/systemd/system/docker.service.d/shoal.conf").stdout
	if !strings.Contains(dropin, "--storage-driver vfs") || !strings.Contains(dropin, "-H tcp://0.0.0.0:2376") {
		t.Errorf("shoal's drop-in:\n%s", dropin)
	}
	if r := s.machine("env", "dm1"); r.code != 0 || !strings.Contains(r.stdout, "2376") {
		t.Errorf("machine env dm1: %s", r)
	}

	// docker-machine's drop-in removed, shoal's follows the unit's own
	// -H fd://: the socket moves to docker.socket's, which must be
	// listening on the path the old dockerd unlinked.
	if r := dockerExec(t, "e2e-dm1", "rm", "/etc/systemd/system/docker.service.d/10-machine.conf"); r.code != 0 {
		t.Fatalf("rm 10-machine.conf: %s", r)
	}
	s.mustMachine("provision", "dm1")
	if got := dockerExec(t, "e2e-dm1", "cat", "/etc/systemd/system/docker.service.d/shoal.conf").stdout; !strings.Contains(got, "-H fd://") {
		t.Errorf("shoal's drop-in after the move:\n%s", got)
	}
	if after := info("after the socket moved"); strings.HasPrefix(after, "vfs ") {
		t.Errorf("still docker-machine's engine: %s", after)
	}
}
