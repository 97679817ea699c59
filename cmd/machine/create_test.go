package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/internal/cli"
)

// TestCreateRefusesBadInputBeforeTheStore is issue 10 item 5: each bad
// value is exit status 2, and nothing exists in the store afterwards (no
// config, no key, no machine folder; no driver ran).
func TestCreateRefusesBadInputBeforeTheStore(t *testing.T) {
	const inj = "x; touch /tmp/pwned; echo x"
	ssh := []string{"-d", "ssh", "--ssh-host", "127.0.0.1", "--ssh-port", "1"}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"docker user", []string{"-d", "docker", "--docker-user", inj}, "--docker-user"},
		{"docker user ssh", append(ssh, "--docker-user", inj), "--docker-user"},
		{"engine version", []string{"--engine-version", "24.0; id"}, "--engine-version"},
		{"engine repo url", []string{"--engine-repo-url", "https://x/$(id)"}, "--engine-repo-url"},
		{"engine repo url scheme", []string{"--engine-repo-url", "file:///etc"}, "--engine-repo-url"},
		{"engine os mirror", []string{"--engine-os-mirror", "https://vault/$(id)"}, "--engine-os-mirror"},
		{"engine os mirror scheme", []string{"--engine-os-mirror", "file:///etc"}, "--engine-os-mirror"},
		{"engine install", []string{"--engine-install", "apt"}, "--engine-install"},
		{"hostname too long", []string{"--hostname", strings.Repeat("a", 64)}, "--hostname"},
		{"hostname bad", []string{"--hostname", "bad host!"}, "--hostname"},
		{"hostname injection", []string{"--hostname", inj}, "--hostname"},
		{"ssh host key", append(ssh, "--ssh-host-key", "SHA256:nope"), "--ssh-host-key"},
		{"ssh host key md5", append(ssh, "--ssh-host-key", "MD5:aa:bb"), "--ssh-host-key"},
		{"ssh user", append(ssh[:4:4], "--ssh-user", "root;id"), "--ssh-user"},
		{"ssh host", []string{"-d", "ssh", "--ssh-host", "$(id)"}, "--ssh-host"},
		{"engine label injection", []string{"--engine-label", "k=" + inj}, "--engine-label"},
		{"engine label key", []string{"--engine-label", inj + "=v"}, "--engine-label"},
		{"engine label no value", []string{"--engine-label", "novalue"}, "--engine-label"},
		{"engine label invalid utf-8", []string{"--engine-label", "k=\xff\xfe"}, "--engine-label"},
		{"engine label newline", []string{"--engine-label", "k=a\nb"}, "--engine-label"},
		{"mirror not a url", []string{"--engine-registry-mirror", "mirror.local"}, "--engine-registry-mirror"},
		{"mirror injection", []string{"--engine-registry-mirror", "https://m/" + inj}, "--engine-registry-mirror"},
		{"insecure registry", []string{"--engine-insecure-registry", "http://r:5000"}, "--engine-insecure-registry"},
		{"swarm label", []string{"--swarm-master", "--swarm-label", "k=\xff"}, "--swarm-label"},
		{"swarm availability", []string{"--swarm-master", "--swarm-availability", "off"}, "--swarm-availability"},
		{"swarm advertise", []string{"--swarm-master", "--swarm-advertise-addr", inj}, "--swarm-advertise-addr"},
		{"swarm registry image", []string{"--swarm-master", "--swarm-registry-image", inj}, "--swarm-registry-image"},
		{"swarm join name", []string{"--swarm", "--swarm-join", "../../x"}, "--swarm-join"},
		{"docker network", []string{"-d", "docker", "--docker-network", inj}, "--docker-network"},
		{"docker image", []string{"-d", "docker", "--docker-image", ""}, "--docker-image"},
		{"machine name", []string{"../../victim"}, "invalid name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			storage := filepath.Join(t.TempDir(), "store")
			args := append([]string{"--storage-path", storage, "--output", "plain", "create"}, c.args...)
			if c.name != "machine name" {
				args = append(args, "n1")
			}
			root := newRoot()
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&out)
			root.SetArgs(args)
			err := root.Execute()
			var exit *cli.ExitError
			if !errors.As(err, &exit) || exit.Code != 2 {
				t.Fatalf("create %q: err %v, want exit status 2", c.args, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not name %s", err, c.want)
			}
			if _, err := os.Stat(storage); !os.IsNotExist(err) {
				entries, _ := filepath.Glob(filepath.Join(storage, "*", "*"))
				t.Errorf("the store exists after refused input: %v", entries)
			}
		})
	}
}
