package e2e

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAccessEnvThroughJumpHost: a host that accepts nothing but SSH, and
// SSH only from a jump host (its engine port closed to the outside too),
// adopted through the jump host. With 'machine tunnel' running, the docker
// CLI given 'machine env' runs docker info and docker ps on it, over TLS;
// when the tunnel ends, its record goes and env points at the engine's own
// address again, with a note on stderr. Lab containers e2e-tn-*, network
// shoal-lab-tn.
func TestAccessEnvThroughJumpHost(t *testing.T) {
	requireE2E(t)
	s := newShoal(t)
	priv, pub := userKey(t)
	net1 := "shoal-lab-tn"
	jumpIP := acHost(t, "e2e-tn-jump", net1, "--image", "shoal-lab/base:bookworm", "--user", "ops", "--pubkey", pub)
	ip := acHost(t, "e2e-tn-t1", net1, "--user", "deploy", "--pubkey", pub, "--only-from", jumpIP)
	s.mustMachine("create", "-d", "ssh", "--ssh-host", ip, "--ssh-user", "deploy", "--ssh-key", priv,
		"--ssh-proxy-jump", "ops@"+jumpIP, "tn1")
	// Nothing but SSH from the jump host: the engine's port is closed to
	// all but the host itself.
	if r := dockerExec(t, "e2e-tn-t1", "iptables", "-I", "INPUT", "-p", "tcp", "--dport", "2376", "!", "-i", "lo", "-j", "DROP"); r.code != 0 {
		t.Fatalf("closing the engine port: %s", r)
	}
	for _, port := range []string{"22", "2376"} {
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, port), 3*time.Second); err == nil {
			c.Close()
			t.Fatalf("t1 answers on port %s from here: the test would prove nothing", port)
		}
	}

	tunnel := exec.Command(bin("machine"), "--storage-path", s.storage, "--output", "plain", "tunnel", "tn1")
	var tunErr bytes.Buffer
	tunnel.Stderr = &tunErr
	if err := tunnel.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tunnel.Process.Kill(); tunnel.Wait() })
	record := filepath.Join(s.storage, "machines", "tn1", "tunnel.json")
	if msg := waitFor(30*time.Second, func() string {
		if _, err := os.Stat(record); err != nil {
			return "no tunnel record: " + err.Error() + "\n" + tunErr.String()
		}
		return ""
	}); msg != "" {
		t.Fatal(msg)
	}
	env := s.mustMachine("env", "--shell", "bash", "tn1")
	if !strings.Contains(env, `DOCKER_HOST="tcp://127.0.0.1:`) || !strings.Contains(env, `DOCKER_TLS_VERIFY="1"`) {
		t.Fatalf("machine env with the tunnel running:\n%s", env)
	}
	info := s.dockerEnv("tn1", "info", "--format", "{{.Name}}")
	if info.code != 0 || strings.TrimSpace(info.stdout) != "tn1" {
		t.Fatalf("docker info through the tunnel: %s", info)
	}
	if ps := s.dockerEnv("tn1", "ps", "-a", "--format", "{{.ID}}"); ps.code != 0 {
		t.Fatalf("docker ps through the tunnel: %s", ps)
	}

	// A second tunnel for the same machine is refused.
	if r := s.machine("tunnel", "tn1"); r.code == 0 || !strings.Contains(r.stderr, "a tunnel runs already") {
		t.Errorf("a second tunnel: %s", r)
	}
	tunnel.Process.Signal(syscall.SIGINT)
	if err := tunnel.Wait(); err != nil {
		t.Errorf("the tunnel ended with %v: %s", err, tunErr.String())
	}
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Errorf("the tunnel record stays after the tunnel: %v", err)
	}
	r := s.machine("env", "--shell", "bash", "tn1")
	if r.code != 0 || !strings.Contains(r.stdout, "tcp://"+ip+":2376") || !strings.Contains(r.stderr, "machine tunnel tn1") {
		t.Errorf("env without the tunnel: %s", r)
	}
}
