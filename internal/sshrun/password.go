package sshrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// Access is what a connection may need beyond one key: a login password for
// the first contact, sudo's password, more keys to offer, and a dialer (a
// jump host). None of it is ever written to the transcript, an error, an
// argument or an environment variable.
type Access struct {
	// Password is offered after the keys, as "password" and as
	// "keyboard-interactive" (the two ways sshd asks for it).
	Password []byte
	// SudoPassword is given to sudo on its standard input (sudo -S, one
	// try) when the login user's sudo asks for one.
	SudoPassword []byte
	// ExtraKeyPaths are further private keys, offered when they exist and
	// have no passphrase (a jump host's IdentityFile, ~/.ssh/id_*).
	ExtraKeyPaths []string
	// Dial opens the TCP connection to addr; nil means directly. A jump
	// host's (*JumpPool).Dialer fits here.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

// passwordMethods answers a password prompt and keyboard-interactive
// questions that do not echo (sshd's "Password: ") with pw. used records that
// the server asked, i.e. the keys were not enough.
func passwordMethods(pw []byte, used *atomic.Bool) []ssh.AuthMethod {
	return []ssh.AuthMethod{
		ssh.PasswordCallback(func() (string, error) {
			used.Store(true)
			return string(pw), nil
		}),
		ssh.RetryableAuthMethod(ssh.KeyboardInteractive(func(_, _ string, questions []string, echos []bool) ([]string, error) {
			answers := make([]string, len(questions))
			for i := range questions {
				if !echos[i] {
					used.Store(true)
					answers[i] = string(pw)
				}
			}
			return answers, nil
		}), 1),
	}
}

// extraSigners loads the keys that exist and parse without a passphrase;
// the others are skipped (they are offers, not requirements).
func extraSigners(paths []string) []ssh.Signer {
	var out []ssh.Signer
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if s, err := ssh.ParsePrivateKey(b); err == nil {
			out = append(out, s)
		}
	}
	return out
}

func dialTCP(ctx context.Context, cfg Config, addr string) (net.Conn, error) {
	if cfg.Dial != nil {
		return cfg.Dial(ctx, addr)
	}
	d := net.Dialer{KeepAlive: 15 * time.Second}
	return d.DialContext(ctx, "tcp", addr)
}

// PasswordUsed reports whether this connection logged in with the password
// (the keys offered were refused).
func (c *Client) PasswordUsed() bool { return c.passUsed }

// AuthorizeKey adds the public key (authorized_keys format) to the login
// user's ~/.ssh/authorized_keys unless it is there, keeping the rest of the
// file; ~/.ssh 0700, the file 0600. It runs as the login user, so no sudo.
func (c *Client) AuthorizeKey(ctx context.Context, pubKey string) error {
	pubKey = strings.TrimSpace(pubKey)
	if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pubKey)); err != nil || strings.ContainsAny(pubKey, "\n\r") {
		return fmt.Errorf("on %s: authorize key: not a public key in authorized_keys format", c.cfg.Host)
	}
	q := ShellQuote(pubKey)
	script := strings.Join([]string{
		`umask 077`,
		`mkdir -p "$HOME/.ssh" && chmod 700 "$HOME/.ssh" || exit 1`,
		`f="$HOME/.ssh/authorized_keys"`,
		`touch "$f" && chmod 600 "$f" || exit 1`,
		`grep -qxF ` + q + ` "$f" && exit 0`,
		// A last line without its newline would merge with ours.
		`if [ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ]; then echo >> "$f"; fi`,
		`printf '%s\n' ` + q + ` >> "$f" || exit 1`,
		`command -v restorecon >/dev/null 2>&1 && restorecon -R "$HOME/.ssh" >/dev/null 2>&1`,
		`exit 0`,
	}, "\n")
	if _, err := c.Run(ctx, "sh -c "+ShellQuote(script)); err != nil {
		return fmt.Errorf("install the machine's key for %s: %w", c.cfg.User, err)
	}
	return nil
}

// sudoStdin is the sudo that reads its password from standard input: one
// line, no prompt, cached credentials ignored (-k) so that it always reads
// exactly that line and never leaves it to the command.
const sudoStdin = "sudo -S -k -p '' "

// wantsSudoPassword reports whether cmd is a root command that reads the
// sudo password first.
func (c *Client) wantsSudoPassword(cmd string) bool {
	return c.sudoPW.Load() && strings.HasPrefix(cmd, sudoStdin)
}

// withSudoPassword puts the password line before the command's own input.
func (c *Client) withSudoPassword(stdin io.Reader) io.Reader {
	line := append(bytes.Clone(c.cfg.SudoPassword), '\n')
	if stdin == nil {
		return bytes.NewReader(line)
	}
	return io.MultiReader(bytes.NewReader(line), stdin)
}

// sudoCheckTimeout bounds the one password check: sudo waits about two
// seconds after a wrong password (pam_unix's delay).
const sudoCheckTimeout = 30 * time.Second

// checkSudo finds out, once per connection, whether sudo wants the
// password, and if so tries it once. A wrong password fails here, before
// any change is made, with one failed attempt in the host's log instead of
// one per command (pam_faillock locks accounts after a few).
func (c *Client) checkSudo(ctx context.Context) error {
	if c.cfg.SudoPassword == nil || c.isRoot() {
		return nil
	}
	if c.cfg.Redactor != nil {
		c.cfg.Redactor.Add(string(c.cfg.SudoPassword))
	}
	ctx, cancel := context.WithTimeout(ctx, sudoCheckTimeout)
	defer cancel()
	if c.sudoWithoutPassword(ctx) {
		return nil
	}
	err := c.trySudoPassword(ctx)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("on %s: sudo did not answer within %s after the password was given: %w", c.cfg.Host, sudoCheckTimeout, err)
	}
	var re *RunError
	if errors.As(err, &re) && wrongSudoPassword(re.Stderr) {
		return &SudoError{Host: c.cfg.Host, User: c.cfg.User, WrongPassword: true, Err: re}
	}
	return c.sudoError(err)
}

// sudoWithoutPassword tells passwordless sudo, which needs no password:
// then none is sent, since the line would reach the command's stdin
// instead. With requiretty the same question is asked again on a pty, as
// provisioning does.
func (c *Client) sudoWithoutPassword(ctx context.Context) bool {
	_, err := c.run(ctx, "sudo -n true", nil, false, false)
	if err == nil {
		return true
	}
	if sudoWantsTTY(err, "must have a tty") {
		c.SetSudoTTY(true)
		_, err = c.run(ctx, "sudo -n true", nil, false, true)
	}
	return err == nil
}

// trySudoPassword runs sudo with the password once, on a pty when sudo
// wants a terminal (the pty takes the password the same way).
func (c *Client) trySudoPassword(ctx context.Context) error {
	c.sudoPW.Store(true)
	_, err := c.run(ctx, sudoStdin+"true", nil, false, c.wantPTY())
	if err == nil {
		return nil
	}
	if !c.wantPTY() && sudoWantsTTY(err, "must have a tty", "no tty present", "a terminal is required") {
		c.SetSudoTTY(true)
		_, err = c.run(ctx, sudoStdin+"true", nil, false, true)
	}
	return err
}

// sudoWantsTTY tells sudo refusing without a terminal, in one of the
// words given: `Defaults requiretty` (sudo 1.8 on CentOS 7: "sorry, you must
// have a tty to run sudo"), or no terminal to read a password from.
func sudoWantsTTY(err error, words ...string) bool {
	var re *RunError
	if !errors.As(err, &re) {
		return false
	}
	for _, s := range words {
		if strings.Contains(re.Stderr, s) {
			return true
		}
	}
	return false
}

// wrongSudoPassword tells sudo's answer to a wrong password (sudo 1.8 and
// 1.9, with or without a pty).
func wrongSudoPassword(stderr string) bool {
	for _, s := range []string{"incorrect password", "Sorry, try again", "Authentication failure", "no password was provided"} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}
