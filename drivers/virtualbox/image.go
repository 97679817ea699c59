package virtualbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// imageFormat tells a disk image's format from its first bytes: cloud
// images' names do not say (Ubuntu's .img files are qcow2).
func imageFormat(path string) (string, error) {
	head, err := readHead(path, 512)
	if err != nil {
		return "", err
	}
	switch {
	case bytes.HasPrefix(head, []byte("QFI\xfb")):
		if err := checkQcow(path, head); err != nil {
			return "", err
		}
		return "qcow2", nil
	case bytes.HasPrefix(head, []byte("KDMV")), bytes.HasPrefix(head, []byte("# Disk DescriptorFile")):
		return "vmdk", nil
	case len(head) >= 0x44 && binary.LittleEndian.Uint32(head[0x40:]) == 0xbeda107f:
		return "vdi", nil
	case bytes.HasPrefix(head, []byte("conectix")), bytes.HasPrefix(head, []byte("vhdxfile")):
		return "vhd", nil
	case bytes.HasPrefix(head, []byte("\x1f\x8b")), bytes.HasPrefix(head, []byte("\xfd7zXZ")):
		return "", fmt.Errorf("%s is compressed: decompress it first (VirtualBox reads qcow2, vmdk, vdi, vhd and raw disks)", path)
	}
	return "raw", nil
}

// readHead reads the first n bytes of the file at path, fewer if it is
// shorter; an empty file is an error.
func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	head := make([]byte, n)
	n, err = io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF {
		if n == 0 {
			return nil, fmt.Errorf("%s is empty", path)
		}
		return nil, err
	}
	return head[:n], nil
}

// checkQcow refuses a qcow2 image VirtualBox cannot read: it reads qcow2
// v3 only without "incompatible features" (Storage/QCOW.cpp supports
// none): not the dirty or corrupt bits, an external data file, zstd
// compression or extended L2.
func checkQcow(path string, head []byte) error {
	if len(head) < 80 || binary.BigEndian.Uint32(head[4:]) != 3 {
		return nil
	}
	if feat := binary.BigEndian.Uint64(head[72:]); feat != 0 {
		return fmt.Errorf("%s is a qcow2 image with features VirtualBox cannot read (incompatible feature bits %#x: %s); convert it first, e.g. `qemu-img convert -O vdi %s image.vdi`, and give that file",
			path, feat, qcowFeatures(feat), path)
	}
	return nil
}

// qcowFeatures names qcow2's incompatible feature bits (qemu's
// docs/interop/qcow2.txt).
func qcowFeatures(feat uint64) string {
	names := []string{"dirty", "corrupt", "external data file", "zstd compression", "extended L2 entries"}
	var out []string
	for i, n := range names {
		if feat&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	if feat>>len(names) != 0 {
		out = append(out, "unknown")
	}
	return strings.Join(out, ", ")
}

// cachedImage returns the image converted to VDI in the cache, converting
// it the first time. The cache key is the image's path, size and time of
// change: a new download under the same name is converted again.
func (d *Driver) cachedImage(ctx context.Context, v *vboxCmd) (string, error) {
	src, err := filepath.Abs(d.cfg.Image)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(src)
	if err != nil {
		return "", fmt.Errorf("--virtualbox-image: %w", err)
	}
	format, err := imageFormat(src)
	if err != nil {
		return "", fmt.Errorf("--virtualbox-image: %w", err)
	}
	dir, err := d.imageCacheDir()
	if err != nil {
		return "", fmt.Errorf("image cache: %w", err)
	}
	final := filepath.Join(dir, cachedVDIName(src, st))
	// One conversion at a time: machines created together from one image
	// wait for the first to convert it.
	if err := d.mgr.image.Lock(ctx); err != nil {
		return "", err
	}
	defer d.mgr.image.Unlock()
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	if err := d.convertImage(ctx, v, src, format, final); err != nil {
		return "", err
	}
	return final, nil
}

// imageCacheDir is the folder of converted images, made.
func (d *Driver) imageCacheDir() (string, error) {
	dir := d.cfg.ImageCache
	if dir == "" {
		var err error
		if dir, err = d.mgr.opts.cacheDir(); err != nil {
			return "", err
		}
	}
	return dir, os.MkdirAll(dir, 0o700)
}

// cachedVDIName is the cache's name for the image at src: its name and a
// hash of its path, size and time of change.
func cachedVDIName(src string, st os.FileInfo) string {
	sum := sha256.Sum256([]byte(src + "\x00" + strconv.FormatInt(st.Size(), 10) + "\x00" + strconv.FormatInt(st.ModTime().UnixNano(), 10)))
	base := strings.TrimSuffix(filepath.Base(src), filepath.Ext(src))
	return base + "-" + hex.EncodeToString(sum[:8]) + ".vdi"
}

// convertImage converts src to VDI under a temporary name and renames it
// to final once done: a file under the final name is always whole.
func (d *Driver) convertImage(ctx context.Context, v *vboxCmd, src, format, final string) error {
	partial := strings.TrimSuffix(final, ".vdi") + ".partial.vdi"
	d.forgetMedium(ctx, v, "disk", partial, true)
	var err error
	if format == "raw" {
		_, err = d.mgr.run(ctx, v, "convertfromraw", src, partial, "--format", "VDI")
	} else {
		_, err = d.mgr.run(ctx, v, "clonemedium", "disk", src, partial, "--format", "VDI")
		// clonemedium registers its source: leave the user's image out
		// of VirtualBox's media registry, as it was.
		_, _ = d.mgr.run(context.WithoutCancel(ctx), v, "closemedium", "disk", src)
	}
	if err != nil {
		d.forgetMedium(context.WithoutCancel(ctx), v, "disk", partial, true)
		return fmt.Errorf("convert %s (%s) to VDI: %w", src, format, err)
	}
	// VirtualBox registers the clone under its path: unregister it before
	// the rename, or its media registry would point at a missing file.
	d.forgetMedium(ctx, v, "disk", partial, false)
	if err := os.Rename(partial, final); err != nil {
		return fmt.Errorf("image cache: %w", err)
	}
	return nil
}

// vdiCapacityMB reads a VDI image's disk size from its header (VDI 1.1,
// as VirtualBox writes them: the signature at 0x40, the size in bytes at
// 0x170, little-endian).
func vdiCapacityMB(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	head := make([]byte, 0x178)
	if _, err := io.ReadFull(f, head); err != nil {
		return 0, fmt.Errorf("%s: not a VDI image: %w", path, err)
	}
	if binary.LittleEndian.Uint32(head[0x40:]) != 0xbeda107f || binary.LittleEndian.Uint16(head[0x46:]) != 1 {
		return 0, fmt.Errorf("%s: not a VDI 1.x image", path)
	}
	return int(binary.LittleEndian.Uint64(head[0x170:]) >> 20), nil
}

// forgetMedium takes a medium out of VirtualBox's media registry (and,
// with remove, off the disk). Errors are ignored: it is cleanup of what may
// not be there.
func (d *Driver) forgetMedium(ctx context.Context, v *vboxCmd, kind, path string, remove bool) {
	if _, err := os.Stat(path); err != nil {
		return
	}
	args := []string{"closemedium", kind, path}
	if remove {
		args = append(args, "--delete")
	}
	_, _ = d.mgr.run(ctx, v, args...)
	if remove {
		os.Remove(path)
	}
}

// makeDisk clones the cached image into the machine's folder and grows it
// to the configured size (never shrinks it: VirtualBox cannot).
func (d *Driver) makeDisk(ctx context.Context, v *vboxCmd, cached string) (string, error) {
	disk := filepath.Join(d.m.Dir, DiskFile)
	d.forgetMedium(ctx, v, "disk", disk, true) // the leftover of an interrupted Create
	clone := func() error {
		_, err := d.mgr.run(ctx, v, "clonemedium", "disk", cached, disk, "--format", "VDI")
		// clonemedium registers its source: unregister the cached image
		// again, so that rebuilding the cache never meets a stale
		// registration.
		_, _ = d.mgr.run(context.WithoutCancel(ctx), v, "closemedium", "disk", cached)
		return err
	}
	if err := clone(); err != nil {
		// VirtualBox still knows a medium at one of the paths (left by an
		// older shoal, or by hand) with another UUID than the file there
		// now, and refuses it (canonical/multipass#2373). closemedium
		// drops a registered medium without reading its file; try again
		// once with both paths forgotten.
		_, _ = d.mgr.run(ctx, v, "closemedium", "disk", disk)
		if clone() != nil {
			return "", err
		}
	}
	// The size is in the VDI's header: no need for showmediuminfo's
	// translated "Capacity" line.
	capacity, err := vdiCapacityMB(disk)
	if err != nil {
		return "", err
	}
	if d.cfg.DiskSize > capacity {
		if _, err := d.mgr.run(ctx, v, "modifymedium", "disk", disk, "--resize", strconv.Itoa(d.cfg.DiskSize)); err != nil {
			return "", err
		}
	}
	return disk, nil
}
