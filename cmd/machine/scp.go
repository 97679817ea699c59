package main

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/pkg/sftp"
	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/spf13/cobra"
)

// splitSpec reads [NAME:]PATH; a path with a slash before the colon is
// local (./a:b is the local file a:b). What stands before the colon must
// be a machine name: it names a folder of the store.
func splitSpec(s string) (name, p string, err error) {
	i := strings.Index(s, ":")
	if i <= 0 || strings.Contains(s[:i], "/") {
		return "", s, nil
	}
	name, p = s[:i], s[i+1:]
	if err := store.ValidateName(name); err != nil {
		return "", "", fmt.Errorf("%q: %w (for a local path with a colon, write ./%s)", s, err, s)
	}
	if p == "" {
		return "", "", fmt.Errorf("%q: no path after %s:", s, name)
	}
	// SFTP resolves a relative path in the user's home: ~ and ~/x are that.
	if p == "~" {
		p = "."
	} else if rest, ok := strings.CutPrefix(p, "~/"); ok {
		p = rest
		if p == "" {
			p = "."
		}
	}
	return name, p, nil
}

func newSCP(g *globals) *cobra.Command {
	var recursive, quiet, delta bool
	cmd := &cobra.Command{
		Use:   "scp [-r] [-d] [-q] [NAME:]SRC [NAME:]DST",
		Short: "Copy files between this machine and a machine, or between two machines (as the SSH user, over SFTP)",
		Long: `Copy files over SFTP as the machine's SSH user. SRC and DST are local paths
or NAME:PATH; with two machines (machine scp a:/f b:/f) the files pass through
a temporary folder here. A local path with a colon in it is written ./a:b.
A source without a name of its own (., .., /, ~) goes to a destination that
does not exist yet, which becomes the copy: inside an existing folder it is
refused, as the copy would land outside it. Uploaded files are private until
written, then take the source's mode.
With -d (--delta), as docker-machine's, rsync sends only the differences,
between this computer and one machine; it runs over shoal's own SSH client
(this program as rsync's -e) and needs rsync here and on the machine. -q
drops rsync's --progress.`,
		Example: `  machine scp ./app.tar m1:/tmp/
  machine scp -r m1:/etc/docker ./m1-docker
  machine scp m1:/tmp/app.tar m2:/tmp/app.tar`,
		Args:              exactArgs(2),
		ValidArgsFunction: completeSCP(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcName, src, err := splitSpec(args[0])
			if err != nil {
				return cli.Invalid(err)
			}
			dstName, dst, err := splitSpec(args[1])
			if err != nil {
				return cli.Invalid(err)
			}
			if srcName == "" && dstName == "" {
				return usageErr("SRC or DST must be NAME:PATH (a machine)")
			}
			if delta {
				return runDelta(cmd, g, srcName, src, dstName, dst, recursive, quiet)
			}
			m, err := g.manager(cmd)
			if err != nil {
				return err
			}
			sftpOf := func(name string) (*sftp.Client, func(), error) {
				c, err := connectRunning(cmd.Context(), m, name)
				if err != nil {
					return nil, nil, err
				}
				sc, err := c.SFTP()
				if err != nil {
					c.Close()
					return nil, nil, fmt.Errorf("%s: sftp: %w", name, err)
				}
				return sc, func() { c.Close() }, nil
			}
			var from, to *sftp.Client
			if srcName != "" {
				sc, done, err := sftpOf(srcName)
				if err != nil {
					return err
				}
				defer done()
				from = sc
			}
			if dstName != "" {
				sc, done, err := sftpOf(dstName)
				if err != nil {
					return err
				}
				defer done()
				to = sc
			}
			switch {
			case from == nil:
				return upload(to, src, dst, recursive)
			case to == nil:
				return download(from, src, dst, recursive)
			}
			return relay(from, to, srcName, dstName, src, dst, recursive)
		},
	}
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "copy folders recursively")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress (machine scp prints none; with -d, rsync's --progress is left out)")
	cmd.Flags().BoolVarP(&delta, "delta", "d", false, "send only the differences, with rsync (here and on the machine)")
	return cmd
}

// safeEntry refuses a name a remote folder listing should never hold: it
// would take a recursive download out of its destination.
func safeEntry(dir, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return fmt.Errorf("remote folder %s lists an entry named %q: refused", dir, name)
	}
	return nil
}

// relay copies from one machine to another through a private temporary
// folder here. The copy is downloaded to a fixed name inside that folder
// (never one taken from SRC: ".." would name the folder's parent) and
// uploaded under SRC's own name.
func relay(from, to *sftp.Client, srcName, dstName, src, dst string, recursive bool) error {
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
		return "", usageErr("the source has no name of its own to take inside the folder %s: name the destination, e.g. %s", dst, join(dst, "NAME"))
	}
	return join(dst, name), nil
}

func upload(sc *sftp.Client, src, dst string, recursive bool) error {
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
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		return sshrun.PutFile(sc, dst, in, st.Mode().Perm())
	}
	if !recursive {
		return usageErr("%s is a folder: use -r", src)
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

func download(sc *sftp.Client, src, dst string, recursive bool) error {
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
		in, err := sc.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, st.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	}
	if !recursive {
		return usageErr("%s is a folder: use -r", src)
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
