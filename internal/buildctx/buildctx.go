// Package buildctx reads a docker build context from a directory as `docker
// build` sends it (what .dockerignore keeps, the Dockerfile and .dockerignore
// always), names it by a digest of its content, and writes it as the tar
// stream the Engine API's build takes. The digest is what decides a rebuild:
// the same files give the same digest, whatever their times.
package buildctx

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// MaxSize bounds a context: it goes through one SSH connection to a
// manager, and a context this large is almost always a missing
// .dockerignore (node_modules, .git, build output).
const MaxSize = 512 << 20

// Context is a build context: its files, in path order.
type Context struct {
	Dir string
	// Dockerfile is the Dockerfile's path inside Dir, slash-separated.
	Dockerfile string
	// Digest is "sha256:..." over every file's path, mode, link target
	// and content.
	Digest string
	Size   int64
	files  []entry
}

type entry struct {
	rel  string // slash-separated, relative to Dir
	mode fs.FileMode
	link string // a symlink's target
	size int64
}

// Read reads the context in dir. dockerfile is relative to dir ("" is
// "Dockerfile") and must lie inside it.
func Read(dir, dockerfile string) (*Context, error) {
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	df, err := inside(dir, dockerfile)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(df))); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("build context %s: no Dockerfile %s", dir, dockerfile)
	}
	pm, err := ignores(dir)
	if err != nil {
		return nil, err
	}
	c := &Context{Dir: dir, Dockerfile: df}
	if err := c.walk(pm); err != nil {
		return nil, err
	}
	return c, c.digest()
}

// inside is name as a slash path relative to dir, or an error when it
// leaves dir.
func inside(dir, name string) (string, error) {
	p := name
	if filepath.IsAbs(p) {
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return "", fmt.Errorf("dockerfile %s is not inside the build context %s", name, dir)
		}
		p = rel
	}
	p = path.Clean(filepath.ToSlash(p))
	if p == ".." || strings.HasPrefix(p, "../") || p == "." {
		return "", fmt.Errorf("dockerfile %s is not inside the build context %s", name, dir)
	}
	return p, nil
}

// ignores reads dir's .dockerignore (none: nothing is ignored).
func ignores(dir string) (*patternmatcher.PatternMatcher, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if os.IsNotExist(err) {
		return patternmatcher.New(nil)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return patternmatcher.New(patterns)
}

// walk lists what the context sends. A directory that is ignored is
// skipped whole unless an exclusion (!pattern) may bring back part of it.
func (c *Context) walk(pm *patternmatcher.PatternMatcher) error {
	return filepath.WalkDir(c.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(c.Dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		skip, err := c.ignored(pm, rel)
		if err != nil {
			return err
		}
		if skip {
			if d.IsDir() && !pm.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		return c.add(p, rel, d)
	})
}

func (c *Context) ignored(pm *patternmatcher.PatternMatcher, rel string) (bool, error) {
	if rel == c.Dockerfile || rel == ".dockerignore" {
		return false, nil // docker build sends them whatever the patterns say
	}
	return pm.MatchesOrParentMatches(rel)
}

func (c *Context) add(p, rel string, d fs.DirEntry) error {
	info, err := d.Info()
	if err != nil {
		return err
	}
	e := entry{rel: rel, mode: info.Mode()}
	switch {
	case info.Mode()&fs.ModeSymlink != 0:
		if e.link, err = os.Readlink(p); err != nil {
			return err
		}
	case info.Mode().IsRegular():
		e.size = info.Size()
		c.Size += e.size
		if c.Size > MaxSize {
			return fmt.Errorf("build context %s is over %d MiB: add a .dockerignore", c.Dir, MaxSize>>20)
		}
	case info.IsDir():
	default:
		return nil // sockets, devices, pipes: docker build leaves them out too
	}
	c.files = append(c.files, e)
	return nil
}

// digest names the content: paths, modes, link targets and bytes.
func (c *Context) digest() error {
	sort.Slice(c.files, func(i, j int) bool { return c.files[i].rel < c.files[j].rel })
	h := sha256.New()
	for _, e := range c.files {
		fmt.Fprintf(h, "%q %o %q %d\n", e.rel, e.mode, e.link, e.size)
		if e.mode.IsRegular() {
			if err := c.copyFile(h, e); err != nil {
				return err
			}
		}
	}
	c.Digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
	return nil
}

func (c *Context) copyFile(w io.Writer, e entry) error {
	f, err := os.Open(filepath.Join(c.Dir, filepath.FromSlash(e.rel)))
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(w, io.LimitReader(f, e.size))
	if err == nil && n != e.size {
		err = fmt.Errorf("%s changed while it was read", f.Name())
	}
	return err
}

// Tar writes the context as a tar stream. Times and owners are left out
// (the digest does not see them; the build's cache does not need them).
func (c *Context) Tar(w io.Writer) error {
	tw := tar.NewWriter(w)
	for _, e := range c.files {
		hdr := &tar.Header{Name: e.rel, Mode: int64(e.mode.Perm()), Format: tar.FormatPAX}
		switch {
		case e.mode&fs.ModeSymlink != 0:
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.link
		case e.mode.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, e.rel+"/"
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, e.size
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			if err := c.copyFile(tw, e); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}
