package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestValidationRefusesInjection is issue 10's "must show": the root shell
// injection, and the same kind of value in every other field that reaches
// a host, is refused when the file or the command line is read: exit
// status 2, a FILE:LINE diagnostic for a cluster file, and nothing in the
// store, no container, no command run. No lab host is needed: validation
// fails before any host is touched (the ssh cases point at a closed
// loopback port, the docker cases at names with this test's prefix).
func TestValidationRefusesInjection(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	marker := filepath.Join(os.TempDir(), fmt.Sprintf("e2e-hi-pwned-%d", time.Now().UnixNano()))
	inj := "x; touch " + marker + "; echo x"
	t.Cleanup(func() {
		// Only if validation let something through: never leave it behind.
		run(t, time.Minute, "docker", "rm", "-f", "e2e-hi-m", "e2e-hi-n1")
		run(t, time.Minute, "docker", "network", "rm", "shoal-lab-hi")
		os.Remove(marker)
	})

	const head = `cluster "e2e-hi" {}

machine "e2e-hi-m" {
  role = "manager"
  docker {
    container = "e2e-hi-m"
    network   = "shoal-lab-hi"
  }
`
	sshHead := `cluster "e2e-hi" {}

machine "e2e-hi-m" {
  role   = "manager"
  driver = "ssh"
  ssh {
    host = "127.0.0.1"
    port = 1
`
	cases := []struct {
		name, src string
		line      int
	}{
		{"docker_user", head + "  docker_user = \"" + inj + "\"\n}\n", 9},
		{"hostname", head + "  hostname = \"" + inj + "\"\n}\n", 3},
		{"hostname over 253", head + "  hostname = \"" + strings.Repeat("abcdefgh.", 30) + "x\"\n}\n", 3},
		{"engine version", head + "  engine {\n    version = \"" + inj + "\"\n  }\n}\n", 10},
		{"engine repo_url", head + "  engine {\n    repo_url = \"https://x/" + inj + "\"\n  }\n}\n", 10},
		{"engine install", head + "  engine {\n    install = \"" + inj + "\"\n  }\n}\n", 10},
		{"engine mirror", head + "  engine {\n    registry_mirrors = [\"" + inj + "\"]\n  }\n}\n", 10},
		{"engine insecure registry", head + "  engine {\n    insecure_registries = [\"" + inj + "\"]\n  }\n}\n", 10},
		{"engine label", head + "  engine {\n    labels = [\"k=" + inj + "\"]\n  }\n}\n", 10},
		{"node label key", head + "  labels = { \"" + inj + "\" = \"v\" }\n}\n", 3},
		{"node label value", head + "  labels = { zone = \"" + inj + "\" }\n}\n", 9},
		{"availability", head + "  availability = \"" + inj + "\"\n}\n", 9},
		{"ssh user", sshHead + "    user = \"" + inj + "\"\n  }\n}\n", 9},
		{"ssh host key", sshHead + "    host_key = \"SHA256:" + inj + "\"\n  }\n}\n", 9},
		{"ssh host", strings.Replace(sshHead, `"127.0.0.1"`, `"`+inj+`"`, 1) + "  }\n}\n", 3},
		{"registry path", head + "}\nregistry {\n  path = \"/var/" + inj + "\"\n}\n", 11},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newShoal(t)
			file := filepath.Join(t.TempDir(), "bad.hcl")
			if err := os.WriteFile(file, []byte(c.src), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, verb := range []string{"validate", "plan", "up", "down"} {
				r := s.cluster(verb, file)
				if r.code != 2 {
					t.Errorf("cluster %s: exit %d, want 2\n%s", verb, r.code, r)
				}
				if at := fmt.Sprintf("%s:%d,", file, c.line); !strings.Contains(r.stderr, at) {
					t.Errorf("cluster %s: no diagnostic at %s:\n%s", verb, at, r.stderr)
				}
			}
			wantEmptyStore(t, s)
		})
	}

	t.Run("down of a name outside the store", func(t *testing.T) {
		s := newShoal(t)
		victim := filepath.Join(filepath.Dir(s.storage), "victim")
		if err := os.MkdirAll(victim, 0o755); err != nil {
			t.Fatal(err)
		}
		if r := s.cluster("down", "--purge", "../../victim"); r.code != 2 {
			t.Errorf("cluster down ../../victim: exit %d, want 2\n%s", r.code, r)
		}
		if _, err := os.Stat(victim); err != nil {
			t.Errorf("the folder outside the store is gone: %v", err)
		}
		wantEmptyStore(t, s)
	})

	docker := []string{"-d", "docker", "--docker-network", "shoal-lab-hi"}
	ssh := []string{"-d", "ssh", "--ssh-host", "127.0.0.1", "--ssh-port", "1"}
	flags := []struct {
		name string
		args []string
	}{
		{"docker-user", append(docker, "--docker-user", inj)},
		{"hostname", append(docker, "--hostname", inj)},
		{"hostname 64", append(docker, "--hostname", strings.Repeat("a", 64))},
		{"hostname bad", append(docker, "--hostname", "bad host!")},
		{"engine-version", append(docker, "--engine-version", inj)},
		{"engine-repo-url", append(docker, "--engine-repo-url", "https://x/"+inj)},
		{"engine-install", append(docker, "--engine-install", inj)},
		{"engine-label", append(docker, "--engine-label", "k="+inj)},
		{"engine-label utf-8", append(docker, "--engine-label", "k=\xff\xfe")},
		{"engine-registry-mirror", append(docker, "--engine-registry-mirror", inj)},
		{"engine-insecure-registry", append(docker, "--engine-insecure-registry", inj)},
		{"swarm-label", append(docker, "--swarm-master", "--swarm-label", "k="+inj)},
		{"docker-network", []string{"-d", "docker", "--docker-network", inj}},
		{"ssh docker-user", append(ssh, "--docker-user", inj)},
		{"ssh-user", append(ssh, "--ssh-user", inj)},
		{"ssh-user ;", append(ssh, "--ssh-user", "root;id")},
		{"ssh-host", []string{"-d", "ssh", "--ssh-host", inj}},
		{"ssh-host-key", append(ssh, "--ssh-host-key", "SHA256:"+inj)},
		{"ssh-host-key md5", append(ssh, "--ssh-host-key", "MD5:00:11:22")},
	}
	for _, f := range flags {
		t.Run("machine create "+f.name, func(t *testing.T) {
			s := newShoal(t)
			r := s.machine(append(append([]string{"create"}, f.args...), "e2e-hi-n1")...)
			if r.code != 2 {
				t.Errorf("exit %d, want 2\n%s", r.code, r)
			}
			if !strings.Contains(r.stderr, "--") {
				t.Errorf("the error names no flag:\n%s", r.stderr)
			}
			wantEmptyStore(t, s)
			if got := strings.TrimSpace(s.mustMachine("ls", "-q")); got != "" {
				t.Errorf("machine ls after a refused create: %q", got)
			}
		})
	}

	if _, err := os.Stat(marker); err == nil {
		t.Errorf("%s exists: the injection ran", marker)
	}
	if r := run(t, time.Minute, "docker", "ps", "-aq", "--filter", "name=e2e-hi-"); strings.TrimSpace(r.stdout) != "" {
		t.Errorf("refused input made a container: %s", r.stdout)
	}
}

// wantEmptyStore fails unless refused input left no file in the store: no
// config, key, certificate or cluster state.
func wantEmptyStore(t *testing.T, s *shoal) {
	t.Helper()
	if files := storageFiles(t, s.storage); len(files) != 0 {
		var names []string
		for p := range files {
			names = append(names, p)
		}
		t.Errorf("refused input left files in the store: %v", names)
	}
}
