package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pkg/sftp"
	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/internal/sftpcopy"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/machine"
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
		p = cmp.Or(p, ".")
	}
	return name, p, nil
}

// scpSides reads [NAME:]SRC and [NAME:]DST; one must name a machine.
func scpSides(srcArg, dstArg string) (srcName, src, dstName, dst string, err error) {
	if srcName, src, err = splitSpec(srcArg); err != nil {
		return "", "", "", "", cli.Invalid(err)
	}
	if dstName, dst, err = splitSpec(dstArg); err != nil {
		return "", "", "", "", cli.Invalid(err)
	}
	if srcName == "" && dstName == "" {
		return "", "", "", "", usageErr("SRC or DST must be NAME:PATH (a machine)")
	}
	return srcName, src, dstName, dst, nil
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
			srcName, src, dstName, dst, err := scpSides(args[0], args[1])
			if err != nil {
				return err
			}
			if delta {
				return runDelta(cmd, g, srcName, src, dstName, dst, recursive, quiet)
			}
			m, err := g.manager(cmd)
			if err != nil {
				return err
			}
			return copySFTP(cmd.Context(), m, srcName, src, dstName, dst, recursive)
		},
	}
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "copy folders recursively")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress (machine scp prints none; with -d, rsync's --progress is left out)")
	cmd.Flags().BoolVarP(&delta, "delta", "d", false, "send only the differences, with rsync (here and on the machine)")
	return cmd
}

// copySFTP opens an SFTP session to each machine named and copies; a copy
// refused for how it was asked is bad usage (exit status 2).
func copySFTP(ctx context.Context, m *machine.Manager, srcName, src, dstName, dst string, recursive bool) error {
	// One session a side, even when both name the same machine.
	var ends [2]*sftp.Client
	for i, name := range []string{srcName, dstName} {
		if name == "" {
			continue
		}
		sc, done, err := sftpOf(ctx, m, name)
		if err != nil {
			return err
		}
		defer done()
		ends[i] = sc
	}
	err := copyBetween(ends[0], ends[1], srcName, src, dstName, dst, recursive)
	// The refusal alone is said, as when it was the CLI's own usage error.
	var refused *sftpcopy.UsageError
	if errors.As(err, &refused) {
		return cli.Invalid(refused)
	}
	return err
}

// sftpOf opens an SFTP session to the running machine name; done closes
// its connection.
func sftpOf(ctx context.Context, m *machine.Manager, name string) (*sftp.Client, func(), error) {
	c, err := connectRunning(ctx, m, name)
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

// copyBetween copies up, down, or from one machine to another, as the
// sides that have a session (from, to) say.
func copyBetween(from, to *sftp.Client, srcName, src, dstName, dst string, recursive bool) error {
	switch {
	case from == nil:
		return sftpcopy.Upload(to, src, dst, recursive)
	case to == nil:
		return sftpcopy.Download(from, src, dst, recursive)
	}
	return sftpcopy.Relay(from, to, srcName, dstName, src, dst, recursive)
}
