package main

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/pkg/sftp"
	"github.com/spf13/cobra"
)

// splitSpec reads [NAME:]PATH; a path with a slash before the colon is local.
func splitSpec(s string) (name, p string) {
	if i := strings.Index(s, ":"); i > 0 && !strings.Contains(s[:i], "/") {
		return s[:i], s[i+1:]
	}
	return "", s
}

func newSCP(g *globals) *cobra.Command {
	var recursive bool
	cmd := &cobra.Command{
		Use:   "scp [-r] [NAME:]SRC [NAME:]DST",
		Short: "Copy files between this machine and a machine (as the SSH user, over SFTP)",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcName, src := splitSpec(args[0])
			dstName, dst := splitSpec(args[1])
			if (srcName == "") == (dstName == "") {
				return usageErr("exactly one of SRC and DST must be NAME:PATH")
			}
			name := srcName + dstName
			m, err := g.manager(cmd)
			if err != nil {
				return err
			}
			mach, err := m.Load(name)
			if err != nil {
				return err
			}
			c, err := m.Connect(cmd.Context(), mach, io.Discard)
			if err != nil {
				return err
			}
			defer c.Close()
			sc, err := c.SFTP()
			if err != nil {
				return err
			}
			if dstName != "" {
				return upload(sc, src, dst, recursive)
			}
			return download(sc, src, dst, recursive)
		},
	}
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "copy folders recursively")
	return cmd
}

func upload(sc *sftp.Client, src, dst string, recursive bool) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if rst, err := sc.Stat(dst); err == nil && rst.IsDir() {
		dst = path.Join(dst, filepath.Base(src))
	}
	if !st.IsDir() {
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := sc.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		if err != nil {
			return fmt.Errorf("remote %s: %w", dst, err)
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
		return sc.Chmod(dst, st.Mode().Perm())
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
		if err := upload(sc, filepath.Join(src, e.Name()), path.Join(dst, e.Name()), true); err != nil {
			return err
		}
	}
	return nil
}

func download(sc *sftp.Client, src, dst string, recursive bool) error {
	st, err := sc.Stat(src)
	if err != nil {
		return fmt.Errorf("remote %s: %w", src, err)
	}
	if lst, err := os.Stat(dst); err == nil && lst.IsDir() {
		dst = filepath.Join(dst, path.Base(src))
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
		if err := download(sc, path.Join(src, e.Name()), filepath.Join(dst, e.Name()), true); err != nil {
			return err
		}
	}
	return nil
}
