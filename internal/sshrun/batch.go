package sshrun

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pkg/sftp"

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

// Op is one step of a batch (RunBatch): a root command, or a file written
// as WriteFile writes it.
type Op struct {
	// Label names the op in errors (a provisioning step's name).
	Label string
	Cmd   string
	File  *File
}

// BatchError is a batch that stopped at an op: Index and Label say which;
// Err is the script's error (its stderr tail).
type BatchError struct {
	Host  string
	Index int
	Label string
	Path  string // the op's file, for a file op
	Err   error
}

func (e *BatchError) Error() string {
	if e.Path != "" {
		return fmt.Sprintf("on %s: write %s: %v", e.Host, e.Path, e.Err)
	}
	return e.Err.Error()
}

func (e *BatchError) Unwrap() error { return e.Err }

// batchFailed is the line a batch's script prints (to stderr) when op N
// fails; the error is attributed by it.
const batchFailed = "shoal: batch op "

var batchFailedRE = regexp.MustCompile(`shoal: batch op (\d+) failed`)

// RunBatch runs ops in order as root in one session and stops at the first
// that fails: the files' data go over SFTP first (as WriteFile's), then one
// script writes each file and runs each command in turn, each command in
// its own subshell as RunSudo would. The error of a failed op is a
// *BatchError.
func (c *Client) RunBatch(ctx context.Context, ops []Op) error {
	owners, nfiles, err := c.batchOwners(ops)
	if err != nil {
		return err
	}
	if len(ops) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("on %s: %w", c.cfg.Host, err)
	}
	var sc *sftp.Client
	if nfiles > 0 {
		if sc, err = c.sftpClient(); err != nil {
			return fmt.Errorf("on %s: write files: %w", c.cfg.Host, err)
		}
	}
	script, tmps, err := c.batchScript(ctx, sc, ops, owners)
	// Best effort: the script has consumed them or failed.
	defer removeUploads(sc, tmps)
	if err != nil {
		return err
	}
	_, err = c.runRoot(ctx, script, false)
	return c.batchError(err, ops)
}

// fileOwner is a file op's owner, parsed before anything is sent.
type fileOwner struct{ user, group string }

// batchOwners checks the file ops' paths and owners; it returns each op's
// owner (none for a command) and how many files there are.
func (c *Client) batchOwners(ops []Op) ([]fileOwner, int, error) {
	owners := make([]fileOwner, len(ops))
	nfiles := 0
	for i, op := range ops {
		if op.File == nil {
			continue
		}
		f := op.File
		if !path.IsAbs(f.Path) || strings.HasSuffix(f.Path, "/") {
			return nil, 0, fmt.Errorf("on %s: write %s: path must be absolute and name a file", c.cfg.Host, f.Path)
		}
		u, g, err := parseOwner(f.Owner)
		if err != nil {
			return nil, 0, fmt.Errorf("on %s: write %s: %w", c.cfg.Host, f.Path, err)
		}
		owners[i] = fileOwner{u, g}
		nfiles++
	}
	return owners, nfiles, nil
}

// batchScript uploads the files' data and returns the script that runs
// the ops in turn, each in its own subshell, with the uploads to remove
// afterwards (also those made before an upload failed).
func (c *Client) batchScript(ctx context.Context, sc *sftp.Client, ops []Op, owners []fileOwner) (string, []string, error) {
	var parts, tmps []string
	for i, op := range ops {
		body := op.Cmd
		if f := op.File; f != nil {
			tmp, err := c.upload(ctx, sc, f.Data)
			if err != nil {
				return "", tmps, fmt.Errorf("on %s: write %s: %w", c.cfg.Host, f.Path, err)
			}
			tmps = append(tmps, tmp)
			body = makeDir(*f) + installScript(tmp, f.Path, f.Mode, owners[i].user, owners[i].group)
		}
		parts = append(parts, fmt.Sprintf("(\n%s\n) || { rc=$?; echo '%s%d failed' >&2; exit $rc; }", body, batchFailed, i))
	}
	return strings.Join(parts, "\n"), tmps, nil
}

// removeUploads removes the uploaded files and their directories, last
// first.
func removeUploads(sc *sftp.Client, tmps []string) {
	for _, tmp := range slices.Backward(tmps) {
		_ = sc.Remove(tmp)
		_ = sc.RemoveDirectory(path.Dir(tmp))
	}
}

// batchError attributes the script's error to the op that failed, by the
// line the script printed; other errors stay as they are.
func (c *Client) batchError(err error, ops []Op) error {
	if err == nil {
		return nil
	}
	var re *RunError
	if !errors.As(err, &re) {
		return err
	}
	m := batchFailedRE.FindStringSubmatch(re.Stderr)
	if m == nil {
		return err
	}
	i, _ := strconv.Atoi(m[1])
	if i < 0 || i >= len(ops) {
		return err
	}
	be := &BatchError{Host: c.cfg.Host, Index: i, Label: ops[i].Label, Err: err}
	if f := ops[i].File; f != nil {
		be.Path = f.Path
		if re.ExitCode == noParentExit && strings.Contains(re.Stderr, noParentMarker) {
			be.Err = fmt.Errorf("parent directory %s does not exist", path.Dir(f.Path))
		}
	}
	return be
}

// WriteFiles writes files as WriteFile does, each atomically, in one root
// session (RunBatch): it stops at the first that fails, and the error
// names it.
func (c *Client) WriteFiles(ctx context.Context, files []File) error {
	if len(files) == 1 && files[0].DirMode == 0 {
		f := files[0]
		return c.WriteFile(ctx, f.Path, f.Data, f.Mode, f.Owner)
	}
	ops := make([]Op, len(files))
	for i := range files {
		ops[i] = Op{Label: files[i].Path, File: &files[i]}
	}
	err := c.RunBatch(ctx, ops)
	var be *BatchError
	var re *RunError
	if err != nil && !errors.As(err, &be) && errors.As(err, &re) {
		// The script failed before any file (sudo, most likely).
		return fmt.Errorf("on %s: write %d files: %w", c.cfg.Host, len(files), err)
	}
	return err
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
