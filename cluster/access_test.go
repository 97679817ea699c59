package cluster

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/cluster/clusterfile"
	"github.com/shoal-dev/shoal/drivers/all"
	sshdrv "github.com/shoal-dev/shoal/drivers/ssh"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/machine"
)

// mustLoad loads a cluster file's source and fails on any error
// diagnostic.
func mustLoad(t *testing.T, src string, opts clusterfile.Options) *Spec {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cluster.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, diags := Load(path, opts, all.Registry())
	if diags.HasErrors() {
		t.Fatalf("Load: %s", diags.Error())
	}
	return spec
}

// accessFile is clusterfile's: passwords in sensitive variables.
var accessFile = func() string {
	b, err := os.ReadFile("clusterfile/testdata/access.hcl")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

func TestSSHSecretsAndJump(t *testing.T) {
	env := map[string]string{"SHOAL_VAR_pw": "s3cret", "SHOAL_VAR_sudo_pw": "from-env"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	varFile := filepath.Join(t.TempDir(), "secrets.hcl")
	os.WriteFile(varFile, []byte(`sudo_pw = "from-file"`), 0o600)
	spec := mustLoad(t, accessFile, clusterfile.Options{Env: lookup, VarFiles: []string{varFile}})
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
