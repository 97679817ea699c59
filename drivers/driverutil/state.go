package driverutil

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/shoal-dev/shoal/internal/fsutil"
)

// A driver keeps what it made in a state file in the machine's folder:
// JSON with a "version" of its layout, so that rm removes exactly that.

// LoadState reads the state file at path into v (a pointer); found is false
// when there is none. A file of a newer version than known is an error:
// this shoal would misread it.
func LoadState(path string, known int, v any) (found bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var head struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	if head.Version > known {
		return false, fmt.Errorf("%s: version %d is newer than this shoal knows (%d)", path, head.Version, known)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return true, nil
}

// SaveState writes v to path as indented JSON, atomically, 0600.
func SaveState(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return fsutil.WriteFileAtomic(path, append(data, '\n'), 0o600)
}
