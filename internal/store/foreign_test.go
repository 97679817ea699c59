package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dmConfig is the start of a docker-machine config.json (libmachine v3).
const dmConfig = `{"ConfigVersion":3,"Driver":{"IPAddress":"10.0.0.5","SSHUser":"root"},"DriverName":"generic","HostOptions":{"EngineOptions":{"TlsVerify":true}},"Name":"dev1"}`

func TestIsDockerMachineConfig(t *testing.T) {
	cases := map[string]bool{
		dmConfig: true,
		`{"version":1,"name":"m1","driver":"ssh","ssh":{}}`: false,
		`{"DriverName":"generic"}`:                          false,
		`not json`:                                          false,
		`[]`:                                                false,
	}
	for in, want := range cases {
		if got := IsDockerMachineConfig([]byte(in)); got != want {
			t.Errorf("IsDockerMachineConfig(%s) = %v, want %v", in, got, want)
		}
	}
}

func FuzzIsDockerMachineConfig(f *testing.F) {
	f.Add([]byte(dmConfig))
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) { IsDockerMachineConfig(data) })
}

// TestNewRefusesDockerMachineStore: a root holding docker-machine's
// machines is refused (with the import hint) by New and Open, and nothing
// is created in it.
func TestNewRefusesDockerMachineStore(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "machines", "dev1")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(dmConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, open := range map[string]func(string) (*Store, error){"New": New, "Open": Open} {
		_, err := open(root)
		if !errors.Is(err, ErrDockerMachineStore) || !strings.Contains(err.Error(), "machine import") {
			t.Errorf("%s on a docker-machine store: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "certs")); err == nil {
		t.Error("New made certs/ in docker-machine's store")
	}
	// shoal's own store opens.
	st, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Save(&Machine{Name: "m1", Driver: "ssh", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(st.Root); err != nil {
		t.Errorf("New on shoal's store: %v", err)
	}
}

// TestReadRegular: a FIFO does not block, a device does not feed without
// end, a symlink to a regular file is read.
func TestReadRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 2048), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, p := range []string{fifo, zero, big} {
			if _, err := ReadRegular(p, 1024); err == nil {
				t.Errorf("ReadRegular(%s) worked", filepath.Base(p))
			}
		}
		if data, err := ReadRegular(big, 4096); err != nil || len(data) != 2048 {
			t.Errorf("ReadRegular(big) = %d bytes, %v", len(data), err)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ReadRegular blocked")
	}
}

// TestNewMachinesFIFO: a store whose machines is a FIFO is an error, not
// a hang.
func TestNewMachinesFIFO(t *testing.T) {
	root := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(root, "machines"), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := New(root); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("New took a store whose machines is a FIFO")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("New blocks on a FIFO")
	}
}
