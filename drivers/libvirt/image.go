package libvirt

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// Image formats.
const (
	formatQCOW2 = "qcow2"
	formatRaw   = "raw"
)

// sourceImage is a cloud image on the local file system, ready to upload.
type sourceImage struct {
	Path        string
	Format      string // qcow2 or raw
	VirtualSize uint64 // bytes the guest sees
	FileSize    int64  // bytes to upload
	// Key identifies the image's content or version: a base volume is
	// shared by every machine whose image has the same key.
	Key string
}

// inspectImage reads the image's header: its format and virtual size.
func inspectImage(p string) (sourceImage, error) {
	f, err := os.Open(p)
	if err != nil {
		return sourceImage{}, fmt.Errorf("image: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return sourceImage{}, fmt.Errorf("image: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return sourceImage{}, fmt.Errorf("image %s: not a regular file", p)
	}
	hdr := make([]byte, 512)
	n, err := io.ReadFull(f, hdr)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return sourceImage{}, fmt.Errorf("image %s: %w", p, err)
	}
	format, size, err := imageKind(p, hdr[:n], fi.Size())
	if err != nil {
		return sourceImage{}, err
	}
	return sourceImage{Path: p, FileSize: fi.Size(), Format: format, VirtualSize: size}, nil
}

// imageKind tells from its header hdr (and its size in bytes) the format
// of the image at p and the size its guest sees: qcow2 or raw; other
// formats are to be converted first.
func imageKind(p string, hdr []byte, fileSize int64) (string, uint64, error) {
	switch {
	case bytes.HasPrefix(hdr, []byte("QFI\xfb")):
		if len(hdr) < 32 {
			return "", 0, fmt.Errorf("image %s: truncated qcow2 header", p)
		}
		return formatQCOW2, binary.BigEndian.Uint64(hdr[24:32]), nil
	case bytes.HasPrefix(hdr, []byte("KDMV")), bytes.HasPrefix(hdr, []byte("vhdxfile")),
		bytes.HasPrefix(hdr, []byte("conectix")), len(hdr) >= 68 && bytes.Equal(hdr[64:68], []byte{0x7f, 0x10, 0xda, 0xbe}):
		return "", 0, fmt.Errorf("image %s: a VMDK, VHD(X) or VDI image; convert it first: qemu-img convert -O qcow2 %s image.qcow2", p, p)
	}
	if fileSize < 1<<20 {
		return "", 0, fmt.Errorf("image %s: %d bytes is too small for a disk image", p, fileSize)
	}
	return formatRaw, uint64(fileSize), nil
}

var nameSafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// baseVolumeName is the pool volume holding img: the image's file name and
// its key, so that a changed image gets a new base and machines on the old
// one keep working.
func baseVolumeName(img sourceImage) string {
	key := img.Key
	if len(key) > 12 {
		key = key[:12]
	}
	return fmt.Sprintf("shoal-base-%s-%s.%s", volumeStem(img.Path), key, img.Format)
}

// volumeStem is the image file's name without its extension, made safe
// for a volume name and at most 48 characters.
func volumeStem(path string) string {
	stem := filepath.Base(path)
	for _, ext := range []string{".qcow2", ".img", ".raw", ".qcow"} {
		stem = strings.TrimSuffix(stem, ext)
	}
	stem = strings.Trim(nameSafe.ReplaceAllString(stem, "-"), "-.")
	if len(stem) > 48 {
		stem = stem[:48]
	}
	stem = cmp.Or(stem, "image")
	return stem
}

// imageKey identifies a local image without reading it all: the checksum
// when one is given, else its path, size and modification time.
func imageKey(p string, fi os.FileInfo, checksum string) string {
	if checksum != "" {
		return strings.ToLower(strings.TrimPrefix(checksum, "sha256:"))
	}
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d", p, fi.Size(), fi.ModTime().UnixNano()))
	return hex.EncodeToString(h[:])
}

// resolveImage returns the local file of the configured image, downloading
// a URL into cacheDir once.
func resolveImage(ctx context.Context, image, checksum, cacheDir string) (sourceImage, error) {
	p := image
	if isURL(image) {
		var err error
		if p, err = downloadImage(ctx, image, checksum, cacheDir); err != nil {
			return sourceImage{}, err
		}
	} else {
		p = strings.TrimPrefix(p, "file://")
		if strings.HasPrefix(p, "~/") {
			if home, err := os.UserHomeDir(); err == nil {
				p = filepath.Join(home, p[2:])
			}
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return sourceImage{}, fmt.Errorf("image %s: %w", image, err)
		}
		p = abs
	}
	img, err := inspectImage(p)
	if err != nil {
		return sourceImage{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return sourceImage{}, fmt.Errorf("image: %w", err)
	}
	img.Key = imageKey(p, fi, checksum)
	return img, nil
}

// downloadImage fetches url into cacheDir unless it is there already, and
// checks its sha256 when checksum is set. The download goes to a temporary
// file renamed into place only when complete and verified.
func downloadImage(ctx context.Context, url, checksum, cacheDir string) (string, error) {
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return "", fmt.Errorf("image cache: %w", err)
	}
	dst := filepath.Join(cacheDir, cachedImageName(url))
	want := strings.ToLower(strings.TrimPrefix(checksum, "sha256:"))
	if _, err := os.Stat(dst); err == nil {
		return checkCachedImage(ctx, url, dst, want)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("download image: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("download image %s: %s", url, resp.Status)
	}
	if err := saveDownload(resp.Body, url, want, dst); err != nil {
		return "", err
	}
	return dst, nil
}

// cachedImageName is the cache's file name for url: a hash of the URL and
// its last path element, made safe.
func cachedImageName(url string) string {
	h := sha256.Sum256([]byte(url))
	name := path.Base(strings.SplitN(url, "?", 2)[0])
	name = strings.Trim(nameSafe.ReplaceAllString(name, "-"), "-.")
	name = cmp.Or(name, "image")
	return hex.EncodeToString(h[:8]) + "-" + name
}

// checkCachedImage returns the cached copy dst of url, its sha256 checked
// when one is wanted: a checksum given later than the download is checked
// too.
func checkCachedImage(ctx context.Context, url, dst, want string) (string, error) {
	if want == "" {
		return dst, nil
	}
	got, err := sha256File(ctx, dst)
	if err != nil {
		return "", err
	}
	if got != want {
		return "", fmt.Errorf("image %s: cached copy %s has sha256 %s, want %s (remove it to download again)", url, dst, got, want)
	}
	return dst, nil
}

// saveDownload writes body to a temporary file beside dst, renamed into
// place only when complete and its sha256 is the one wanted (if any).
func saveDownload(body io.Reader, url, want, dst string) error {
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".download-*")
	if err != nil {
		return fmt.Errorf("image cache: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	sum := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, sum), body); err != nil {
		tmp.Close()
		return fmt.Errorf("download image %s: %w", url, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("image cache: %w", err)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); want != "" && got != want {
		return fmt.Errorf("download image %s: sha256 %s, want %s", url, got, want)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("image cache: %w", err)
	}
	return nil
}

func sha256File(ctx context.Context, p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	defer f.Close()
	sum := sha256.New()
	if _, err := io.Copy(sum, ctxReader{ctx, f}); err != nil {
		return "", fmt.Errorf("image %s: %w", p, err)
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}

// ctxReader stops a long copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// cacheDir is where downloaded images are kept: cache/libvirt in the store,
// whose machines live in machines/NAME (the README's "State on disk").
func cacheDir(machineDir string) string {
	return filepath.Join(filepath.Dir(filepath.Dir(machineDir)), "cache", "libvirt")
}
