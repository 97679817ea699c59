package clusterfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	sshdrv "github.com/shoal-dev/shoal/drivers/ssh"
)

// accessFile is a cluster file that adopts a host over SSH with its
// passwords in sensitive variables (cluster's tests read it too).
var accessFile = mustRead("testdata/access.hcl")

func mustRead(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestAccessFieldsChecked(t *testing.T) {
	for _, tc := range []struct{ old, new, summary string }{
		{`proxy_jump    = "ops@bastion:2200"`, `proxy_jump = "ops@bastion;reboot"`, "Invalid ssh settings"},
		{`proxy_jump    = "ops@bastion:2200"`, `jump_host_key = "SHA256:nope"`, "Invalid ssh settings"},
		{`advertise_addr = "192.168.56.10"`, `advertise_addr = "eth1"`, "Invalid advertise_addr"},
		{`proxy_jump    = "ops@bastion:2200"`, `ssh_config = "/nonexistent/config"`, "Invalid ssh_config"},
	} {
		src := strings.Replace(accessFile, tc.old, tc.new, 1)
		wantError(t, src, Options{Vars: []string{"pw=x"}}, tc.summary)
	}
}

func TestSSHConfigAliasInFile(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "config")
	key := filepath.Join(dir, "id")
	os.WriteFile(key, []byte("k"), 0o600)
	os.WriteFile(conf, []byte("Host web\n  HostName 10.1.2.3\n  User deploy\n  Port 2222\n  IdentityFile "+key+"\n  ProxyJump jump\n"), 0o600)
	src := `
cluster "c" {}
machine "web" {
  role   = "manager"
  driver = "ssh"
  ssh {
    host       = "web"
    port       = 2200
    ssh_config = "` + conf + `"
  }
}
`
	spec := mustLoad(t, src, Options{})
	cfg := spec.Machines[0].DriverConfig.(*sshdrv.Config)
	// port is in the file: it wins over ssh_config.
	if cfg.Host != "10.1.2.3" || cfg.Alias != "web" || cfg.User != "deploy" || cfg.Port != 2200 || cfg.Key != key || cfg.ProxyJump != "jump:22" {
		t.Fatalf("resolved: %+v", cfg)
	}
}

func TestPasswordWarnings(t *testing.T) {
	src := strings.Replace(accessFile, "password      = var.pw", `password      = "literal"`, 1)
	src = strings.Replace(src, `variable "sudo_pw" {
  sensitive = true`, `variable "sudo_pw" {`, 1)
	spec := mustLoad(t, src, Options{Vars: []string{"pw=x"}})
	var got []string
	for _, d := range spec.Warnings {
		got = append(got, d.Summary)
	}
	if strings.Join(got, "|") != "Password in the file|Password in a variable that is not sensitive" {
		t.Fatalf("warnings: %q", got)
	}
	if spec := mustLoad(t, accessFile, Options{Vars: []string{"pw=x"}}); len(spec.Warnings) != 0 {
		t.Fatalf("sensitive variables: no warning, got %v", spec.Warnings)
	}
}

// TestPasswordWarningHidesThePassword: the warning of a password written in
// the file shows where it is, not what it is.
func TestPasswordWarningHidesThePassword(t *testing.T) {
	src := strings.Replace(accessFile, "password      = var.pw", `password      = "hunter2-literal"`, 1)
	spec := mustLoad(t, src, Options{Vars: []string{"pw=x"}})
	var buf strings.Builder
	FormatDiagnostics(&buf, spec.Warnings, spec.Files)
	out := buf.String()
	if strings.Contains(out, "hunter2") {
		t.Fatalf("the warning shows the password:\n%s", out)
	}
	if !strings.Contains(out, "Password in the file") || !strings.Contains(out, "    14 |     password      = …\n") {
		t.Fatalf("want the warning and its line with the value masked, got:\n%s", out)
	}
}
