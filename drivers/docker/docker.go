// Package docker is the driver whose hosts are containers on the local
// Docker Engine, each running systemd, sshd and its own dockerd. It is the
// built-in default: a cluster on one machine with nothing but Docker.
package docker

import (
	"cmp"
	"github.com/shoal-dev/shoal/internal/remote"

	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/drivers/driverutil"
	"github.com/shoal-dev/shoal/internal/validate"
	"github.com/shoal-dev/shoal/templates"
	"github.com/spf13/pflag"
)

// DefaultImage is the node image built from templates/node/Dockerfile:
// `docker build` where a registry is reachable, `make lab-image` offline.
const DefaultImage = "shoal/node:bookworm"

// Labels mark the containers this driver made: the machine's name, and the
// machine's folder, so that a store never takes over another store's host.
const (
	Label    = "dev.shoal.machine"
	DirLabel = "dev.shoal.machine-dir"
)

// hostKeyFile is kept in the machine's folder and copied into the container,
// so the host key is known before the first contact.
const hostKeyFile = "ssh_host_ed25519_key"

// sshWait bounds the wait for a started container's sshd: systemd brings
// it up in seconds, a loaded machine takes longer.
const sshWait = 3 * time.Minute

// Config is the driver's part of config.json and of a cluster file.
type Config struct {
	Image   string `json:"image" hcl:"image,optional"`
	Network string `json:"network" hcl:"network,optional"`
	// Host is the Docker Engine that runs the host containers (default
	// $DOCKER_HOST, else the local socket).
	Host string `json:"host,omitempty" hcl:"host,optional"`
	// Container is the container's name (default shoal-NAME).
	Container string `json:"container,omitempty" hcl:"container,optional"`
}

// Spec registers the driver.
func Spec() *drivers.Spec {
	// Docker accepts two networks of one name: hosts created in parallel
	// must not each make their own.
	netMu := &sync.Mutex{}
	return &drivers.Spec{
		Name:      "docker",
		Short:     "a container on the local Docker Engine running systemd, sshd and its own dockerd",
		NewConfig: func() any { return &Config{Image: DefaultImage, Network: "shoal"} },
		BindFlags: func(fs *pflag.FlagSet, cfg any) {
			c := cfg.(*Config)
			fs.StringVar(&c.Image, "docker-image", c.Image, "docker driver: node image (systemd, sshd, dockerd), built from templates/node: 'docker build', or 'make lab-image' offline")
			fs.StringVar(&c.Network, "docker-network", c.Network, "docker driver: user-defined bridge network of the hosts (created if missing)")
			fs.StringVar(&c.Host, "docker-host", c.Host, "docker driver: the engine that runs the host containers (default $DOCKER_HOST unless it points at a shoal machine, else the local socket)")
		},
		Validate: func(cfg any) error { return cfg.(*Config).validate() },
		New: func(m drivers.Identity, cfg any) (drivers.Driver, error) {
			c := *cfg.(*Config)
			c.Container = cmp.Or(c.Container, "shoal-"+m.Name)
			return &Driver{m: m, cfg: c, netMu: netMu}, nil
		},
	}
}

// validate checks the config. The image is only looked up on the local
// engine, which says clearly when it has no such image; names become
// objects.
func (c *Config) validate() error {
	if strings.TrimSpace(c.Image) == "" {
		return fmt.Errorf("--docker-image is empty")
	}
	if err := validate.ObjectName(c.Network); err != nil {
		return fmt.Errorf("--docker-network: %w", err)
	}
	if c.Container == "" {
		return nil
	}
	if err := validate.ObjectName(c.Container); err != nil {
		return fmt.Errorf("container: %w", err)
	}
	return nil
}

// Driver manages one host container.
type Driver struct {
	m     drivers.Identity
	cfg   Config
	netMu *sync.Mutex
}

func (d *Driver) Name() string { return "docker" }

func (d *Driver) client() (*client.Client, error) {
	// The client negotiates the API version on its first request.
	var opts []client.Opt
	switch {
	case d.cfg.Host != "":
		opts = append(opts, client.WithHost(d.cfg.Host))
	case os.Getenv("DOCKER_MACHINE_NAME") != "":
		// The environment points at a shoal machine ('machine env'): its
		// hosts live on the local engine, not inside that machine.
		opts = append(opts, client.WithHost(client.DefaultDockerHost))
	default:
		opts = append(opts, client.FromEnv)
	}
	c, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker driver: %w", err)
	}
	return c, nil
}

// capabilities is every capability but SYS_RESOURCE: --privileged and
// --cap-add ALL fail where SYS_RESOURCE is not in the bounding set, and
// systemd plus an inner dockerd need the rest.
var capabilities = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
	"LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
	"SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
	"SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE",
	"MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ",
}

func (d *Driver) hostKey() (driverutil.HostKey, error) {
	return driverutil.LoadOrCreateHostKey(d.m.Dir, hostKeyFile)
}

// seedFiles are put into the container before it boots: the login key, the
// host key, and an sshd setting that offers only that host key, so the
// fingerprint shoal pinned is the one the client negotiates.
func (d *Driver) seedFiles() ([]byte, error) {
	key, err := d.hostKey()
	if err != nil {
		return nil, err
	}
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"root/.ssh/authorized_keys", 0o600, []byte(d.m.PublicKey + "\n")},
		{"etc/ssh/ssh_host_ed25519_key", 0o600, key.PrivatePEM},
		{"etc/ssh/ssh_host_ed25519_key.pub", 0o644, []byte(key.Public + "\n")},
		{"etc/ssh/sshd_config.d/shoal.conf", 0o644, templates.SSHDHostKeyConf()},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, f := range files {
		dir := filepath.Dir(f.name)
		if !dirs[dir] {
			dirs[dir] = true
			mode := int64(0o755)
			if dir == "root/.ssh" {
				mode = 0o700
			}
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: mode}); err != nil {
				return nil, err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), tw.Close()
}

func (d *Driver) ensureNetwork(ctx context.Context, c *client.Client) error {
	d.netMu.Lock()
	defer d.netMu.Unlock()
	_, err := c.NetworkInspect(ctx, d.cfg.Network, client.NetworkInspectOptions{})
	if err == nil {
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return err
	}
	_, err = c.NetworkCreate(ctx, d.cfg.Network, client.NetworkCreateOptions{Driver: "bridge", Labels: map[string]string{Label: ""}})
	if cerrdefs.IsConflict(err) {
		return nil // made by a parallel create
	}
	return err
}

// Create makes and starts the container; it returns when sshd answers.
func (d *Driver) Create(ctx context.Context) error {
	c, err := d.client()
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("docker driver: the local Docker Engine does not answer (%v); start dockerd or set DOCKER_HOST", err)
	}
	if exists, err := d.owned(ctx, c); err != nil {
		return err
	} else if exists {
		return d.start(ctx, c)
	}
	if err := d.checkImage(ctx, c); err != nil {
		return err
	}
	if err := d.ensureNetwork(ctx, c); err != nil {
		return fmt.Errorf("docker driver: network %s: %w", d.cfg.Network, err)
	}
	seed, err := d.seedFiles()
	if err != nil {
		return err
	}
	created, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image:    d.cfg.Image,
			Hostname: d.m.Name,
			Cmd:      []string{"/sbin/init"},
			Labels:   map[string]string{Label: d.m.Name, DirLabel: d.m.Dir},
			// The inner dockerd needs a real filesystem under it.
			Volumes:    map[string]struct{}{"/var/lib/docker": {}},
			StopSignal: "SIGRTMIN+3", // systemd's clean shutdown
		},
		HostConfig: &container.HostConfig{
			CapAdd:      capabilities,
			SecurityOpt: []string{"seccomp=unconfined", "apparmor=unconfined"},
			// The API's form of --security-opt systempaths=unconfined:
			// systemd and dockerd need /proc and /sys unmasked.
			MaskedPaths:   []string{},
			ReadonlyPaths: []string{},
			Tmpfs:         map[string]string{"/run": "", "/run/lock": ""},
			Binds:         []string{"/sys/fs/cgroup:/sys/fs/cgroup"},
			Resources:     container.Resources{DeviceCgroupRules: []string{"a *:* rwm"}},
			NetworkMode:   container.NetworkMode(d.cfg.Network),
		},
		Name: d.cfg.Container,
	})
	if err != nil {
		return fmt.Errorf("docker driver: create container %s: %w", d.cfg.Container, err)
	}
	if _, err := c.CopyToContainer(ctx, created.ID, client.CopyToContainerOptions{DestinationPath: "/", Content: bytes.NewReader(seed)}); err != nil {
		return fmt.Errorf("docker driver: copy keys into %s: %w", d.cfg.Container, err)
	}
	return d.start(ctx, c)
}

// checkImage checks that the local engine has the node image; without it
// the error says how to get one.
func (d *Driver) checkImage(ctx context.Context, c *client.Client) error {
	_, err := c.ImageInspect(ctx, d.cfg.Image)
	if err == nil || !cerrdefs.IsNotFound(err) {
		return err
	}
	_, statErr := os.Stat(filepath.Join("templates", "node", "Dockerfile"))
	return fmt.Errorf("docker driver: image %s is not on the local engine: %s", d.cfg.Image, missingImageHint(d.cfg.Image, registryReachable(ctx, c), statErr == nil))
}

// owned tells whether the machine's container exists; one of that name made
// for another machine (another store) is an error, never taken over.
func (d *Driver) owned(ctx context.Context, c *client.Client) (bool, error) {
	info, err := d.inspect(ctx, c)
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if owner := info.Config.Labels[DirLabel]; owner != d.m.Dir {
		return true, fmt.Errorf("docker driver: a container named %s exists but is not this machine's (it belongs to %q): remove it, or give the machine another name", d.cfg.Container, owner)
	}
	return true, nil
}

func (d *Driver) start(ctx context.Context, c *client.Client) error {
	if _, err := c.ContainerStart(ctx, d.cfg.Container, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("docker driver: start %s: %w", d.cfg.Container, err)
	}
	ep, err := d.endpoint(ctx, c)
	if err != nil {
		return err
	}
	return driverutil.WaitSSH(ctx, ep.Address(), sshWait)
}

func (d *Driver) Start(ctx context.Context) error {
	c, err := d.client()
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := d.owned(ctx, c); err != nil {
		return err
	}
	return d.start(ctx, c)
}

func (d *Driver) Stop(ctx context.Context) error {
	c, err := d.client()
	if err != nil {
		return err
	}
	defer c.Close()
	timeout := 20
	_, err = c.ContainerStop(ctx, d.cfg.Container, client.ContainerStopOptions{Timeout: &timeout})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return err
}

func (d *Driver) Kill(ctx context.Context) error {
	c, err := d.client()
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.ContainerKill(ctx, d.cfg.Container, client.ContainerKillOptions{Signal: "KILL"})
	if cerrdefs.IsNotFound(err) || cerrdefs.IsConflict(err) { // missing, or not running
		return nil
	}
	return err
}

func (d *Driver) Remove(ctx context.Context) error {
	c, err := d.client()
	if err != nil {
		return err
	}
	defer c.Close()
	if exists, err := d.owned(ctx, c); err != nil || !exists {
		return err
	}
	_, err = c.ContainerRemove(ctx, d.cfg.Container, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return err
	}
	d.removeNetworkIfLast(ctx, c)
	return nil
}

// removeNetworkIfLast removes the hosts' network (one shoal made) with its
// last host; best effort.
func (d *Driver) removeNetworkIfLast(ctx context.Context, c *client.Client) {
	list, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("network", d.cfg.Network)})
	if err != nil || len(list.Items) > 0 {
		return
	}
	n, err := c.NetworkInspect(ctx, d.cfg.Network, client.NetworkInspectOptions{})
	if err != nil {
		return
	}
	if _, ours := n.Network.Labels[Label]; ours {
		_, _ = c.NetworkRemove(ctx, d.cfg.Network, client.NetworkRemoveOptions{})
	}
}

func (d *Driver) state(ctx context.Context, c *client.Client) (drivers.State, error) {
	info, err := d.inspect(ctx, c)
	if cerrdefs.IsNotFound(err) {
		return drivers.NotFound, nil
	}
	if err != nil {
		return drivers.Unknown, err
	}
	if info.Config.Labels[DirLabel] != d.m.Dir {
		return drivers.NotFound, nil // another machine's container of that name
	}
	switch {
	case info.State.Paused:
		return drivers.Paused, nil
	case info.State.Restarting:
		return drivers.Starting, nil
	case info.State.Running:
		return drivers.Running, nil
	}
	return drivers.Stopped, nil
}

func (d *Driver) State(ctx context.Context) (drivers.State, error) {
	c, err := d.client()
	if err != nil {
		return drivers.Unknown, err
	}
	defer c.Close()
	return d.state(ctx, c)
}

func (d *Driver) endpoint(ctx context.Context, c *client.Client) (drivers.Endpoint, error) {
	info, err := d.inspect(ctx, c)
	if err != nil {
		return drivers.Endpoint{}, err
	}
	ip := ""
	if info.NetworkSettings != nil {
		if n, ok := info.NetworkSettings.Networks[d.cfg.Network]; ok {
			ip = ipString(n.IPAddress)
		}
	}
	if ip == "" {
		return drivers.Endpoint{}, fmt.Errorf("container %s has no address on network %s (is it running?)", d.cfg.Container, d.cfg.Network)
	}
	key, err := d.hostKey()
	if err != nil {
		return drivers.Endpoint{}, err
	}
	return drivers.Endpoint{Endpoint: remote.Endpoint{Host: ip, Port: 22, User: "root", KeyPath: d.m.PrivateKeyPath, HostKeyFingerprint: key.Fingerprint}}, nil
}

func (d *Driver) SSH(ctx context.Context) (drivers.Endpoint, error) {
	c, err := d.client()
	if err != nil {
		return drivers.Endpoint{}, err
	}
	defer c.Close()
	return d.endpoint(ctx, c)
}

// inspect reads the machine's container.
func (d *Driver) inspect(ctx context.Context, c *client.Client) (container.InspectResponse, error) {
	r, err := c.ContainerInspect(ctx, d.cfg.Container, client.ContainerInspectOptions{})
	return r.Container, err
}

// ipString is a container's address as the old client gave it ("" for none).
func ipString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
