package sshrun

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"

	"github.com/pkg/sftp"
)

// PutFile writes r to dst over SFTP as the login user (machine scp) so
// that nobody else can read the data while it goes in: SFTP creates files
// with the server's default mode (0644 under the usual umask), and a file
// chmodded only after the write could be opened by another user in
// between. A new dst is written in a fresh 0700 folder next to it, given
// mode, then renamed into place (a plain SFTP rename: it never replaces a
// file that appeared meanwhile). An existing dst is closed to others
// first, then rewritten in place (its owner and links kept) and given mode.
func PutFile(sc *sftp.Client, dst string, r io.Reader, mode fs.FileMode) error {
	st, err := sc.Stat(dst)
	switch {
	case err == nil && st.IsDir():
		return fmt.Errorf("remote %s is a folder", dst)
	case err == nil:
		return rewriteFile(sc, dst, st.Mode().Perm(), r, mode)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("remote %s: %w", dst, err)
	}
	return putNewFile(sc, dst, r, mode)
}

// rewriteFile rewrites the existing dst (mode perm) in place once it is
// closed to others, its owner's bits kept: a read-only file stays one
// (and the write fails, as scp's would).
func rewriteFile(sc *sftp.Client, dst string, perm fs.FileMode, r io.Reader, mode fs.FileMode) error {
	if own := perm & 0o700; own != perm {
		if err := sc.Chmod(dst, own); err != nil {
			return fmt.Errorf("remote %s: close it to others before writing: %w", dst, err)
		}
	}
	if err := writeAll(sc, dst, os.O_WRONLY|os.O_TRUNC, r); err != nil {
		return err
	}
	return sc.Chmod(dst, mode.Perm())
}

// putNewFile writes a new dst in a fresh 0700 folder next to it, gives it
// mode and renames it into place.
func putNewFile(sc *sftp.Client, dst string, r io.Reader, mode fs.FileMode) error {
	var name [12]byte
	if _, err := rand.Read(name[:]); err != nil {
		return err
	}
	tmpDir := path.Join(path.Dir(dst), ".shoal-scp-"+hex.EncodeToString(name[:]))
	if err := privateDir(sc, tmpDir); err != nil {
		return fmt.Errorf("remote %s: %w", tmpDir, err)
	}
	tmp := path.Join(tmpDir, "data")
	defer func() { _ = sc.Remove(tmp); _ = sc.RemoveDirectory(tmpDir) }()
	// O_EXCL: never write through a file or symlink someone planted.
	if err := writeAll(sc, tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, r); err != nil {
		return err
	}
	if err := sc.Chmod(tmp, mode.Perm()); err != nil {
		return fmt.Errorf("remote %s: %w", tmp, err)
	}
	if err := sc.Rename(tmp, dst); err != nil {
		return fmt.Errorf("remote %s: %w", dst, err)
	}
	return nil
}

func writeAll(sc *sftp.Client, p string, flags int, r io.Reader) error {
	f, err := sc.OpenFile(p, flags)
	if err != nil {
		return fmt.Errorf("remote %s: %w", p, err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("remote %s: %w", p, err)
	}
	return f.Close()
}
