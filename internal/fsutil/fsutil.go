// Package fsutil holds the file helpers shared by the store, the drivers
// and bootstrap: a leaf package, so that writing a file safely does not pull
// in the store.
package fsutil

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFileAtomic writes data to a temp file next to path and renames it
// over path, so a reader never sees half a file.
func WriteFileAtomic(path string, data []byte, mode fs.FileMode) error {
	// Unchanged content is not written again: a no-op run stays cheap (no
	// fsync) and a file's mtime says when it last really changed.
	if sameFile(path, data, mode) {
		return nil
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := writeSynced(f, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// sameFile tells whether the file at path holds data with mode already.
func sameFile(path string, data []byte, mode fs.FileMode) bool {
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != mode.Perm() || st.Size() != int64(len(data)) {
		return false
	}
	cur, err := os.ReadFile(path)
	return err == nil && bytes.Equal(cur, data)
}

// writeSynced gives f mode, writes data, syncs and closes it; f is closed
// also on an error.
func writeSynced(f *os.File, data []byte, mode fs.FileMode) error {
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
