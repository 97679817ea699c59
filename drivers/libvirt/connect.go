package libvirt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	lv "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// The driver speaks libvirt's RPC protocol to the daemon's socket itself
// (github.com/digitalocean/go-libvirt, pure Go): no libvirt library is
// linked or loaded, so every build of shoal has this driver, and only a
// machine that runs VMs needs libvirt (the daemon). docs/design.md says why.

// Timings of a connection.
const (
	// dialTimeout bounds reaching the daemon's socket (and, remote, the
	// host); the calls after it are bounded by the operation's context.
	dialTimeout = 15 * time.Second
	// callTimeout bounds an operation whose caller set no deadline
	// (stop, kill, rm, state): libvirt answers these in seconds.
	callTimeout = 5 * time.Minute
	// closeTimeout bounds the polite close (ConnectClose) of a connection.
	closeTimeout = 5 * time.Second
)

// Daemons' socket folders.
const (
	systemSocketDir = "/var/run/libvirt"
	legacySocket    = "libvirt-sock" // libvirtd, or virtproxyd in front of the modular daemons
)

// conn is one connection to libvirtd, for one operation. Its socket is
// closed when the operation's context ends, which fails whatever call is
// still waiting for the daemon: no call outlives its context.
type conn struct {
	l      *lv.Libvirt
	cancel context.CancelFunc
	dialer *ctxDialer
}

// connect opens a connection bounded by ctx (by callTimeout when ctx has no
// deadline); every operation has its own, closed at its end.
func (d *Driver) connect(ctx context.Context) (*conn, error) {
	return dial(ctx, d.cfg.URI, os.Getenv, os.Geteuid())
}

// dial connects to the daemon of uri. getenv and euid decide where a local
// daemon listens (root's or the user's).
func dial(ctx context.Context, uri string, getenv func(string) string, euid int) (*conn, error) {
	t, err := resolveURI(uri, getenv, euid)
	if err != nil {
		return nil, fmt.Errorf("--libvirt-uri %q: %w", uri, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx, cancel := withDefaultTimeout(ctx, callTimeout)
	dialer := &ctxDialer{ctx: ctx, t: t}
	l := lv.NewWithDialer(dialer)
	if err := l.ConnectToURI(t.name); err != nil {
		dialer.close()
		cancel()
		if dialer.conn == nil {
			return nil, t.unavailable(uri, err)
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("libvirt at %s (%s): no answer: %w", uri, dialer.used, ctxErr)
		}
		return nil, t.refused(uri, dialer.used, err)
	}
	return &conn{l: l, cancel: cancel, dialer: dialer}, nil
}

// close ends the connection: politely when the daemon answers, by closing
// the socket when it does not within closeTimeout.
func (c *conn) close() {
	force := time.AfterFunc(closeTimeout, c.dialer.close)
	_ = c.l.Disconnect()
	force.Stop()
	c.dialer.close()
	c.cancel()
}

// target is where a URI's daemon listens and what to ask it for.
type target struct {
	// name is the URI the daemon is asked to open: the transport and the
	// client's parameters taken out (qemu+unix:///system -> qemu:///system).
	name lv.ConnectURI
	// sockets are a local daemon's sockets, tried in order.
	sockets []string
	// session: the user's own daemon, not root's.
	session bool
	// autostart: start the user's daemon when none runs, as libvirt's
	// client does (not for root, not with LIBVIRT_AUTOSTART=0).
	autostart bool
	// remote dials a daemon on another host (ssh, tcp, tls).
	remote socket.Dialer
}

// resolveURI maps a libvirt URI onto its daemon's socket, as libvirt's own
// client does: qemu:///system is root's libvirtd (/var/run/libvirt/
// libvirt-sock) or, with the modular daemons, virtqemud's socket beside it;
// qemu:///session is the user's, in $XDG_RUNTIME_DIR/libvirt (else
// ~/.cache/libvirt); ?socket= names the socket; test:///default is the
// daemon's built-in test hypervisor; qemu+ssh, +tcp and +tls reach a daemon
// on another host.
func resolveURI(uri string, getenv func(string) string, euid int) (target, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return target{}, err
	}
	scheme, transport, _ := strings.Cut(u.Scheme, "+")
	if scheme == "" {
		return target{}, errors.New("not a libvirt URI (qemu:///system, qemu:///session, qemu+ssh://user@host/system)")
	}
	t := target{name: lv.RemoteURI(u)}
	if transport == "" && u.Host != "" {
		transport = "tls" // libvirt's default for a URI naming a host
	}
	if transport != "" && transport != "unix" {
		if t.remote, err = remoteDialer(transport, u, getenv); err != nil {
			return target{}, err
		}
		return t, nil
	}
	if u.Host != "" && u.Host != "localhost" {
		return target{}, fmt.Errorf("the unix transport reaches this host only, not %s", u.Host)
	}
	return localTarget(t, u, scheme, getenv, euid), nil
}

// remoteDialer is how the URI u reaches a daemon on another host, by its
// transport.
func remoteDialer(transport string, u *url.URL, getenv func(string) string) (socket.Dialer, error) {
	switch transport {
	case "ssh":
		return sshDialer(u, getenv), nil
	case "tcp":
		return tcpDialer(u), nil
	case "tls":
		return tlsDialer(u), nil
	}
	return nil, fmt.Errorf("transport %q is not supported (unix, ssh, tcp or tls)", transport)
}

// localTarget fills in the sockets of a daemon on this host: ?socket=, else
// root's or the user's (session) folder.
func localTarget(t target, u *url.URL, scheme string, getenv func(string) string, euid int) target {
	if s := u.Query().Get("socket"); s != "" {
		t.sockets = []string{s}
		return t
	}
	dir := systemSocketDir
	t.session = u.Path == "/session" || (scheme == "test" && euid != 0)
	if t.session {
		dir = userRuntimeDir(getenv)
		t.autostart = euid != 0 && getenv("LIBVIRT_AUTOSTART") != "0"
	}
	t.sockets = []string{filepath.Join(dir, legacySocket)}
	if scheme == "qemu" {
		t.sockets = append(t.sockets, filepath.Join(dir, "virtqemud-sock"))
	}
	return t
}

// sshDialer reaches a daemon over SSH as ssh(1) would: the agent or the
// first of ~/.ssh/id_* (go-libvirt's defaults), the host checked against
// ~/.ssh/known_hosts.
func sshDialer(u *url.URL, getenv func(string) string) socket.Dialer {
	var opts []dialers.SSHOption
	if user := u.User.Username(); user != "" {
		opts = append(opts, dialers.UseSSHUsername(user))
	}
	if home := getenv("HOME"); home != "" {
		opts = append(opts, dialers.UseKnownHostsFile(filepath.Join(home, ".ssh", "known_hosts")))
	}
	if p := u.Port(); p != "" {
		opts = append(opts, dialers.UseSSHPort(p))
	}
	if k := u.Query().Get("keyfile"); k != "" {
		opts = append(opts, dialers.UseKeyFile(k))
	}
	if s := u.Query().Get("socket"); s != "" {
		opts = append(opts, dialers.WithRemoteSocket(s))
	}
	if u.Query().Get("no_verify") == "1" {
		opts = append(opts, dialers.WithInsecureIgnoreHostKey())
	}
	return dialers.NewSSH(u.Hostname(), opts...)
}

// tcpDialer reaches a daemon over plain TCP.
func tcpDialer(u *url.URL) socket.Dialer {
	opts := []dialers.RemoteOption{dialers.WithRemoteTimeout(dialTimeout)}
	if p := u.Port(); p != "" {
		opts = append(opts, dialers.UsePort(p))
	}
	return dialers.NewRemote(u.Hostname(), opts...)
}

// tlsDialer reaches a daemon over TLS (?pkipath= names the certificates).
func tlsDialer(u *url.URL) socket.Dialer {
	var opts []dialers.TLSOption
	if p := u.Port(); p != "" {
		opts = append(opts, dialers.UseTLSPort(p))
	}
	if p := u.Query().Get("pkipath"); p != "" {
		opts = append(opts, dialers.UsePKIPath(p))
	}
	if u.Query().Get("no_verify") == "1" {
		opts = append(opts, dialers.WithInsecureNoVerify())
	}
	return dialers.NewTLS(u.Hostname(), opts...)
}

// userRuntimeDir is where the user's own libvirt daemons listen.
func userRuntimeDir(getenv func(string) string) string {
	if d := getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "libvirt")
	}
	return filepath.Join(getenv("HOME"), ".cache", "libvirt")
}

// ctxDialer dials a target for one connection: the dial is bounded by
// dialTimeout and ctx, and the socket it opens is closed when ctx ends.
type ctxDialer struct {
	ctx  context.Context
	t    target
	conn net.Conn
	used string // the socket (or host) connected to, for messages
	stop func() bool
}

// Dial implements socket.Dialer.
func (d *ctxDialer) Dial() (net.Conn, error) {
	ctx, cancel := context.WithTimeout(d.ctx, dialTimeout)
	defer cancel()
	var c net.Conn
	var err error
	if d.t.remote != nil {
		c, err = dialRemote(ctx, d.t.remote)
		d.used = "remote daemon"
	} else {
		c, err = d.dialLocalStarting(ctx)
	}
	if err != nil {
		return nil, err
	}
	d.conn = c
	d.stop = context.AfterFunc(d.ctx, func() { _ = c.Close() })
	return c, nil
}

// dialLocalStarting dials the local daemon. libvirt's client starts the
// user's daemon when none runs (it exits when idle): so does the driver,
// where the target allows it.
func (d *ctxDialer) dialLocalStarting(ctx context.Context) (net.Conn, error) {
	c, err := d.dialLocal(ctx)
	if err == nil || !d.t.autostart || os.Geteuid() == 0 || !noDaemon(err) {
		return c, err
	}
	if serr := startSessionDaemon(ctx); serr != nil {
		return nil, fmt.Errorf("%w; starting one: %v", err, serr)
	}
	c, err = d.dialLocal(ctx)
	for err != nil && noDaemon(err) && sleepCtx(ctx, 200*time.Millisecond) == nil {
		c, err = d.dialLocal(ctx)
	}
	return c, err
}

// dialLocal connects to the first of the target's sockets that answers.
func (d *ctxDialer) dialLocal(ctx context.Context) (net.Conn, error) {
	var errs []error
	for _, s := range d.t.sockets {
		var nd net.Dialer
		c, err := nd.DialContext(ctx, "unix", s)
		if err == nil {
			d.used = s
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// noDaemon says whether a dial failed for want of a listening daemon.
func noDaemon(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED)
}

// startSessionDaemon starts the user's own daemon as libvirt's client
// would: it goes to the background, and exits after two idle minutes.
func startSessionDaemon(ctx context.Context) error {
	for _, name := range []string{"virtqemud", "libvirtd"} {
		path, err := exec.LookPath(name)
		for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} {
			if err != nil {
				path, err = exec.LookPath(filepath.Join(dir, name))
			}
		}
		if err != nil {
			continue
		}
		// The daemon's parent exits once it listens; its child has
		// /dev/null for streams, so Run does not wait for it.
		if err := exec.CommandContext(ctx, path, "--timeout=120", "--daemon").Run(); err != nil {
			return fmt.Errorf("%s --daemon: %w", path, err)
		}
		return nil
	}
	return errors.New("neither virtqemud nor libvirtd is installed")
}

func (d *ctxDialer) close() {
	if d.conn != nil {
		d.stop()
		_ = d.conn.Close()
	}
}

// dialRemote runs a go-libvirt dialer (which has its own timeout) until
// ctx ends.
func dialRemote(ctx context.Context, dialer socket.Dialer) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := dialer.Dial()
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				_ = r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// Install hints, for messages.
const (
	installHint = "install libvirt's daemon and QEMU (Debian, Ubuntu: apt-get install libvirt-daemon-system qemu-system-x86; Fedora, RHEL: dnf install libvirt-daemon-kvm)"
	startHint   = "start libvirtd (systemctl start libvirtd; with the modular daemons: systemctl start virtqemud.socket virtnetworkd.socket virtstoraged.socket)"
)

// unavailable says what to do when no daemon answered at t's sockets.
func (t target) unavailable(uri string, err error) error {
	if t.remote != nil {
		return fmt.Errorf("libvirt is not available at %s: %v: is libvirtd running there and reachable? (or set --libvirt-uri)", uri, err)
	}
	where := strings.Join(t.sockets, " or ")
	switch {
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("libvirt is not available at %s: %s: permission denied: run as root or as a member of the libvirt group, or use qemu:///session (--libvirt-uri)", uri, where)
	case t.session:
		return fmt.Errorf("libvirt is not available at %s: no daemon listens on %s (%v): %s, and start your own daemon (libvirtd --daemon, or virtqemud --daemon, as this user), or set --libvirt-uri", uri, where, lvMsg(err), installHint)
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("libvirt is not available at %s: no daemon listens on %s (%v): %s and %s, or set --libvirt-uri", uri, where, lvMsg(err), installHint, startHint)
	}
	return fmt.Errorf("libvirt is not available at %s: %s: %v: %s and %s, or set --libvirt-uri", uri, where, lvMsg(err), installHint, startHint)
}

// refused says what to do when the daemon answered but would not open uri
// (no QEMU driver, authentication it asks for that shoal lacks).
func (t target) refused(uri, socket string, err error) error {
	return fmt.Errorf("libvirt is not available at %s: the daemon at %s refused it: %s: %s, or set --libvirt-uri", uri, socket, lvMsg(err), installHint)
}

// lvMsg is a libvirt error's message, or the error's text.
func lvMsg(err error) string {
	var e lv.Error
	if errors.As(err, &e) {
		return e.Message
	}
	if errors.Is(err, lv.ErrInterrupted) {
		return "the connection to libvirt closed before it answered (the operation's time ran out, it was cancelled, or libvirtd stopped)"
	}
	return err.Error()
}

// lvErr wraps a libvirt error with what was being done.
func lvErr(what string, err error) error {
	return fmt.Errorf("%s: %s", what, lvMsg(err))
}

// isCode says whether err is libvirt's error code.
func isCode(err error, code lv.ErrorNumber) bool {
	var e lv.Error
	return errors.As(err, &e) && e.Code == uint32(code)
}

// uuidString formats a libvirt UUID as libvirt does.
func uuidString(u lv.UUID) string {
	b := u[:]
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// isTrue is a libvirt boolean (an int32).
func isTrue(v int32) bool { return v != 0 }
