// Package sftpcopy copies files and folders over SFTP: up to a machine,
// down from one, or from one machine to another through a private
// temporary folder here (machine scp). A copy never lands outside the
// destination it is given.
package sftpcopy

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/pkg/sftp"
	"github.com/shoal-dev/shoal/internal/sshrun"
)

// A UsageError is a copy refused for the way it was asked (a folder
// without -r, a source without a name of its own into a folder): bad
// usage rather than a failure.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }

func (e *UsageError) Unwrap() error { return e.Err }

func usage(format string, a ...any) error {
	return &UsageError{Err: fmt.Errorf(format, a...)}
}

// safeEntry refuses a name a remote folder listing should never hold: it
// would take a recursive download out of its destination.
func safeEntry(dir, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return fmt.Errorf("remote folder %s lists an entry named %q: refused", dir, name)
	}
	return nil
}

// Relay copies from one machine to another through a private temporary
// folder here. The copy is downloaded to a fixed name inside that folder
// (never one taken from SRC: ".." would name the folder's parent) and
// uploaded under SRC's own name.
func Relay(from, to *sftp.Client, srcName, dstName, src, dst string, recursive bool) error {
	// Where it lands is decided first: a refused copy downloads nothing.
	rst, err := to.Stat(dst)
	target, err := destPath(dst, err == nil && rst.IsDir(), copyName(path.Base(path.Clean(src))), path.Join)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "machine-scp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	local := filepath.Join(tmp, "copy")
	if err := downloadTree(from, src, local, recursive); err != nil {
		return fmt.Errorf("%s: %w", srcName, err)
	}
	if err := uploadTree(to, local, target, recursive); err != nil {
		return fmt.Errorf("%s: %w", dstName, err)
	}
	return nil
}

// copyName is the name a copy of SRC takes inside an existing folder: the
// last element of the cleaned SRC, or "" when SRC has none of its own
// (".", "..", "/", "~").
func copyName(base string) string {
	if base == "" || base == "." || base == ".." || strings.ContainsAny(base, "/\\\x00") {
		return ""
	}
	return base
}

// destPath is where a copy lands: inside DST, under name, when DST is an
// existing folder; else DST itself. A SRC without a name of its own is
// refused there: joining ".." would take the copy out of DST.
func destPath(dst string, dstIsDir bool, name string, join func(...string) string) (string, error) {
	if !dstIsDir {
		return dst, nil
	}
	if name == "" {
		return "", usage("the source has no name of its own to take inside the folder %s: name the destination, e.g. %s", dst, join(dst, "NAME"))
	}
	return join(dst, name), nil
}

// Upload copies the local src to dst on the machine sc reaches (into dst
// when it is an existing folder).
func Upload(sc *sftp.Client, src, dst string, recursive bool) error {
	rst, err := sc.Stat(dst)
	target, err := destPath(dst, err == nil && rst.IsDir(), copyName(filepath.Base(filepath.Clean(src))), path.Join)
	if err != nil {
		return err
	}
	return uploadTree(sc, src, target, recursive)
}

func uploadTree(sc *sftp.Client, src, dst string, recursive bool) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return uploadFile(sc, src, dst, st.Mode().Perm())
	}
	if !recursive {
		return usage("%s is a folder: use -r", src)
	}
	if err := sc.MkdirAll(dst); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := uploadTree(sc, filepath.Join(src, e.Name()), path.Join(dst, e.Name()), true); err != nil {
			return err
		}
	}
	return nil
}

// uploadFile copies the local file src to dst on the machine, with perm.
func uploadFile(sc *sftp.Client, src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return sshrun.PutFile(sc, dst, in, perm)
}

// Download copies src on the machine sc reaches to the local dst (into dst
// when it is an existing folder).
func Download(sc *sftp.Client, src, dst string, recursive bool) error {
	lst, err := os.Stat(dst)
	target, err := destPath(dst, err == nil && lst.IsDir(), copyName(path.Base(path.Clean(src))), filepath.Join)
	if err != nil {
		return err
	}
	return downloadTree(sc, src, target, recursive)
}

func downloadTree(sc *sftp.Client, src, dst string, recursive bool) error {
	st, err := sc.Stat(src)
	if err != nil {
		return fmt.Errorf("remote %s: %w", src, err)
	}
	if !st.IsDir() {
		return downloadFile(sc, src, dst, st.Mode().Perm())
	}
	if !recursive {
		return usage("%s is a folder: use -r", src)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := sc.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := safeEntry(src, e.Name()); err != nil {
			return err
		}
		if err := downloadTree(sc, path.Join(src, e.Name()), filepath.Join(dst, e.Name()), true); err != nil {
			return err
		}
	}
	return nil
}

// downloadFile copies the remote file src to dst, made with perm.
func downloadFile(sc *sftp.Client, src, dst string, perm os.FileMode) error {
	in, err := sc.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
