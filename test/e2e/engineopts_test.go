package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEngineOptsDockerMachineStyle is issue 27 item 7, against the lab's
// real dockerd (Debian's docker.io 20.10, which has no --validate): the
// --engine-opt values docker-machine users write become daemon.json keys
// dockerd takes; a key dockerd cannot know is refused before anything is
// touched; a key this dockerd does not know (cdi-spec-dirs came with 25)
// makes it fail to start, and it gets the host's old file back and runs
// again. dockerd runs after each. Lab container e2e-eo1, network
// shoal-lab-eo.
func TestEngineOptsDockerMachineStyle(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	priv, pub := userKey(t)
	const own = "{\n  \"log-level\": \"info\"\n}\n"
	djson := filepath.Join(t.TempDir(), "daemon.json")
	if err := os.WriteFile(djson, []byte(own), 0o644); err != nil {
		t.Fatal(err)
	}
	ip := labHost(t, "e2e-eo1", hostOpts{user: "tester", pubkey: pub, daemonJSON: djson, network: "shoal-lab-eo"})
	ssh := []string{"create", "-d", "ssh", "--ssh-host", ip, "--ssh-user", "tester", "--ssh-key", priv}
	active := func(when string) string {
		t.Helper()
		if got := strings.TrimSpace(dockerExec(t, "e2e-eo1", "systemctl", "is-active", "docker").stdout); got != "active" {
			t.Fatalf("%s: dockerd is %q", when, got)
		}
		return strings.TrimSpace(dockerExec(t, "e2e-eo1", "systemctl", "show", "-p", "MainPID", "--value", "docker").stdout)
	}
	readJSON := func() string { return dockerExec(t, "e2e-eo1", "cat", "/etc/docker/daemon.json").stdout }

	// docker-machine's way: dockerd's flags without their dashes.
	s.mustMachine(append(ssh, "--engine-opt", "log-opt=max-size=10m", "--engine-opt", "default-ulimit=nofile=1024:2048",
		"--engine-opt", "label=e2e.eo=one", "eo1")...)
	pid := active("after create")
	var dj struct {
		LogLevel       string                    `json:"log-level"`
		LogOpts        map[string]string         `json:"log-opts"`
		DefaultUlimits map[string]map[string]any `json:"default-ulimits"`
		Labels         []string                  `json:"labels"`
	}
	text := readJSON()
	mustJSON(t, text, &dj)
	if dj.LogLevel != "info" || dj.LogOpts["max-size"] != "10m" || dj.DefaultUlimits["nofile"]["Soft"] != 1024.0 ||
		dj.DefaultUlimits["nofile"]["Hard"] != 2048.0 || strings.Join(dj.Labels, ",") != "e2e.eo=one" {
		t.Errorf("daemon.json:\n%s", text)
	}
	// The running dockerd took them.
	if got := s.sshOut("eo1", "docker", "info", "--format", "'{{json .Labels}}'"); !strings.Contains(got, "e2e.eo=one") {
		t.Errorf("docker info's labels: %s", got)
	}
	for _, f := range []string{"log-opt-max-size=10m", "ulimit=nofile=1024"} {
		// A key dockerd does not have: refused as bad input, before the
		// store or the host is touched.
		r := s.machine(append(ssh, "--engine-opt", f, "eo2")...)
		if r.code != 2 || !strings.Contains(r.stderr, "--engine-opt") || !strings.Contains(r.stderr, strings.Split(f, "=")[0]) {
			t.Errorf("--engine-opt %s: want exit 2 naming it, got %s", f, r)
		}
		if got := readJSON(); got != text {
			t.Errorf("--engine-opt %s: daemon.json changed:\n%s", f, got)
		}
		if now := active("after --engine-opt " + f); now != pid {
			t.Errorf("--engine-opt %s: dockerd restarted (pid %s -> %s)", f, pid, now)
		}
	}

	// A key of a newer dockerd than the host's: this one has no --validate
	// and does not start with it; the file it had comes back, and dockerd
	// with it.
	s.mustMachine("rm", "-y", "eo1")
	r := s.machine(append(ssh, "--engine-opt", "cdi-spec-dir=/etc/cdi", "eo3")...)
	t.Logf("the error: %s", r.stderr)
	if r.code != 1 || !strings.Contains(r.stderr, "put back") || !strings.Contains(r.stderr, "cdi-spec-dirs") {
		t.Errorf("cdi-spec-dir on docker.io 20.10: want exit 1 saying daemon.json was put back, with dockerd's words on cdi-spec-dirs; got %s", r)
	}
	if got := readJSON(); got != text {
		t.Errorf("daemon.json after the failed start, want the one before:\n%s", got)
	}
	active("after the failed start")
	// And it answers: the restored dockerd is a working one.
	deadline := time.Now().Add(time.Minute)
	for dockerExec(t, "e2e-eo1", "docker", "info").code != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("docker info does not answer after the restore")
		}
		time.Sleep(time.Second)
	}
}
