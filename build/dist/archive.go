package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
)

// docs runs the built binaries' hidden __docs command: gzipped man pages
// in dir/man, completion in dir/completion/{bash,zsh,fish}, README.md.
func (r *release) docs(bin, dir, clusterName string) error {
	for _, c := range [][2]string{{"machine", "machine"}, {"cluster", clusterName}} {
		cmd := exec.Command(filepath.Join(bin, c[0]), "__docs", "--name", c[1],
			"--man", filepath.Join(dir, "man"), "--completion", filepath.Join(dir, "completion"),
			"--source", "shoal "+r.version, "--date", strconv.FormatInt(r.epoch.Unix(), 10))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s __docs: %w", c[0], err)
		}
	}
	pages, err := filepath.Glob(filepath.Join(dir, "man", "*.1"))
	if err != nil {
		return err
	}
	for _, p := range pages {
		if err := gzipFile(p); err != nil {
			return err
		}
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "README.md"), readme, 0o644)
}

// gzipFile replaces p by p.gz with no name and no time in its header.
func gzipFile(p string) error {
	data, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(p+".gz", buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Remove(p)
}

// tarball writes shoal_VERSION_OS_ARCH.tar.gz: one folder of that name
// with machine, cluster, README.md, man/ and completion/; entries sorted,
// owned by root, stamped with the commit's time.
func (r *release) tarball(t target, bin string) (string, error) {
	name := "shoal_" + r.version + "_" + t.String()
	entries := map[string]string{
		"machine": filepath.Join(bin, "machine"),
		"cluster": filepath.Join(bin, "cluster"),
	}
	docs := filepath.Join(r.out, "build", "docs-tar")
	err := filepath.WalkDir(docs, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(docs, p)
		entries[filepath.ToSlash(rel)] = p
		return nil
	})
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	if err := r.writeTar(tw, name, entries); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	file := name + ".tar.gz"
	return file, os.WriteFile(filepath.Join(r.out, file), buf.Bytes(), 0o644)
}

func (r *release) writeTar(tw *tar.Writer, prefix string, entries map[string]string) error {
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	dirs := map[string]bool{}
	for _, n := range names {
		if err := r.writeDirs(tw, prefix+"/"+n, dirs); err != nil {
			return err
		}
		if err := r.writeFile(tw, prefix, n, entries[n]); err != nil {
			return err
		}
	}
	return nil
}

// writeDirs writes the folders of path not written yet (dirs), each once,
// before its first file.
func (r *release) writeDirs(tw *tar.Writer, path string, dirs map[string]bool) error {
	parts := strings.Split(path, "/")
	for i := 1; i < len(parts); i++ {
		d := strings.Join(parts[:i], "/") + "/"
		if dirs[d] {
			continue
		}
		dirs[d] = true
		if err := tw.WriteHeader(r.header(d, tar.TypeDir, 0o755, 0)); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes the file src as prefix/n; the binaries are executable.
func (r *release) writeFile(tw *tar.Writer, prefix, n, src string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	mode := int64(0o644)
	if n == "machine" || n == "cluster" {
		mode = 0o755
	}
	if err := tw.WriteHeader(r.header(prefix+"/"+n, tar.TypeReg, mode, int64(len(data)))); err != nil {
		return err
	}
	_, err = tw.Write(data)
	return err
}

func (r *release) header(name string, typ byte, mode, size int64) *tar.Header {
	return &tar.Header{Name: name, Typeflag: typ, Mode: mode, Size: size, ModTime: r.epoch,
		Uname: "root", Gname: "root", Format: tar.FormatPAX}
}

// pkg makes the .deb or .rpm of target t from build/dist/nfpm.yaml.
func (r *release) pkg(format string, t target, bin string) (string, error) {
	vars := map[string]string{
		"VERSION": r.version, "ARCH": t.goarch, "BIN": bin,
		"DOCS": filepath.Join(r.out, "build", "docs-pkg"),
	}
	cfg, err := nfpm.ParseFileWithEnvMapping(filepath.Join("build", "dist", "nfpm.yaml"),
		func(k string) string { return vars[k] })
	if err != nil {
		return "", err
	}
	info, err := cfg.Get(format)
	if err != nil {
		return "", err
	}
	info.MTime = r.epoch
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return "", fmt.Errorf("%s for %s: %w", format, t, err)
	}
	p, err := nfpm.Get(format)
	if err != nil {
		return "", err
	}
	file := p.ConventionalFileName(info)
	f, err := os.Create(filepath.Join(r.out, file))
	if err != nil {
		return "", err
	}
	if err := p.Package(info, f); err != nil {
		f.Close()
		return "", fmt.Errorf("%s for %s: %w", format, t, err)
	}
	return file, f.Close()
}

// writeSums writes SHA256SUMS (sha256sum's format) of files, sorted.
func writeSums(dir string, files []string) error {
	sort.Strings(files)
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(sum[:]), f)
	}
	return os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(b.String()), 0o644)
}
