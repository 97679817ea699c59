//go:build cgo && libvirt_dlopen

package libvirt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/shoal-dev/shoal/drivers/driverutil"
	"github.com/shoal-dev/shoal/internal/cloudinit"
	lv "libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"
)

// domainDisks are the volumes a machine's domain boots from.
type domainDisks struct {
	Disk, Base, BaseFormat, Seed string
}

// ensureVolumes makes what the machine boots from: the base volume of its
// image (shared), its overlay disk and its seed ISO.
func (d *Driver) ensureVolumes(ctx context.Context, conn *lv.Connect, st *machineState, hostKey driverutil.HostKey) (domainDisks, error) {
	pool, _, err := ensurePool(conn, st.Pool)
	if err != nil {
		return domainDisks{}, err
	}
	defer pool.Free()

	img, err := resolveImage(ctx, d.cfg.Image, d.cfg.ImageChecksum, cacheDir(d.m.Dir))
	if err != nil {
		return domainDisks{}, err
	}
	basePath, err := d.ensureBase(ctx, conn, pool, img)
	if err != nil {
		return domainDisks{}, err
	}
	if err := ctx.Err(); err != nil {
		return domainDisks{}, err
	}
	st.BaseVolume = baseVolumeName(img)

	capacity := uint64(d.cfg.DiskSize) << 30
	if capacity < img.VirtualSize {
		capacity = img.VirtualSize
	}
	diskPath, err := d.ensureDisk(pool, st, capacity, basePath, img.Format)
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
	seedPath, err := d.ensureSeed(ctx, conn, pool, st, iso)
	if err != nil {
		return domainDisks{}, err
	}
	return domainDisks{Disk: diskPath, Base: basePath, BaseFormat: img.Format, Seed: seedPath}, nil
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

// removeVolumes deletes the machine's disk and seed volumes; the shared
// base volume stays. What is gone already is skipped.
func removeVolumes(conn *lv.Connect, st machineState) []error {
	if st.DiskVolume == "" && st.SeedVolume == "" {
		return nil
	}
	pool, err := conn.LookupStoragePoolByName(st.Pool)
	if isCode(err, lv.ERR_NO_STORAGE_POOL) {
		return nil
	}
	if err != nil {
		return []error{lvErr("look up storage pool "+st.Pool, err)}
	}
	defer pool.Free()
	_ = pool.Refresh(0)
	var errs []error
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
	return errs
}
