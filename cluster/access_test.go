package cluster

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sshdrv "github.com/shoal-dev/shoal/drivers/ssh"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/machine"
)

const accessFile = `
cluster "c" {}
variable "pw" { sensitive = true }
variable "sudo_pw" {
  sensitive = true
  default   = "fallback"
}
machine "edge" {
  role   = "manager"
  driver = "ssh"
  ssh {
    host          = "10.0.0.5"
    user          = "hadoop"
    password      = var.pw
    sudo_password = var.sudo_pw
    proxy_jump    = "ops@bastion:2200"
  }
  advertise_addr = "192.168.56.10"
}
`

func TestSSHSecretsAndJump(t *testing.T) {
	env := map[string]string{"SHOAL_VAR_pw": "s3cret", "SHOAL_VAR_sudo_pw": "from-env"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	varFile := filepath.Join(t.TempDir(), "secrets.hcl")
	os.WriteFile(varFile, []byte(`sudo_pw = "from-file"`), 0o600)
	spec := mustLoad(t, accessFile, Options{Env: lookup, VarFiles: []string{varFile}})
	m := spec.Machines[0]
	cfg := m.DriverConfig.(*sshdrv.Config)
	// --var-file wins over the environment, as in Terraform.
	if cfg.Password != "s3cret" || cfg.SudoPassword != "from-file" || cfg.ProxyJump != "ops@bastion:2200" {
		t.Fatalf("config: %+v", cfg)
	}
	if m.AdvertiseAddr != "192.168.56.10" {
		t.Fatalf("advertise_addr: %q", m.AdvertiseAddr)
	}
	raw, _ := json.Marshal(cfg)
	if strings.Contains(string(raw), "s3cret") || strings.Contains(string(raw), "from-file") {
		t.Fatalf("a password would be stored: %s", raw)
	}
	if len(spec.Sensitive) != 2 {
		t.Fatalf("sensitive values: %d", len(spec.Sensitive))
	}
	c := &Converger{Machines: &machine.Manager{Redactor: &sshrun.Redactor{}}}
	c.UseSecrets(spec)
	if s := c.Machines.MachineSecrets["edge"]; string(s.Password) != "s3cret" || string(s.SudoPassword) != "from-file" {
		t.Fatalf("secrets: %+v", s)
	}
	if got := c.Machines.Redactor.Redact("pw s3cret and from-file"); strings.Contains(got, "s3cret") || strings.Contains(got, "from-file") {
		t.Fatalf("not redacted: %s", got)
	}
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
