package dmimport

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/shoal-dev/shoal/drivers"
	sshdriver "github.com/shoal-dev/shoal/drivers/ssh"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/machine"
)

// TestImportGeneric: a generic machine becomes an ssh machine with its key
// and the engine's client certificates copied (private ones 0600), the
// host key pinned; a folder already in shoal's store is refused and left.
func TestImportGeneric(t *testing.T) {
	dm := t.TempDir()
	writeDM(t, dm, "gen", map[string]any{"ConfigVersion": 3, "DriverName": "generic", "Name": "gen",
		"Driver":      map[string]any{"IPAddress": "10.0.0.5", "SSHUser": "ubuntu", "SSHPort": 2222},
		"HostOptions": map[string]any{"EngineOptions": map[string]any{"TlsVerify": true}}}, "ca.pem", "cert.pem", "key.pem", "id_rsa")
	plans, err := PlanStore(dm, nil, func(string) bool { return false })
	if err != nil || len(plans) != 1 || plans[0].Driver != "ssh" {
		t.Fatalf("plans %+v, %v", plans, err)
	}
	p := plans[0]
	p.Fingerprint = "SHA256:test"
	st, err := store.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := machine.NewManager(st, drivers.NewRegistry(sshdriver.Spec()))
	if err := Import(context.Background(), m, p); err != nil {
		t.Fatal(err)
	}
	mach, err := st.Load("gen")
	if err != nil {
		t.Fatal(err)
	}
	var cfg sshdriver.Config
	if err := json.Unmarshal(mach.DriverConfig, &cfg); err != nil {
		t.Fatal(err)
	}
	own := filepath.Join(st.MachineDir("gen"), "docker-machine")
	if mach.Driver != "ssh" || mach.Address != "10.0.0.5" || mach.Engine.CertDir != own || mach.Engine.TLSPort != 2376 ||
		mach.SSH.Host != "10.0.0.5" || mach.SSH.Port != 2222 || mach.SSH.User != "ubuntu" || mach.SSH.HostKeyFingerprint != "SHA256:test" ||
		cfg.Key != filepath.Join(own, "id_rsa") || cfg.HostKey != "SHA256:test" {
		t.Errorf("imported %+v, driver config %+v", mach, cfg)
	}
	for f, mode := range map[string]os.FileMode{"ca.pem": 0o644, "cert.pem": 0o644, "key.pem": 0o600, "id_rsa": 0o600} {
		if fi, err := os.Stat(filepath.Join(own, f)); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, %v; want mode %v", f, fi, err, mode)
		}
	}
	if err := Import(context.Background(), m, p); err == nil {
		t.Error("a machine already in shoal's store was imported again")
	}
	if _, err := st.Load("gen"); err != nil {
		t.Errorf("the refused import touched the machine already there: %v", err)
	}
}
