package sshrun

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/shoal-dev/shoal/internal/shell"
)

// File is one file for WriteFiles.
type File struct {
	Path  string
	Data  []byte
	Mode  fs.FileMode
	Owner string
	// DirMode, when set, makes the parent directory (root's, with this
	// mode) if it is missing, in the same round trip; else the parent
	// must exist.
	DirMode fs.FileMode
}

// WriteFiles writes files as WriteFile does, each atomically, in one root
// session: the data go over SFTP first, then one script installs them in
// order and stops at the first that fails (the error names it).
func (c *Client) WriteFiles(ctx context.Context, files []File) error {
	if len(files) == 1 && files[0].DirMode == 0 {
		f := files[0]
		return c.WriteFile(ctx, f.Path, f.Data, f.Mode, f.Owner)
	}
	type owner struct{ user, group string }
	owners := make([]owner, len(files))
	for i, f := range files {
		if !path.IsAbs(f.Path) || strings.HasSuffix(f.Path, "/") {
			return fmt.Errorf("on %s: write %s: path must be absolute and name a file", c.cfg.Host, f.Path)
		}
		u, g, err := parseOwner(f.Owner)
		if err != nil {
			return fmt.Errorf("on %s: write %s: %w", c.cfg.Host, f.Path, err)
		}
		owners[i] = owner{u, g}
	}
	if len(files) == 0 {
		return nil
	}
	fail := func(err error) error { return fmt.Errorf("on %s: write %s: %w", c.cfg.Host, files[0].Path, err) }
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	sc, err := c.sftpClient()
	if err != nil {
		return fail(err)
	}
	var parts []string
	for i, f := range files {
		tmp, err := c.upload(ctx, sc, f.Data)
		if err != nil {
			return fmt.Errorf("on %s: write %s: %w", c.cfg.Host, f.Path, err)
		}
		// Best effort: the script has consumed it or failed.
		defer func() { _ = sc.Remove(tmp); _ = sc.RemoveDirectory(path.Dir(tmp)) }()
		parts = append(parts, fmt.Sprintf("(\n%s%s\n) || { rc=$?; echo %s >&2; exit $rc; }",
			makeDir(f), installScript(tmp, f.Path, f.Mode, owners[i].user, owners[i].group), shell.Quote("shoal: could not write "+f.Path)))
	}
	if _, err := c.runRoot(ctx, strings.Join(parts, "\n"), false); err != nil {
		var re *RunError
		if errors.As(err, &re) && re.ExitCode == noParentExit && strings.Contains(re.Stderr, noParentMarker) {
			for _, f := range files {
				if strings.Contains(re.Stderr, "could not write "+f.Path) {
					return fmt.Errorf("on %s: write %s: parent directory %s does not exist", c.cfg.Host, f.Path, path.Dir(f.Path))
				}
			}
		}
		return fmt.Errorf("on %s: write %d files: %w", c.cfg.Host, len(files), err)
	}
	return nil
}

// makeDir is the command that makes f's parent directory when f asks for
// it, with a newline; "" when it does not.
func makeDir(f File) string {
	if f.DirMode == 0 {
		return ""
	}
	d := path.Dir(f.Path)
	return fmt.Sprintf("[ -d %s ] || install -d -m %04o %s || exit 1\n", shell.Quote(d), unixMode(f.DirMode), shell.Quote(d))
}
