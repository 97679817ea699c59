package machine

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/shoal-dev/shoal/drivers/drivertest"
	"github.com/shoal-dev/shoal/internal/certs"
	"github.com/shoal-dev/shoal/internal/fsutil"
)

// TestClientCertDirIsTheMachinesFolder: DOCKER_CERT_PATH is machines/NAME,
// as docker-machine's, holding ca.pem cert.pem key.pem (the key 0600),
// kept in step with the store's when the client certificate is renewed.
func TestClientCertDirIsTheMachinesFolder(t *testing.T) {
	m, _ := fakeManager(t)
	mach, err := m.EnsureHost(context.Background(), fakeOpts("n1", drivertest.FakeConfig{}))
	if err != nil {
		t.Fatal(err)
	}
	mach.Engine.TLS = true
	if err := m.Store.Save(mach.Machine); err != nil {
		t.Fatal(err)
	}
	if _, err := m.provisionSpec(mach); err != nil {
		t.Fatal(err)
	}
	want := m.Store.MachineDir("n1")
	same := func() {
		t.Helper()
		for _, f := range []string{certs.CAFile, certs.ClientFile, certs.ClientKeyFile} {
			a, err1 := os.ReadFile(filepath.Join(m.Store.CertsDir(), f))
			b, err2 := os.ReadFile(filepath.Join(want, f))
			if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
				t.Errorf("%s: machine's copy differs from the store's (%v, %v)", f, err1, err2)
			}
		}
	}
	// provisioning alone puts the files there.
	same()
	if st, err := os.Stat(filepath.Join(want, certs.ClientKeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key.pem: %v %v, want 0600", st.Mode(), err)
	}
	// A renewed client certificate reaches the machine's folder.
	for _, f := range []string{certs.ClientFile, certs.ClientKeyFile} {
		os.Remove(filepath.Join(m.Store.CertsDir(), f))
	}
	if _, err := m.CA(); err != nil {
		t.Fatal(err)
	}
	dir, err := m.ClientCertDir(mach.Machine)
	if err != nil || dir != want {
		t.Fatalf("ClientCertDir = %q, %v; want %q", dir, err, want)
	}
	same()
	// A renewal run brings every machine's copies in step at once.
	if err := fsutil.WriteFileAtomic(filepath.Join(want, certs.ClientFile), []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.syncAllClientCerts(); err != nil {
		t.Fatal(err)
	}
	same()
	// Read-only, nothing is written and the store's current folder is said.
	fsutil.WriteFileAtomic(filepath.Join(want, certs.ClientFile), []byte("stale"), 0o644)
	m.ReadOnly = true
	if dir, err := m.ClientCertDir(mach.Machine); err != nil || dir != m.Store.CertsDir() {
		t.Errorf("read-only, stale: %q, %v", dir, err)
	}
	// An imported machine keeps its own folder.
	mach.Engine.CertDir = "/dm/machines/n1"
	if dir, _ := m.ClientCertDir(mach.Machine); dir != "/dm/machines/n1" {
		t.Errorf("imported: %q", dir)
	}
}
