//go:build cgo && libvirt_dlopen

package libvirt

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/internal/cloudinit"
	lv "libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"
)

// Compiled says whether this build can talk to libvirt.
const Compiled = true

// Driver manages one libvirt domain and its volumes.
type Driver struct {
	m   drivers.Machine
	cfg Config
}

var _ drivers.Driver = (*Driver)(nil)

func newDriver(m drivers.Machine, cfg Config) (drivers.Driver, error) {
	return &Driver{m: m, cfg: cfg}, nil
}

// Name implements drivers.Driver.
func (d *Driver) Name() string { return Name }

// connect opens a connection; every operation has its own, closed at its end.
func (d *Driver) connect() (*lv.Connect, error) {
	conn, err := lv.NewConnect(d.cfg.URI)
	if err != nil {
		return nil, unavailable(d.cfg.URI, err)
	}
	return conn, nil
}

// unavailable turns a failed connection into an error that says what to do.
func unavailable(uri string, err error) error {
	msg := lvMsg(err)
	if strings.Contains(msg, "libvirt.so") {
		return fmt.Errorf("libvirt is not available: cannot load the libvirt library (%s): install libvirt-daemon-system (or libvirt0 to reach a remote libvirtd)", msg)
	}
	return fmt.Errorf("libvirt is not available at %s: %s: install libvirt-daemon-system and start libvirtd, or set --libvirt-uri", uri, msg)
}

// lvMsg is a libvirt error's message without the binding's decoration.
func lvMsg(err error) string {
	var e lv.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

// lvErr wraps a libvirt error with what was being done.
func lvErr(what string, err error) error {
	return fmt.Errorf("%s: %s", what, lvMsg(err))
}

func isCode(err error, code lv.ErrorNumber) bool {
	var e lv.Error
	return errors.As(err, &e) && e.Code == code
}

func closeConn(conn *lv.Connect) { _, _ = conn.Close() }

// domainName is the libvirt domain of the machine.
func (d *Driver) domainName() string { return d.m.Name }

// loadOrInitState returns the machine's state, with the names, MAC and
// instance ID chosen (and saved) on first use.
func (d *Driver) loadOrInitState() (machineState, error) {
	st, _, err := loadState(d.m.Dir)
	if err != nil {
		return st, err
	}
	changed := false
	set := func(field *string, v string) {
		if *field == "" {
			*field, changed = v, true
		}
	}
	set(&st.Domain, d.domainName())
	set(&st.Network, d.cfg.Network)
	set(&st.Pool, d.cfg.Pool)
	if st.MAC == "" {
		mac, err := randomMAC()
		if err != nil {
			return st, err
		}
		set(&st.MAC, mac)
	}
	if st.InstanceID == "" {
		b := make([]byte, 8)
		if _, err := rand.Read(b); err != nil {
			return st, fmt.Errorf("instance id: %w", err)
		}
		set(&st.InstanceID, "shoal-"+d.m.Name+"-"+hex.EncodeToString(b))
	}
	if changed {
		if err := saveState(d.m.Dir, st); err != nil {
			return st, err
		}
	}
	return st, nil
}

// lookupDomain returns the machine's domain, nil when there is none. A
// domain of the machine's name that shoal did not make for this machine is
// an error: it is never touched.
func (d *Driver) lookupDomain(conn *lv.Connect, st machineState) (*lv.Domain, error) {
	name := st.Domain
	if name == "" {
		name = d.domainName()
	}
	dom, err := conn.LookupDomainByName(name)
	if isCode(err, lv.ERR_NO_DOMAIN) {
		return nil, nil
	}
	if err != nil {
		return nil, lvErr("look up domain "+name, err)
	}
	uuid, err := dom.GetUUIDString()
	if err != nil {
		dom.Free()
		return nil, lvErr("domain "+name, err)
	}
	if st.UUID == "" || !strings.EqualFold(uuid, st.UUID) {
		dom.Free()
		return nil, &foreignDomainError{name: name, dir: d.m.Dir}
	}
	return dom, nil
}

type foreignDomainError struct{ name, dir string }

func (e *foreignDomainError) Error() string {
	return fmt.Sprintf("a libvirt domain named %q exists that shoal did not make for machine folder %s: choose another machine name, or remove that domain (virsh undefine %s)", e.name, e.dir, e.name)
}

// Create makes the machine's disk, seed, domain and address reservation,
// starts it and returns when SSH answers. Run again after an interruption,
// it finishes the job.
func (d *Driver) Create(ctx context.Context) error {
	// A cancelled run makes nothing (the caller removes only what a
	// successful Create made).
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := withDefaultTimeout(ctx, bootTimeout)
	defer cancel()
	if d.cfg.Image == "" {
		return errors.New("libvirt driver: --libvirt-image is required")
	}
	st, err := d.loadOrInitState()
	if err != nil {
		return err
	}
	hostPriv, hostPub, err := ensureHostKey(d.m.Dir)
	if err != nil {
		return err
	}
	if st.HostKeyFP, err = cloudinit.HostKeyFingerprint(hostPub); err != nil {
		return err
	}
	conn, err := d.connect()
	if err != nil {
		return err
	}
	defer closeConn(conn)

	dom, err := d.lookupDomain(conn, st)
	if err != nil {
		return err
	}
	if dom != nil {
		// Made before: start it if needed and wait, as Start does.
		defer dom.Free()
		return d.boot(ctx, conn, dom, &st)
	}

	network, err := ensureNetwork(conn, st.Network)
	if err != nil {
		return err
	}
	network.Free()
	pool, _, err := ensurePool(conn, st.Pool)
	if err != nil {
		return err
	}
	defer pool.Free()

	img, err := resolveImage(ctx, d.cfg.Image, d.cfg.ImageChecksum, cacheDir(d.m.Dir))
	if err != nil {
		return err
	}
	basePath, err := d.ensureBase(ctx, conn, pool, img)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	st.BaseVolume = baseVolumeName(img)

	capacity := uint64(d.cfg.DiskSize) << 30
	if capacity < img.VirtualSize {
		capacity = img.VirtualSize
	}
	diskPath, err := d.ensureDisk(pool, &st, capacity, basePath, img.Format)
	if err != nil {
		return err
	}
	seed := cloudinit.Seed{
		InstanceID:        st.InstanceID,
		Hostname:          d.m.Name,
		User:              d.cfg.SSHUser,
		AuthorizedKeys:    []string{d.m.PublicKey},
		HostKeyPrivatePEM: hostPriv,
		HostKeyPublic:     hostPub,
	}
	iso, err := seed.ISO()
	if err != nil {
		return fmt.Errorf("libvirt driver: %w", err)
	}
	seedPath, err := d.ensureSeed(ctx, conn, pool, &st, iso)
	if err != nil {
		return err
	}

	caps, err := conn.GetCapabilities()
	if err != nil {
		return lvErr("libvirt capabilities", err)
	}
	hasKVM, err := capsHaveKVM(caps)
	if err != nil {
		return err
	}
	st.DomainType, _ = chooseDomainType(ctx, d.cfg.DomainType, hasKVM, isLocalURI(d.cfg.URI))
	if d.cfg.URI == DefaultURI {
		st.ConsoleLog = filepath.Join("/var/log/libvirt/qemu", st.Domain+"-serial.log")
	}
	spec := domainSpec{
		Name:       st.Domain,
		Type:       st.DomainType,
		MemoryMiB:  d.cfg.Memory,
		CPUs:       d.cfg.CPUs,
		DiskPath:   diskPath,
		BasePath:   basePath,
		BaseFormat: img.Format,
		SeedPath:   seedPath,
		Network:    st.Network,
		MAC:        st.MAC,
		ConsoleLog: st.ConsoleLog,
		MachineDir: d.m.Dir,
	}
	xmlDoc, err := domainXML(spec).Marshal()
	if err != nil {
		return fmt.Errorf("domain XML: %w", err)
	}
	dom, err = conn.DomainDefineXML(xmlDoc)
	if err != nil {
		return lvErr("define domain "+st.Domain, err)
	}
	defer dom.Free()
	if st.UUID, err = dom.GetUUIDString(); err != nil {
		return lvErr("domain "+st.Domain, err)
	}
	if err := saveState(d.m.Dir, st); err != nil {
		return err
	}
	return d.boot(ctx, conn, dom, &st)
}

// ensureNetwork returns the network, started when it was not.
func ensureNetwork(conn *lv.Connect, name string) (*lv.Network, error) {
	n, err := conn.LookupNetworkByName(name)
	if err != nil {
		if isCode(err, lv.ERR_NO_NETWORK) {
			return nil, fmt.Errorf("libvirt network %q does not exist (virsh net-list --all; --libvirt-network)", name)
		}
		return nil, lvErr("look up network "+name, err)
	}
	active, err := n.IsActive()
	if err != nil {
		n.Free()
		return nil, lvErr("network "+name, err)
	}
	if !active {
		if err := n.Create(); err != nil {
			n.Free()
			return nil, lvErr("start network "+name, err)
		}
	}
	x, err := n.GetXMLDesc(0)
	if err != nil {
		n.Free()
		return nil, lvErr("network "+name, err)
	}
	if ok, err := networkHasDHCP(x); err != nil || !ok {
		n.Free()
		if err == nil {
			err = errors.New("it has no IPv4 DHCP range: the machine could not get an address")
		}
		return nil, fmt.Errorf("libvirt network %q: %w", name, err)
	}
	return n, nil
}

// ensurePool returns the pool (active, refreshed) and its folder. The
// default pool is created at DefaultPoolPath when missing.
func ensurePool(conn *lv.Connect, name string) (*lv.StoragePool, string, error) {
	pool, err := conn.LookupStoragePoolByName(name)
	if isCode(err, lv.ERR_NO_STORAGE_POOL) && name == DefaultPool {
		x, merr := poolXML(name, DefaultPoolPath).Marshal()
		if merr != nil {
			return nil, "", fmt.Errorf("pool XML: %w", merr)
		}
		if pool, err = conn.StoragePoolDefineXML(x, 0); err != nil {
			return nil, "", lvErr("define storage pool "+name, err)
		}
		if err := pool.Build(0); err != nil {
			pool.Free()
			return nil, "", lvErr("build storage pool "+name, err)
		}
		_ = pool.SetAutostart(true) // a convenience: not worth failing for
	} else if isCode(err, lv.ERR_NO_STORAGE_POOL) {
		return nil, "", fmt.Errorf("libvirt storage pool %q does not exist (virsh pool-list --all; --libvirt-pool)", name)
	} else if err != nil {
		return nil, "", lvErr("look up storage pool "+name, err)
	}
	active, err := pool.IsActive()
	if err != nil {
		pool.Free()
		return nil, "", lvErr("storage pool "+name, err)
	}
	if !active {
		if err := pool.Create(0); err != nil {
			pool.Free()
			return nil, "", lvErr("start storage pool "+name, err)
		}
	}
	// Volumes made or removed outside libvirt become visible.
	_ = pool.Refresh(0)
	x, err := pool.GetXMLDesc(0)
	if err != nil {
		pool.Free()
		return nil, "", lvErr("storage pool "+name, err)
	}
	var px libvirtxml.StoragePool
	if err := px.Unmarshal(x); err != nil {
		pool.Free()
		return nil, "", fmt.Errorf("storage pool %s XML: %w", name, err)
	}
	path := ""
	if px.Target != nil {
		path = px.Target.Path
	}
	return pool, path, nil
}

// ensureBase returns the path of the base volume holding img, uploading it
// once. QEMU runs as its own user and cannot read images in home folders:
// every disk it opens lives in the pool.
func (d *Driver) ensureBase(ctx context.Context, conn *lv.Connect, pool *lv.StoragePool, img sourceImage) (string, error) {
	// One upload at a time: two machines created together share one base.
	unlock, err := lockFile(ctx, filepath.Join(cacheDir(d.m.Dir), "base.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	name := baseVolumeName(img)
	vol, err := pool.LookupStorageVolByName(name)
	if err == nil {
		defer vol.Free()
		complete := true
		if img.Format == formatQCOW2 {
			// An interrupted upload leaves a qcow2 volume shorter than its
			// image (a raw volume has its full size from the start).
			info, ierr := vol.GetInfoFlags(lv.STORAGE_VOL_GET_PHYSICAL)
			complete = ierr == nil && info.Allocation >= uint64(img.FileSize)
		}
		if complete {
			p, err := vol.GetPath()
			if err != nil {
				return "", lvErr("volume "+name, err)
			}
			return p, nil
		}
		if err := vol.Delete(0); err != nil {
			return "", lvErr("delete incomplete base volume "+name, err)
		}
	} else if !isCode(err, lv.ERR_NO_STORAGE_VOL) {
		return "", lvErr("look up volume "+name, err)
	}

	x, err := volumeXML(name, img.VirtualSize, img.Format, "", "", "0644").Marshal()
	if err != nil {
		return "", fmt.Errorf("volume XML: %w", err)
	}
	vol, err = pool.StorageVolCreateXML(x, 0)
	if err != nil {
		return "", lvErr("create base volume "+name, err)
	}
	defer vol.Free()
	f, err := os.Open(img.Path)
	if err != nil {
		_ = vol.Delete(0)
		return "", fmt.Errorf("image: %w", err)
	}
	defer f.Close()
	sum, err := upload(ctx, conn, vol, f, img.FileSize)
	if err == nil && d.cfg.ImageChecksum != "" && !isURL(d.cfg.Image) {
		// Downloads were checked as they arrived; local files here.
		if want := strings.ToLower(strings.TrimPrefix(d.cfg.ImageChecksum, "sha256:")); sum != want {
			err = fmt.Errorf("image %s: sha256 %s, want %s", img.Path, sum, want)
		}
	}
	if err != nil {
		_ = vol.Delete(0)
		return "", fmt.Errorf("upload image to volume %s: %w", name, err)
	}
	p, err := vol.GetPath()
	if err != nil {
		return "", lvErr("volume "+name, err)
	}
	return p, nil
}

// upload streams size bytes of r into vol and returns their sha256.
func upload(ctx context.Context, conn *lv.Connect, vol *lv.StorageVol, r io.Reader, size int64) (string, error) {
	stream, err := conn.NewStream(0)
	if err != nil {
		return "", lvErr("stream", err)
	}
	defer stream.Free()
	if err := vol.Upload(stream, 0, uint64(size), 0); err != nil {
		return "", lvErr("upload", err)
	}
	sum := sha256.New()
	buf := make([]byte, 4<<20)
	for {
		if err := ctx.Err(); err != nil {
			_ = stream.Abort()
			return "", err
		}
		n, rerr := r.Read(buf)
		if n > 0 {
			sum.Write(buf[:n])
			for sent := 0; sent < n; {
				m, err := stream.Send(buf[sent:n])
				if err != nil {
					_ = stream.Abort()
					return "", lvErr("upload", err)
				}
				sent += m
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			_ = stream.Abort()
			return "", rerr
		}
	}
	if err := stream.Finish(); err != nil {
		return "", lvErr("upload", err)
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}

// ensureDisk returns the path of the machine's overlay disk, made on first
// use. A volume of that name that this machine did not make is an error.
func (d *Driver) ensureDisk(pool *lv.StoragePool, st *machineState, capacity uint64, basePath, baseFormat string) (string, error) {
	name := st.Domain + ".qcow2"
	vol, err := pool.LookupStorageVolByName(name)
	switch {
	case err == nil:
		defer vol.Free()
		if st.DiskVolume != name {
			return "", fmt.Errorf("volume %s exists in pool %s and was not made for this machine: remove it (virsh vol-delete --pool %s %s) or choose another name", name, st.Pool, st.Pool, name)
		}
	case isCode(err, lv.ERR_NO_STORAGE_VOL):
		// Recorded first: an interrupted run's volume is known to be ours.
		st.DiskVolume = name
		if err := saveState(d.m.Dir, *st); err != nil {
			return "", err
		}
		x, err := volumeXML(name, capacity, formatQCOW2, basePath, baseFormat, "").Marshal()
		if err != nil {
			return "", fmt.Errorf("volume XML: %w", err)
		}
		if vol, err = pool.StorageVolCreateXML(x, 0); err != nil {
			return "", lvErr("create disk volume "+name, err)
		}
		defer vol.Free()
	default:
		return "", lvErr("look up volume "+name, err)
	}
	p, err := vol.GetPath()
	if err != nil {
		return "", lvErr("volume "+name, err)
	}
	return p, nil
}

// ensureSeed (re)writes the machine's seed ISO volume.
func (d *Driver) ensureSeed(ctx context.Context, conn *lv.Connect, pool *lv.StoragePool, st *machineState, iso []byte) (string, error) {
	name := st.Domain + "-seed.iso"
	if vol, err := pool.LookupStorageVolByName(name); err == nil {
		ours := st.SeedVolume == name
		if ours {
			err = vol.Delete(0)
		}
		vol.Free()
		if !ours {
			return "", fmt.Errorf("volume %s exists in pool %s and was not made for this machine: remove it (virsh vol-delete --pool %s %s) or choose another name", name, st.Pool, st.Pool, name)
		}
		if err != nil {
			return "", lvErr("delete old seed "+name, err)
		}
	} else if !isCode(err, lv.ERR_NO_STORAGE_VOL) {
		return "", lvErr("look up volume "+name, err)
	}
	st.SeedVolume = name
	if err := saveState(d.m.Dir, *st); err != nil {
		return "", err
	}
	x, err := volumeXML(name, uint64(len(iso)), formatRaw, "", "", "0644").Marshal()
	if err != nil {
		return "", fmt.Errorf("volume XML: %w", err)
	}
	vol, err := pool.StorageVolCreateXML(x, 0)
	if err != nil {
		return "", lvErr("create seed volume "+name, err)
	}
	defer vol.Free()
	if _, err := upload(ctx, conn, vol, bytes.NewReader(iso), int64(len(iso))); err != nil {
		return "", fmt.Errorf("upload seed %s: %w", name, err)
	}
	p, err := vol.GetPath()
	if err != nil {
		return "", lvErr("volume "+name, err)
	}
	return p, nil
}

// boot starts the domain unless it runs, waits for its DHCP lease, makes
// the lease a reservation, and waits for SSH.
func (d *Driver) boot(ctx context.Context, conn *lv.Connect, dom *lv.Domain, st *machineState) error {
	active, err := dom.IsActive()
	if err != nil {
		return lvErr("domain "+st.Domain, err)
	}
	if !active {
		if err := dom.Create(); err != nil {
			return lvErr("start domain "+st.Domain, err)
		}
	}
	network, err := ensureNetwork(conn, st.Network)
	if err != nil {
		return err
	}
	defer network.Free()
	ip, err := d.waitLease(ctx, network, dom, st)
	if err != nil {
		return err
	}
	if err := ensureReservation(network, st.MAC, ip); err != nil {
		return err
	}
	st.IP, st.Reserved = ip, ip
	if err := saveState(d.m.Dir, *st); err != nil {
		return err
	}
	if err := waitSSH(ctx, net.JoinHostPort(ip, "22")); err != nil {
		return d.bootError(st, err)
	}
	return nil
}

// bootError adds where to look when a guest does not come up.
func (d *Driver) bootError(st *machineState, err error) error {
	if st.ConsoleLog != "" {
		return fmt.Errorf("machine %s: %w (the guest's console is in %s)", d.m.Name, err, st.ConsoleLog)
	}
	return fmt.Errorf("machine %s: %w (virsh console %s shows the guest's console)", d.m.Name, err, st.Domain)
}

// waitLease waits for the network's DHCP lease of the machine's MAC.
func (d *Driver) waitLease(ctx context.Context, network *lv.Network, dom *lv.Domain, st *machineState) (string, error) {
	for {
		if ip, err := leaseIP(network, st.MAC); err != nil {
			return "", err
		} else if ip != "" {
			return ip, nil
		}
		if state, _, err := dom.GetState(); err == nil && state != lv.DOMAIN_RUNNING && state != lv.DOMAIN_BLOCKED {
			return "", d.bootError(st, fmt.Errorf("domain stopped while booting (state %s)", mapState(state)))
		}
		if err := sleepCtx(ctx, pollInterval); err != nil {
			return "", d.bootError(st, fmt.Errorf("waiting for a DHCP lease for %s on network %s: %w", st.MAC, st.Network, err))
		}
	}
}

// leaseIP returns the IPv4 address leased to mac, "" when none.
func leaseIP(network *lv.Network, mac string) (string, error) {
	leases, err := network.GetDHCPLeases()
	if err != nil {
		return "", lvErr("DHCP leases", err)
	}
	var best lv.NetworkDHCPLease
	for _, l := range leases {
		if l.Type == lv.IP_ADDR_TYPE_IPV4 && sameMAC(l.Mac, mac) && (best.IPaddr == "" || l.ExpiryTime.After(best.ExpiryTime)) {
			best = l
		}
	}
	return best.IPaddr, nil
}

// reservationScopes are the network definitions a reservation is kept in:
// the running one (dnsmasq) and the persistent one (survives restarts).
func reservationScopes(network *lv.Network) ([]lv.NetworkUpdateFlags, error) {
	var scopes []lv.NetworkUpdateFlags
	active, err := network.IsActive()
	if err != nil {
		return nil, lvErr("network", err)
	}
	if active {
		scopes = append(scopes, lv.NETWORK_UPDATE_AFFECT_LIVE)
	}
	persistent, err := network.IsPersistent()
	if err != nil {
		return nil, lvErr("network", err)
	}
	if persistent {
		scopes = append(scopes, lv.NETWORK_UPDATE_AFFECT_CONFIG)
	}
	return scopes, nil
}

func scopeXML(network *lv.Network, scope lv.NetworkUpdateFlags) (string, error) {
	var flags lv.NetworkXMLFlags
	if scope == lv.NETWORK_UPDATE_AFFECT_CONFIG {
		flags = lv.NETWORK_XML_INACTIVE
	}
	x, err := network.GetXMLDesc(flags)
	if err != nil && flags != 0 {
		// Hypervisors without separate persistent definitions (the test
		// driver) refuse the flag: their one definition is both.
		x, err = network.GetXMLDesc(0)
	}
	if err != nil {
		return "", lvErr("network XML", err)
	}
	return x, nil
}

// ensureReservation makes the network give ip to mac from now on, live and
// in its persistent definition: the machine keeps its address across
// restarts and lease expiry.
func ensureReservation(network *lv.Network, mac, ip string) error {
	scopes, err := reservationScopes(network)
	if err != nil {
		return err
	}
	want, err := dhcpHostXML(mac, ip)
	if err != nil {
		return err
	}
	for _, scope := range scopes {
		x, err := scopeXML(network, scope)
		if err != nil {
			return err
		}
		hosts, err := reservationsFor(x, mac)
		if err != nil {
			return err
		}
		have := false
		for _, h := range hosts {
			if h.IP == ip {
				have = true
				continue
			}
			if err := deleteHost(network, h, scope); err != nil {
				return err
			}
		}
		if have {
			continue
		}
		if err := network.Update(lv.NETWORK_UPDATE_COMMAND_ADD_LAST, lv.NETWORK_SECTION_IP_DHCP_HOST, -1, want, scope); err != nil {
			return lvErr(fmt.Sprintf("reserve %s for %s in the network", ip, mac), err)
		}
	}
	return nil
}

func deleteHost(network *lv.Network, h libvirtxml.NetworkDHCPHost, scope lv.NetworkUpdateFlags) error {
	x, err := h.Marshal()
	if err != nil {
		return err
	}
	if err := network.Update(lv.NETWORK_UPDATE_COMMAND_DELETE, lv.NETWORK_SECTION_IP_DHCP_HOST, -1, x, scope); err != nil {
		return lvErr("delete DHCP reservation "+x, err)
	}
	return nil
}

// removeReservations deletes every DHCP host entry for mac.
func removeReservations(network *lv.Network, mac string) error {
	scopes, err := reservationScopes(network)
	if err != nil {
		return err
	}
	var errs []error
	for _, scope := range scopes {
		x, err := scopeXML(network, scope)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		hosts, err := reservationsFor(x, mac)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, h := range hosts {
			errs = append(errs, deleteHost(network, h, scope))
		}
	}
	return errors.Join(errs...)
}

// Start starts the stopped machine and returns when SSH answers.
func (d *Driver) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := withDefaultTimeout(ctx, bootTimeout)
	defer cancel()
	st, conn, dom, err := d.open()
	if err != nil {
		return err
	}
	defer closeConn(conn)
	defer dom.Free()
	return d.boot(ctx, conn, dom, &st)
}

// open returns the state, a connection and the domain, which must exist.
func (d *Driver) open() (machineState, *lv.Connect, *lv.Domain, error) {
	st, _, err := loadState(d.m.Dir)
	if err != nil {
		return st, nil, nil, err
	}
	conn, err := d.connect()
	if err != nil {
		return st, nil, nil, err
	}
	dom, err := d.lookupDomain(conn, st)
	if err == nil && dom == nil {
		err = fmt.Errorf("machine %s: its libvirt domain does not exist (removed outside shoal?): remove the machine and create it again", d.m.Name)
	}
	if err != nil {
		closeConn(conn)
		return st, nil, nil, err
	}
	return st, conn, dom, nil
}

// Stop presses the power button (ACPI) and waits for the guest to power
// off; one that has not after stopTimeout is destroyed.
func (d *Driver) Stop(ctx context.Context) error {
	st, conn, dom, err := d.open()
	if err != nil {
		return err
	}
	defer closeConn(conn)
	defer dom.Free()
	deadline := time.Now().Add(stopTimeout)
	var pressed time.Time
	for {
		state, _, err := dom.GetState()
		if err != nil {
			return lvErr("domain "+st.Domain, err)
		}
		if state == lv.DOMAIN_SHUTOFF || state == lv.DOMAIN_CRASHED {
			return nil
		}
		if time.Now().After(deadline) {
			if err := dom.Destroy(); err != nil && !isCode(err, lv.ERR_OPERATION_INVALID) {
				return lvErr("destroy domain "+st.Domain+" after the ACPI shutdown timed out", err)
			}
			return nil
		}
		if time.Since(pressed) >= shutdownResend {
			// "domain is not running" races with the state read: ignored.
			if err := dom.Shutdown(); err != nil && !isCode(err, lv.ERR_OPERATION_INVALID) {
				return lvErr("shut down domain "+st.Domain, err)
			}
			pressed = time.Now()
		}
		if err := sleepCtx(ctx, pollInterval); err != nil {
			return fmt.Errorf("machine %s: waiting for the guest to power off: %w", d.m.Name, err)
		}
	}
}

// Kill powers the machine off at once.
func (d *Driver) Kill(ctx context.Context) error {
	st, conn, dom, err := d.open()
	if err != nil {
		return err
	}
	defer closeConn(conn)
	defer dom.Free()
	if err := dom.Destroy(); err != nil && !isCode(err, lv.ERR_OPERATION_INVALID) {
		return lvErr("destroy domain "+st.Domain, err)
	}
	return nil
}

// Remove deletes the domain (and its NVRAM), the machine's disk and seed
// volumes and its DHCP reservation. The shared base volume stays. What is
// gone already is skipped, so Remove can be run again.
func (d *Driver) Remove(ctx context.Context) error {
	st, found, err := loadState(d.m.Dir)
	if err != nil {
		return err
	}
	if !found {
		return nil // Create never got as far as making anything
	}
	conn, err := d.connect()
	if err != nil {
		return err
	}
	defer closeConn(conn)
	var errs []error
	dom, err := d.lookupDomain(conn, st)
	var foreign *foreignDomainError
	switch {
	case errors.As(err, &foreign):
		// Not ours: left alone, the rest of the machine is still removed.
	case err != nil:
		return err
	case dom != nil:
		if err := dom.Destroy(); err != nil && !isCode(err, lv.ERR_OPERATION_INVALID) {
			errs = append(errs, lvErr("destroy domain "+st.Domain, err))
		}
		flags := lv.DOMAIN_UNDEFINE_NVRAM | lv.DOMAIN_UNDEFINE_MANAGED_SAVE | lv.DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | lv.DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
		if err := dom.UndefineFlags(flags); err != nil {
			// Hypervisors without some of these features refuse the flags.
			if err2 := dom.Undefine(); err2 != nil {
				errs = append(errs, lvErr("undefine domain "+st.Domain, err))
			}
		}
		dom.Free()
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	if st.DiskVolume != "" || st.SeedVolume != "" {
		pool, err := conn.LookupStoragePoolByName(st.Pool)
		switch {
		case isCode(err, lv.ERR_NO_STORAGE_POOL):
		case err != nil:
			errs = append(errs, lvErr("look up storage pool "+st.Pool, err))
		default:
			_ = pool.Refresh(0)
			for _, name := range []string{st.DiskVolume, st.SeedVolume} {
				if name == "" {
					continue
				}
				vol, err := pool.LookupStorageVolByName(name)
				if isCode(err, lv.ERR_NO_STORAGE_VOL) {
					continue
				}
				if err != nil {
					errs = append(errs, lvErr("look up volume "+name, err))
					continue
				}
				if err := vol.Delete(0); err != nil {
					errs = append(errs, lvErr("delete volume "+name, err))
				}
				vol.Free()
			}
			pool.Free()
		}
	}

	if st.MAC != "" {
		network, err := conn.LookupNetworkByName(st.Network)
		switch {
		case isCode(err, lv.ERR_NO_NETWORK):
		case err != nil:
			errs = append(errs, lvErr("look up network "+st.Network, err))
		default:
			errs = append(errs, removeReservations(network, st.MAC))
			network.Free()
		}
	}
	if st.ConsoleLog != "" && isLocalURI(d.cfg.URI) {
		// Logs: not worth failing rm for. libvirt keeps QEMU's own log of
		// an undefined domain beside the console's.
		_ = os.Remove(st.ConsoleLog)
		_ = os.Remove(filepath.Join(filepath.Dir(st.ConsoleLog), st.Domain+".log"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("machine %s: %w", d.m.Name, err)
	}
	for _, f := range []string{StateFile, HostKeyFile, HostKeyPubFile} {
		if err := os.Remove(filepath.Join(d.m.Dir, f)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

// State maps the domain's state.
func (d *Driver) State(ctx context.Context) (drivers.State, error) {
	st, found, err := loadState(d.m.Dir)
	if err != nil {
		return drivers.Error, err
	}
	if !found || st.UUID == "" {
		return drivers.NotFound, nil
	}
	conn, err := d.connect()
	if err != nil {
		return drivers.Unknown, err
	}
	defer closeConn(conn)
	dom, err := d.lookupDomain(conn, st)
	var foreign *foreignDomainError
	if errors.As(err, &foreign) {
		return drivers.NotFound, nil
	}
	if err != nil {
		return drivers.Unknown, err
	}
	if dom == nil {
		return drivers.NotFound, nil
	}
	defer dom.Free()
	state, _, err := dom.GetState()
	if err != nil {
		return drivers.Unknown, lvErr("domain "+st.Domain, err)
	}
	return mapState(state), nil
}

// mapState maps libvirt's domain states onto the drivers' states.
func mapState(s lv.DomainState) drivers.State {
	switch s {
	case lv.DOMAIN_RUNNING, lv.DOMAIN_BLOCKED:
		return drivers.Running
	case lv.DOMAIN_PAUSED, lv.DOMAIN_PMSUSPENDED:
		return drivers.Paused
	case lv.DOMAIN_SHUTDOWN:
		return drivers.Stopping
	case lv.DOMAIN_SHUTOFF:
		return drivers.Stopped
	case lv.DOMAIN_CRASHED:
		return drivers.Error
	default:
		return drivers.Unknown
	}
}

// SSH returns the machine's address (its reserved lease), the user made by
// cloud-init, the machine's key and the pinned host key.
func (d *Driver) SSH(ctx context.Context) (drivers.Endpoint, error) {
	st, found, err := loadState(d.m.Dir)
	if err != nil {
		return drivers.Endpoint{}, err
	}
	if !found || st.UUID == "" {
		return drivers.Endpoint{}, fmt.Errorf("machine %s: not created yet", d.m.Name)
	}
	ip := st.IP
	if ip == "" {
		conn, err := d.connect()
		if err != nil {
			return drivers.Endpoint{}, err
		}
		defer closeConn(conn)
		network, err := conn.LookupNetworkByName(st.Network)
		if err != nil {
			return drivers.Endpoint{}, lvErr("look up network "+st.Network, err)
		}
		defer network.Free()
		if ip, err = leaseIP(network, st.MAC); err != nil {
			return drivers.Endpoint{}, err
		}
		if ip == "" {
			return drivers.Endpoint{}, fmt.Errorf("machine %s: no address yet (no DHCP lease for %s)", d.m.Name, st.MAC)
		}
	}
	return drivers.Endpoint{
		Host:               ip,
		Port:               22,
		User:               d.cfg.SSHUser,
		KeyPath:            d.m.PrivateKeyPath,
		HostKeyFingerprint: st.HostKeyFP,
	}, nil
}
