// Command dist builds shoal's release files (`make dist`): per target a
// tarball with both binaries, the man pages and the completion scripts;
// for Linux a .deb and an .rpm made by nfpm from nfpm.yaml; and SHA256SUMS.
// The same commit gives the same bytes: -trimpath, every time stamp is the
// commit's (SOURCE_DATE_EPOCH), archive entries are sorted. docs/install.md.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func main() {
	out := flag.String("out", "dist", "where the release files go")
	targets := flag.String("targets", "linux/amd64,linux/arm64,darwin/amd64,darwin/arm64", "GOOS/GOARCH list")
	printVersion := flag.Bool("version", false, "print the package version and exit")
	flag.Parse()
	if err := run(*out, *targets, *printVersion); err != nil {
		fmt.Fprintln(os.Stderr, "dist:", err)
		os.Exit(1)
	}
}

func run(out, targets string, printVersion bool) error {
	epoch, err := sourceEpoch()
	if err != nil {
		return err
	}
	v, err := version(epoch)
	if err != nil {
		return err
	}
	if printVersion {
		fmt.Println(v)
		return nil
	}
	ts, err := parseTargets(targets)
	if err != nil {
		return err
	}
	r := &release{out: out, version: v, epoch: epoch}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	return r.build(ts)
}

// sourceEpoch is SOURCE_DATE_EPOCH when set, else the commit's time.
func sourceEpoch() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		var err error
		if s, err = git("log", "-1", "--format=%ct"); err != nil {
			return time.Time{}, err
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
	}
	return time.Unix(n, 0).UTC(), nil
}

// version asks git for the nearest v* tag and the commit, and makes the
// package version of them (pkgVersion).
func version(epoch time.Time) (string, error) {
	sha, err := git("rev-parse", "--short=12", "HEAD")
	if err != nil {
		return "", err
	}
	desc, _ := git("describe", "--tags", "--match", "v[0-9]*", "--long")
	status, err := git("status", "--porcelain", "--untracked-files=no")
	if err != nil {
		return "", err
	}
	return pkgVersion(desc, sha, epoch, status != ""), nil
}

func git(args ...string) (string, error) {
	out, err := exec.Command("git", args...).Output()
	if err != nil {
		var tail string
		if ee, ok := err.(*exec.ExitError); ok {
			tail = strings.TrimSpace(string(ee.Stderr))
		}
		return "", fmt.Errorf("git %s: %v %s", strings.Join(args, " "), err, tail)
	}
	return strings.TrimSpace(string(out)), nil
}

type target struct{ goos, goarch string }

func (t target) String() string { return t.goos + "_" + t.goarch }

func parseTargets(s string) ([]target, error) {
	var ts []target
	for _, f := range strings.Split(s, ",") {
		goos, goarch, ok := strings.Cut(strings.TrimSpace(f), "/")
		if !ok || (goos != "linux" && goos != "darwin") || (goarch != "amd64" && goarch != "arm64") {
			return nil, fmt.Errorf("target %q: want linux or darwin / amd64 or arm64", f)
		}
		ts = append(ts, target{goos, goarch})
	}
	return ts, nil
}

type release struct {
	out, version string
	epoch        time.Time
}

func (r *release) build(ts []target) error {
	host := target{runtime.GOOS, runtime.GOARCH}
	hostBin := filepath.Join(r.out, "build", "host")
	if err := r.goBuild(host, hostBin); err != nil {
		return err
	}
	// Two sets of docs: the tarball's commands are machine and cluster,
	// the packages' machine and shoal-cluster.
	for set, cluster := range map[string]string{"tar": "cluster", "pkg": "shoal-cluster"} {
		if err := r.docs(hostBin, filepath.Join(r.out, "build", "docs-"+set), cluster); err != nil {
			return err
		}
	}
	var files []string
	for _, t := range ts {
		fs, err := r.buildTarget(t)
		if err != nil {
			return err
		}
		files = append(files, fs...)
	}
	return writeSums(r.out, files)
}

// buildTarget builds target t's binaries and returns its release files:
// the tarball, and on Linux the .deb and .rpm.
func (r *release) buildTarget(t target) ([]string, error) {
	bin := filepath.Join(r.out, "build", t.String())
	if err := r.goBuild(t, bin); err != nil {
		return nil, err
	}
	f, err := r.tarball(t, bin)
	if err != nil {
		return nil, err
	}
	files := []string{f}
	if t.goos != "linux" {
		return files, nil
	}
	for _, format := range []string{"deb", "rpm"} {
		f, err := r.pkg(format, t, bin)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

func (r *release) goBuild(t target, dir string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-o", dir+string(filepath.Separator),
		"-ldflags", "-s -w -buildid= -X main.version="+r.version, "./cmd/machine", "./cmd/cluster")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+t.goos, "GOARCH="+t.goarch, "GOFLAGS=")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build for %s: %w", t, err)
	}
	return nil
}
