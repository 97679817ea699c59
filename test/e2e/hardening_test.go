package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHardeningFileShapes (issue 10): one `cluster up` of three adopted
// hosts. hp-a has a daemon.json, an /etc/hosts and the docker user's
// authorized_keys without a final newline: it provisions, and every byte it
// had is still there. hp-b's daemon.json holds `null`, hp-c's `{"a":1}}`:
// each fails alone with an error naming the file, and the file is
// unchanged. The run exits 1 (a host failed), not 2 (a crash).
func TestHardeningFileShapes(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	s := newShoal(t)
	priv, pub := userKey(t)
	const network = "shoal-lab-hp"
	t.Cleanup(func() { run(t, time.Minute, "docker", "network", "rm", network) })
	names := []string{"hp-a", "hp-b", "hp-c"}
	ips := map[string]string{}
	for _, n := range names {
		ips[n] = labHost(t, "e2e-"+n, hostOpts{user: "tester", pubkey: pub, network: network})
	}
	sh := func(host, script string) string {
		t.Helper()
		r := dockerExec(t, "e2e-"+host, "sh", "-c", script)
		if r.code != 0 {
			t.Fatalf("%s: %s: %s", host, script, r)
		}
		return r.stdout
	}
	const keys = `"$(getent passwd tester | cut -d: -f6)/.ssh/authorized_keys"`
	// hp-a: the three files end without a newline. dockerd keeps running
	// with its old settings until shoal restarts it.
	sh("hp-a", `printf '{"log-level": "warn"}' > /etc/docker/daemon.json`)
	sh("hp-a", `printf '192.0.2.7\tkeep-me' >> /etc/hosts`)
	sh("hp-a", `k=$(cat `+keys+`) && printf '%s' "$k" > `+keys)
	hostsA := sh("hp-a", "cat /etc/hosts")
	keysA := sh("hp-a", "cat "+keys)
	if strings.HasSuffix(hostsA, "\n") || strings.HasSuffix(keysA, "\n") {
		t.Fatalf("setup: the files still end in a newline")
	}
	badB, badC := "null", `{"a":1}}`
	sh("hp-b", "printf '%s' '"+badB+"' > /etc/docker/daemon.json")
	sh("hp-c", "printf '%s' '"+badC+"' > /etc/docker/daemon.json")

	var b strings.Builder
	fmt.Fprintf(&b, "cluster \"hp\" {}\n\ndefaults {\n  driver = \"ssh\"\n  ssh {\n    user = \"tester\"\n    key  = %q\n  }\n  engine {\n    labels = [\"hardening=1\"]\n  }\n}\n\n", priv)
	for i, n := range names {
		role := "worker"
		if i == 0 {
			role = "manager"
		}
		fmt.Fprintf(&b, "machine %q {\n  role = %q\n  ssh { host = %q }\n}\n\n", n, role, ips[n])
	}
	b.WriteString("registry {\n  enabled = false\n}\n")
	file := filepath.Join(t.TempDir(), "hp.hcl")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	r := s.cluster("up", file)
	t.Logf("cluster up: %s", r)
	if r.code != 1 {
		t.Fatalf("want exit status 1 (hosts failed), got %d", r.code)
	}
	out := r.stdout + r.stderr
	if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
		t.Errorf("the run panicked")
	}
	// Each bad host's error names the host, the file and what is wrong.
	_, errText, _ := strings.Cut(r.stderr, "Error: ")
	for host, says := range map[string]string{"hp-b": "holds null", "hp-c": "trailing data"} {
		found := false
		for _, l := range strings.Split(errText, "\n") {
			if strings.HasPrefix(l, host+": ") && strings.Contains(l, "/etc/docker/daemon.json") && strings.Contains(l, says) {
				found = true
			}
		}
		if !found {
			t.Errorf("no error line naming %s, /etc/docker/daemon.json and %q:\n%s", host, says, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "hp-a:") {
		t.Errorf("hp-a failed too:\n%s", r.stderr)
	}

	// hp-b and hp-c: the file byte for byte, nothing else changed.
	for host, want := range map[string]string{"hp-b": badB, "hp-c": badC} {
		if got := sh(host, "cat /etc/docker/daemon.json"); got != want {
			t.Errorf("%s: daemon.json changed to %q", host, got)
		}
		if got := sh(host, "ls /etc/docker/"); strings.Contains(got, "shoal") {
			t.Errorf("%s: shoal wrote to /etc/docker although it refused the host: %s", host, got)
		}
		if got := strings.TrimSpace(sh(host, "hostname")); got != "e2e-"+host {
			t.Errorf("%s: hostname changed to %q although the host was refused", host, got)
		}
	}

	// hp-a: provisioned, with every old byte in place.
	var dj map[string]any
	mustJSON(t, sh("hp-a", "cat /etc/docker/daemon.json"), &dj)
	if dj["log-level"] != "warn" {
		t.Errorf("hp-a: the host's own log-level was lost: %v", dj)
	}
	if labels, _ := json.Marshal(dj["labels"]); !strings.Contains(string(labels), "hardening=1") {
		t.Errorf("hp-a: daemon.json was not merged: %v", dj)
	}
	if got := sh("hp-a", "cat /etc/docker/daemon.json.shoal-orig"); got != `{"log-level": "warn"}` {
		t.Errorf("hp-a: the original daemon.json was not kept as it was: %q", got)
	}
	hosts := sh("hp-a", "cat /etc/hosts")
	if strings.Contains(hosts, "@@") {
		t.Errorf("hp-a: a probe marker got into /etc/hosts:\n%s", hosts)
	}
	lines := strings.Split(hosts, "\n")
	i := 0
	for _, want := range strings.Split(hostsA, "\n") {
		for i < len(lines) && lines[i] != want {
			i++
		}
		if i == len(lines) {
			t.Errorf("hp-a: /etc/hosts lost the line %q:\n%s", want, hosts)
			break
		}
	}
	if !strings.Contains(hosts, "\n192.0.2.7\tkeep-me\n") {
		t.Errorf("hp-a: the last line without a newline is not a line of its own:\n%s", hosts)
	}
	for _, n := range names {
		if !strings.Contains(hosts, ips[n]+"\t"+n) {
			t.Errorf("hp-a: /etc/hosts does not name %s:\n%s", n, hosts)
		}
	}
	ak := sh("hp-a", "cat "+keys)
	if !strings.HasPrefix(ak, keysA+"\n") || !strings.Contains(ak, " shoal-cluster-hp\n") {
		t.Errorf("hp-a: authorized_keys: the old key must stay as it was and the cluster key follow on its own line:\n%q", ak)
	}
	if got := strings.TrimSpace(sh("hp-a", "systemctl is-active docker")); got != "active" {
		t.Errorf("hp-a: docker is %q", got)
	}
	if got := sh("hp-a", "test -s /etc/systemd/system/docker.service.d/shoal.conf && docker info --format '{{.Labels}}'"); !strings.Contains(got, "hardening=1") {
		t.Errorf("hp-a: dockerd does not run with the merged settings: %q", got)
	}
	// The old key still logs in.
	if got := s.sshOut("hp-a", "hostname"); got != "hp-a" {
		t.Errorf("hp-a: hostname %q", got)
	}

	// With hp-b and hp-c fixed the same file converges; down --purge then
	// takes out exactly what shoal added on hp-a, every other byte kept.
	sh("hp-b", "printf '{}' > /etc/docker/daemon.json")
	sh("hp-c", "printf '{}' > /etc/docker/daemon.json")
	if r := s.cluster("up", file); r.code != 0 {
		t.Fatalf("cluster up after the fix: %s", r)
	}
	if r := s.cluster("down", "--purge", file); r.code != 0 {
		t.Fatalf("cluster down --purge: %s", r)
	}
	hosts = sh("hp-a", "cat /etc/hosts")
	if strings.Contains(hosts, "BEGIN shoal") || !strings.Contains(hosts, "\n192.0.2.7\tkeep-me\n") {
		t.Errorf("hp-a: /etc/hosts after purge:\n%s", hosts)
	}
	if got := sh("hp-a", "cat "+keys); got != keysA+"\n" {
		t.Errorf("hp-a: authorized_keys after purge: %q, want the old key alone %q", got, keysA+"\n")
	}
	if got := sh("hp-a", "cat /etc/docker/daemon.json; ls /etc/docker /tmp"); !strings.HasPrefix(got, `{"log-level": "warn"}`) || strings.Contains(got, "shoal") {
		t.Errorf("hp-a: after purge daemon.json should be the original, no shoal files left in /etc/docker or /tmp:\n%s", got)
	}
}
