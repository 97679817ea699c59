package libvirt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	lv "github.com/digitalocean/go-libvirt"
	"github.com/shoal-dev/shoal/drivers/driverutil"
	"github.com/shoal-dev/shoal/internal/cloudinit"
	"libvirt.org/go/libvirtxml"
)

// domainDisks are the volumes a machine's domain boots from.
type domainDisks struct {
	Disk, Base, BaseFormat, Seed string
}

// ensureVolumes makes what the machine boots from: the base volume of its
// image (shared), its overlay disk and its seed ISO.
func (d *Driver) ensureVolumes(ctx context.Context, c *conn, st *machineState, hostKey driverutil.HostKey) (domainDisks, error) {
	pool, _, err := ensurePool(c, st.Pool)
	if err != nil {
		return domainDisks{}, err
	}

	img, err := resolveImage(ctx, d.cfg.Image, d.cfg.ImageChecksum, cacheDir(d.m.Dir))
	if err != nil {
		return domainDisks{}, err
	}
	basePath, err := d.ensureBase(ctx, c, pool, img)
	if err != nil {
		return domainDisks{}, err
	}
	if err := ctx.Err(); err != nil {
		return domainDisks{}, err
	}
	st.BaseVolume = baseVolumeName(img)

	capacity := max(uint64(d.cfg.DiskSize)<<30, img.VirtualSize)
	diskPath, err := d.ensureDisk(c, pool, st, capacity, basePath, img.Format)
	if err != nil {
		return domainDisks{}, err
	}
	seed := cloudinit.Seed{
		InstanceID:        st.InstanceID,
		Hostname:          d.m.Name,
		User:              d.cfg.SSHUser,
		AuthorizedKeys:    []string{d.m.PublicKey},
		HostKeyPrivatePEM: hostKey.PrivatePEM,
		HostKeyPublic:     hostKey.Public,
	}
	iso, err := seed.ISO()
	if err != nil {
		return domainDisks{}, fmt.Errorf("libvirt driver: %w", err)
	}
	seedPath, err := d.ensureSeed(ctx, c, pool, st, iso)
	if err != nil {
		return domainDisks{}, err
	}
	return domainDisks{Disk: diskPath, Base: basePath, BaseFormat: img.Format, Seed: seedPath}, nil
}

// ensurePool returns the pool (active, refreshed) and its folder. The
// default pool is created at DefaultPoolPath when missing.
func ensurePool(c *conn, name string) (lv.StoragePool, string, error) {
	pool, err := lookupPool(c, name)
	if err != nil {
		return lv.StoragePool{}, "", err
	}
	active, err := c.l.StoragePoolIsActive(pool)
	if err != nil {
		return lv.StoragePool{}, "", lvErr("storage pool "+name, err)
	}
	if !isTrue(active) {
		if err := c.l.StoragePoolCreate(pool, 0); err != nil {
			return lv.StoragePool{}, "", lvErr("start storage pool "+name, err)
		}
	}
	// Volumes made or removed outside libvirt become visible.
	_ = c.l.StoragePoolRefresh(pool, 0)
	path, err := poolPath(c, pool, name)
	if err != nil {
		return lv.StoragePool{}, "", err
	}
	return pool, path, nil
}

// lookupPool finds the pool name, defining and building the default pool
// when it is missing; another pool that is missing is an error.
func lookupPool(c *conn, name string) (lv.StoragePool, error) {
	pool, err := c.l.StoragePoolLookupByName(name)
	switch {
	case isCode(err, lv.ErrNoStoragePool) && name == DefaultPool:
		return defineDefaultPool(c, name)
	case isCode(err, lv.ErrNoStoragePool):
		return lv.StoragePool{}, fmt.Errorf("libvirt storage pool %q does not exist (virsh pool-list --all; --libvirt-pool)", name)
	case err != nil:
		return lv.StoragePool{}, lvErr("look up storage pool "+name, err)
	}
	return pool, nil
}

func defineDefaultPool(c *conn, name string) (lv.StoragePool, error) {
	x, err := poolXML(name, DefaultPoolPath).Marshal()
	if err != nil {
		return lv.StoragePool{}, fmt.Errorf("pool XML: %w", err)
	}
	pool, err := c.l.StoragePoolDefineXML(x, 0)
	if err != nil {
		return lv.StoragePool{}, lvErr("define storage pool "+name, err)
	}
	if err := c.l.StoragePoolBuild(pool, 0); err != nil {
		return lv.StoragePool{}, lvErr("build storage pool "+name, err)
	}
	_ = c.l.StoragePoolSetAutostart(pool, 1) // a convenience: not worth failing for
	return pool, nil
}

// poolPath is the pool's folder, from its XML.
func poolPath(c *conn, pool lv.StoragePool, name string) (string, error) {
	x, err := c.l.StoragePoolGetXMLDesc(pool, 0)
	if err != nil {
		return "", lvErr("storage pool "+name, err)
	}
	var px libvirtxml.StoragePool
	if err := px.Unmarshal(x); err != nil {
		return "", fmt.Errorf("storage pool %s XML: %w", name, err)
	}
	if px.Target == nil {
		return "", nil
	}
	return px.Target.Path, nil
}

// ensureBase returns the path of the base volume holding img, uploading it
// once. QEMU runs as its own user and cannot read images in home folders:
// every disk it opens lives in the pool.
func (d *Driver) ensureBase(ctx context.Context, c *conn, pool lv.StoragePool, img sourceImage) (string, error) {
	// One upload at a time: two machines created together share one base.
	unlock, err := lockFile(ctx, filepath.Join(cacheDir(d.m.Dir), "base.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	name := baseVolumeName(img)
	if p, found, err := existingBase(c, pool, name, img); found || err != nil {
		return p, err
	}
	x, err := volumeXML(name, img.VirtualSize, img.Format, "", "", "0644").Marshal()
	if err != nil {
		return "", fmt.Errorf("volume XML: %w", err)
	}
	vol, err := c.l.StorageVolCreateXML(pool, x, 0)
	if err != nil {
		return "", lvErr("create base volume "+name, err)
	}
	if err := d.uploadBase(ctx, c, vol, name, img); err != nil {
		_ = c.l.StorageVolDelete(vol, 0)
		return "", err
	}
	p, err := c.l.StorageVolGetPath(vol)
	if err != nil {
		return "", lvErr("volume "+name, err)
	}
	return p, nil
}

// existingBase returns the path of the base volume name when it is there
// whole; one an upload left incomplete is deleted (not found).
func existingBase(c *conn, pool lv.StoragePool, name string, img sourceImage) (string, bool, error) {
	vol, err := c.l.StorageVolLookupByName(pool, name)
	if isCode(err, lv.ErrNoStorageVol) {
		return "", false, nil
	}
	if err != nil {
		return "", false, lvErr("look up volume "+name, err)
	}
	complete := true
	if img.Format == formatQCOW2 {
		// An interrupted upload leaves a qcow2 volume shorter than its
		// image (a raw volume has its full size from the start).
		_, _, allocation, ierr := c.l.StorageVolGetInfoFlags(vol, uint32(lv.StorageVolGetPhysical))
		complete = ierr == nil && allocation >= uint64(img.FileSize)
	}
	if !complete {
		if err := c.l.StorageVolDelete(vol, 0); err != nil {
			return "", false, lvErr("delete incomplete base volume "+name, err)
		}
		return "", false, nil
	}
	p, err := c.l.StorageVolGetPath(vol)
	if err != nil {
		return "", false, lvErr("volume "+name, err)
	}
	return p, true, nil
}

// uploadBase uploads img into vol, checking a local image's checksum.
func (d *Driver) uploadBase(ctx context.Context, c *conn, vol lv.StorageVol, name string, img sourceImage) error {
	f, err := os.Open(img.Path)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	defer f.Close()
	sum, err := upload(ctx, c, vol, f, img.FileSize)
	if err == nil && d.cfg.ImageChecksum != "" && !isURL(d.cfg.Image) {
		// Downloads were checked as they arrived; local files here.
		if want := strings.ToLower(strings.TrimPrefix(d.cfg.ImageChecksum, "sha256:")); sum != want {
			err = fmt.Errorf("image %s: sha256 %s, want %s", img.Path, sum, want)
		}
	}
	if err != nil {
		return fmt.Errorf("upload image to volume %s: %w", name, err)
	}
	return nil
}

// upload streams size bytes of r into vol and returns their sha256. A
// context that ends aborts the stream (and the connection closes).
func upload(ctx context.Context, c *conn, vol lv.StorageVol, r io.Reader, size int64) (string, error) {
	sum := sha256.New()
	src := ctxReader{ctx, io.TeeReader(io.LimitReader(r, size), sum)}
	if err := c.l.StorageVolUpload(vol, src, 0, uint64(size), 0); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return "", ctxErr
		}
		return "", lvErr("upload", err)
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}

// ensureDisk returns the path of the machine's overlay disk, made on first
// use. A volume of that name that this machine did not make is an error.
func (d *Driver) ensureDisk(c *conn, pool lv.StoragePool, st *machineState, capacity uint64, basePath, baseFormat string) (string, error) {
	name := st.Domain + ".qcow2"
	vol, err := c.l.StorageVolLookupByName(pool, name)
	switch {
	case err == nil:
		if st.DiskVolume != name {
			return "", fmt.Errorf("volume %s exists in pool %s and was not made for this machine: remove it (virsh vol-delete --pool %s %s) or choose another name", name, st.Pool, st.Pool, name)
		}
	case isCode(err, lv.ErrNoStorageVol):
		// Recorded first: an interrupted run's volume is known to be ours.
		st.DiskVolume = name
		if err := saveState(d.m.Dir, *st); err != nil {
			return "", err
		}
		x, err := volumeXML(name, capacity, formatQCOW2, basePath, baseFormat, "").Marshal()
		if err != nil {
			return "", fmt.Errorf("volume XML: %w", err)
		}
		if vol, err = c.l.StorageVolCreateXML(pool, x, 0); err != nil {
			return "", lvErr("create disk volume "+name, err)
		}
	default:
		return "", lvErr("look up volume "+name, err)
	}
	p, err := c.l.StorageVolGetPath(vol)
	if err != nil {
		return "", lvErr("volume "+name, err)
	}
	return p, nil
}

// removeOldSeed deletes the machine's seed volume name, if there is one; a
// volume of that name made for another machine is an error.
func removeOldSeed(c *conn, pool lv.StoragePool, st *machineState, name string) error {
	vol, err := c.l.StorageVolLookupByName(pool, name)
	if isCode(err, lv.ErrNoStorageVol) {
		return nil
	}
	if err != nil {
		return lvErr("look up volume "+name, err)
	}
	if st.SeedVolume != name {
		return fmt.Errorf("volume %s exists in pool %s and was not made for this machine: remove it (virsh vol-delete --pool %s %s) or choose another name", name, st.Pool, st.Pool, name)
	}
	if err := c.l.StorageVolDelete(vol, 0); err != nil {
		return lvErr("delete old seed "+name, err)
	}
	return nil
}

// ensureSeed (re)writes the machine's seed ISO volume.
func (d *Driver) ensureSeed(ctx context.Context, c *conn, pool lv.StoragePool, st *machineState, iso []byte) (string, error) {
	name := st.Domain + "-seed.iso"
	if err := removeOldSeed(c, pool, st, name); err != nil {
		return "", err
	}
	st.SeedVolume = name
	if err := saveState(d.m.Dir, *st); err != nil {
		return "", err
	}
	x, err := volumeXML(name, uint64(len(iso)), formatRaw, "", "", "0644").Marshal()
	if err != nil {
		return "", fmt.Errorf("volume XML: %w", err)
	}
	vol, err := c.l.StorageVolCreateXML(pool, x, 0)
	if err != nil {
		return "", lvErr("create seed volume "+name, err)
	}
	if _, err := upload(ctx, c, vol, bytes.NewReader(iso), int64(len(iso))); err != nil {
		return "", fmt.Errorf("upload seed %s: %w", name, err)
	}
	p, err := c.l.StorageVolGetPath(vol)
	if err != nil {
		return "", lvErr("volume "+name, err)
	}
	return p, nil
}

// removeVolumes deletes the machine's disk and seed volumes; the shared
// base volume stays. What is gone already is skipped.
func removeVolumes(c *conn, st machineState) []error {
	if st.DiskVolume == "" && st.SeedVolume == "" {
		return nil
	}
	pool, err := c.l.StoragePoolLookupByName(st.Pool)
	if isCode(err, lv.ErrNoStoragePool) {
		return nil
	}
	if err != nil {
		return []error{lvErr("look up storage pool "+st.Pool, err)}
	}
	_ = c.l.StoragePoolRefresh(pool, 0)
	var errs []error
	for _, name := range []string{st.DiskVolume, st.SeedVolume} {
		if name == "" {
			continue
		}
		if err := removeVolume(c, pool, name); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// removeVolume deletes the pool's volume name, if it is there.
func removeVolume(c *conn, pool lv.StoragePool, name string) error {
	vol, err := c.l.StorageVolLookupByName(pool, name)
	if isCode(err, lv.ErrNoStorageVol) {
		return nil
	}
	if err != nil {
		return lvErr("look up volume "+name, err)
	}
	if err := c.l.StorageVolDelete(vol, 0); err != nil {
		return lvErr("delete volume "+name, err)
	}
	return nil
}
