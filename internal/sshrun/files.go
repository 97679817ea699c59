package sshrun

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/pkg/sftp"

	"github.com/shoal-dev/shoal/internal/shell"
)

// Markers and exit codes the root scripts use to report specific failures.
const (
	noParentExit   = 3
	noParentMarker = "shoal: no parent directory"
	notExistExit   = 44
	notExistMarker = "shoal: no such file"
)

// WriteFile writes data to path atomically as root. The data goes over SFTP
// to a temp file of the login user in a fresh 0700 directory (in home, else
// /tmp), which is then
// installed as PATH.shoal-tmp with mode and owner and renamed over path. If
// the rename fails with EBUSY (path is a bind mount, like a container's
// /etc/hosts) path is rewritten in place instead. owner "" means root:root;
// else "user" (with the user's primary group) or "user:group". The parent
// directory must exist.
func (c *Client) WriteFile(ctx context.Context, dst string, data []byte, mode fs.FileMode, owner string) error {
	fail := func(err error) error { return fmt.Errorf("on %s: write %s: %w", c.cfg.Host, dst, err) }
	if !path.IsAbs(dst) || strings.HasSuffix(dst, "/") {
		return fail(errors.New("path must be absolute and name a file"))
	}
	user, group, err := parseOwner(owner)
	if err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	sc, err := c.sftpClient()
	if err != nil {
		return fail(err)
	}
	tmp, err := c.upload(ctx, sc, data)
	if err != nil {
		return fail(err)
	}
	// Best effort: the script has consumed it or failed.
	defer func() { _ = sc.Remove(tmp); _ = sc.RemoveDirectory(path.Dir(tmp)) }()

	script := installScript(tmp, dst, mode, user, group)
	if _, err := c.runRoot(ctx, script, false); err != nil {
		return fail(noParentError(err, dst))
	}
	return nil
}

// noParentError says so when the install script failed for want of dst's
// parent directory; other errors stay as they are.
func noParentError(err error, dst string) error {
	var re *RunError
	if errors.As(err, &re) && re.ExitCode == noParentExit && strings.Contains(re.Stderr, noParentMarker) {
		return fmt.Errorf("parent directory %s does not exist", path.Dir(dst))
	}
	return err
}

// uploadTo writes data to tmp in a new private directory; a failed write
// removes both.
func uploadTo(ctx context.Context, sc *sftp.Client, tmp string, data []byte) error {
	tmpDir := path.Dir(tmp)
	if err := privateDir(sc, tmpDir); err != nil {
		return err
	}
	if err := writeTemp(ctx, sc, tmp, data); err != nil {
		_ = sc.Remove(tmp)
		_ = sc.RemoveDirectory(tmpDir)
		return err
	}
	return nil
}

// upload writes data to a fresh temp file the login user owns, in a new
// directory closed to everyone else before the file exists, and returns
// the file's path. SFTP (as the client library speaks it) creates files
// and directories with the server's default mode; a 0644 file chmodded
// later could be opened by another user in between and read once the data
// is in. In a 0700 directory nobody else can reach the file at all.
func (c *Client) upload(ctx context.Context, sc *sftp.Client, data []byte) (string, error) {
	var name [12]byte
	if _, err := rand.Read(name[:]); err != nil {
		return "", err
	}
	base := ".shoal-" + hex.EncodeToString(name[:]) + ".tmp"
	var dirs []string
	if home, err := sc.Getwd(); err == nil && home != "" {
		dirs = append(dirs, home)
	}
	dirs = append(dirs, "/tmp")
	var firstErr error
	for _, dir := range dirs {
		tmp := path.Join(dir, base, "data")
		err := uploadTo(ctx, sc, tmp, data)
		if err == nil {
			return tmp, nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if errors.Is(firstErr, sftp.ErrSSHFxConnectionLost) || errors.Is(firstErr, io.EOF) {
		c.dropSFTP(sc) // the SFTP session died; the next call starts a new one
	}
	return "", fmt.Errorf("upload temp file over SFTP: %w", firstErr)
}

// privateDir makes dir (it must not exist: nothing planted is used) and
// closes it to everyone but its owner, checking that it is so.
func privateDir(sc *sftp.Client, dir string) error {
	if err := sc.Mkdir(dir); err != nil {
		return err
	}
	if err := sc.Chmod(dir, 0o700); err != nil {
		_ = sc.RemoveDirectory(dir)
		return err
	}
	fi, err := sc.Lstat(dir)
	if err == nil && (!fi.IsDir() || fi.Mode().Perm() != 0o700) {
		err = fmt.Errorf("temp directory %s is %v after chmod 0700", dir, fi.Mode())
	}
	if err != nil {
		_ = sc.RemoveDirectory(dir)
	}
	return err
}

// installScript installs the uploaded tmp as dst, as WriteFile says.
func installScript(tmp, dst string, mode fs.FileMode, user, group string) string {
	groupExpr := shell.Quote(group)
	if group == "" {
		groupExpr = `"$(id -gn ` + shell.Quote(user) + `)"`
	}
	next := dst + ".shoal-tmp"
	q := shell.Quote
	m := fmt.Sprintf("%04o", unixMode(mode))
	return strings.Join([]string{
		`[ -d ` + q(path.Dir(dst)) + ` ] || { echo '` + noParentMarker + `' >&2; exit ` + fmt.Sprint(noParentExit) + `; }`,
		`[ ! -d ` + q(dst) + ` ] || { echo 'shoal: destination is a directory' >&2; exit 1; }`,
		`g=` + groupExpr + ` || exit 1`,
		`install -m ` + m + ` -o ` + q(user) + ` -g "$g" ` + q(tmp) + ` ` + q(next) + ` || exit 1`,
		`if err=$(mv -f ` + q(next) + ` ` + q(dst) + ` 2>&1); then exit 0; fi`,
		// EBUSY: dst is a mount point (bind-mounted file); rewrite in place.
		`case $err in *[Bb]usy*)`,
		`  cat ` + q(next) + ` > ` + q(dst) + ` && chmod ` + m + ` ` + q(dst) + ` && chown ` + q(user) + `:"$g" ` + q(dst),
		`  rc=$?; rm -f ` + q(next) + `; exit $rc;;`,
		`esac`,
		`rm -f ` + q(next),
		`echo "$err" >&2`,
		`exit 1`,
	}, "\n")
}

func writeTemp(ctx context.Context, sc *sftp.Client, tmp string, data []byte) error {
	// O_EXCL: never write through a file or symlink someone planted.
	f, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { f.Close() }) // abort a long upload
	defer stop()
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (c *Client) sftpClient() (*sftp.Client, error) {
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	if c.sftp != nil {
		return c.sftp, nil
	}
	select {
	case <-c.done:
		return nil, errors.New("client is closed")
	default:
	}
	sc, err := sftp.NewClient(c.conn)
	if err != nil {
		return nil, fmt.Errorf("start SFTP: %w", err)
	}
	c.sessions.Add(1)
	c.sftp = sc
	return sc, nil
}

func (c *Client) dropSFTP(sc *sftp.Client) {
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	if c.sftp == sc {
		c.sftp = nil
		sc.Close()
	}
}

// ReadFile reads a file as root. A missing file gives an error matching
// fs.ErrNotExist.
func (c *Client) ReadFile(ctx context.Context, file string) ([]byte, error) {
	q := shell.Quote(file)
	script := `[ -e ` + q + ` ] || { echo "` + notExistMarker + `" >&2; exit ` + fmt.Sprint(notExistExit) + `; }` + "\nexec cat -- " + q
	res, err := c.runRoot(ctx, script, true) // contents may be secret: keep them out of the transcript
	if err != nil {
		var re *RunError
		if errors.As(err, &re) && re.ExitCode == notExistExit && strings.Contains(re.Stderr, notExistMarker) {
			return nil, fmt.Errorf("on %s: %w", c.cfg.Host, &fs.PathError{Op: "read", Path: file, Err: fs.ErrNotExist})
		}
		return nil, fmt.Errorf("on %s: read %s: %w", c.cfg.Host, file, err)
	}
	if res.Truncated {
		return nil, fmt.Errorf("on %s: read %s: larger than %d MiB", c.cfg.Host, file, maxStdout>>20)
	}
	return res.Stdout, nil
}

func parseOwner(owner string) (user, group string, err error) {
	if owner == "" {
		return "root", "root", nil
	}
	user, group, _ = strings.Cut(owner, ":")
	if user == "" || strings.ContainsAny(owner, " \t\n'\"\\$`") || strings.Count(owner, ":") > 1 {
		return "", "", fmt.Errorf("bad owner %q (want user or user:group)", owner)
	}
	return user, group, nil
}

// unixMode converts Go's mode bits to the octal chmod/install expect.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}
