package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// StorageEnv names shoal's store. It is not docker-machine's
// MACHINE_STORAGE_PATH: shoal's layout differs, and a docker-machine user's
// variable would make shoal write into (and rm -f delete from) that store.
const StorageEnv = "SHOAL_STORAGE_PATH"

// MaxConfigSize bounds a config.json read from a store.
const MaxConfigSize = 1 << 20

// ReadRegular reads path, at most max bytes, only if it is a regular file:
// a FIFO must not block the command (O_NONBLOCK, then fstat before any
// read), a device must not feed it without end.
func ReadRegular(path string, max int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%v)", path, st.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return data, nil
}

// IsDockerMachineConfig tells a docker-machine config.json (libmachine's
// host: DriverName, HostOptions) from shoal's.
func IsDockerMachineConfig(data []byte) bool {
	var keys map[string]json.RawMessage
	if json.Unmarshal(data, &keys) != nil {
		return false
	}
	_, driver := keys["DriverName"]
	_, host := keys["HostOptions"]
	return driver && host
}

// ErrDockerMachineStore is wrapped when a store root holds docker-machine's
// machines.
var ErrDockerMachineStore = errors.New("a docker-machine store")

// dockerMachineDir tells a machine folder whose config.json is
// docker-machine's.
func dockerMachineDir(dir string) bool {
	data, err := ReadRegular(filepath.Join(dir, ConfigFile), MaxConfigSize)
	return err == nil && IsDockerMachineConfig(data)
}

// checkNotDockerMachine refuses a root that holds docker-machine's
// machines: shoal would misread them, and its rm would delete them.
func checkNotDockerMachine(root string) error {
	dir := filepath.Join(root, "machines")
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil // opening a FIFO would block; New and Load report it
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil // no machines yet (or unreadable: New and Load report it)
	}
	for _, e := range entries {
		if e.IsDir() && dockerMachineDir(filepath.Join(dir, e.Name())) {
			return fmt.Errorf("store %s is %w (machines/%s/config.json is docker-machine's): shoal keeps its own store; "+
				"bring the machines over with 'machine import --docker-machine-storage-path %s', and give shoal another store "+
				"(--storage-path or $%s)", root, ErrDockerMachineStore, e.Name(), root, StorageEnv)
		}
	}
	return nil
}
