package osfamily

// What the RHEL family's hosts really are: releases past their end of life
// whose repositories moved to the vault, Docker repositories that stopped
// being built for a release, container tools that conflict with
// containerd.io, and RHEL's subscription repositories. Every decision here
// is a pure function of the facts; provisioning only acts on the answer.

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/shoal-dev/shoal/internal/shell"
	"github.com/shoal-dev/shoal/internal/validate"
)

// Repo is one repository section of a file in /etc/yum.repos.d.
type Repo struct {
	File    string
	ID      string
	Enabled bool
	// URLs are its baseurl (first value), mirrorlist and metalink.
	URLs []string
}

// Hosts are the scheme://host parts of the repo's URLs.
func (r Repo) Hosts() []string {
	var out []string
	for _, u := range r.URLs {
		if m := urlHostRE.FindString(u); m != "" {
			out = append(out, m)
		}
	}
	return out
}

var urlHostRE = regexp.MustCompile(`^https?://[^/\s?#]+`)

// RepoFileMarker starts each file in the facts probe's listing of
// /etc/yum.repos.d: "#@file PATH", then the file's text (*.repo files only).
const RepoFileMarker = "#@file "

// RepoDir is /etc/yum.repos.d as the facts probe saw it.
type RepoDir struct {
	Files []string          // every name, backups too
	Text  map[string]string // the text of each *.repo file
	Repos []Repo
}

// ParseRepoFiles reads the probe's listing: the files present and the
// repositories the *.repo files define.
func ParseRepoFiles(text string) RepoDir {
	p := repoParser{d: RepoDir{Text: map[string]string{}}}
	for _, line := range strings.Split(text, "\n") {
		p.line(strings.TrimRight(line, "\r"))
	}
	p.flush()
	return p.d
}

// repoParser is ParseRepoFiles's state: the file it is in and the
// repository section being read.
type repoParser struct {
	d    RepoDir
	cur  *Repo
	file string
}

// flush ends the section being read.
func (p *repoParser) flush() {
	if p.cur != nil {
		p.d.Repos = append(p.d.Repos, *p.cur)
		p.cur = nil
	}
}

func (p *repoParser) line(line string) {
	if f, ok := strings.CutPrefix(line, RepoFileMarker); ok {
		p.flush()
		p.file = f
		p.d.Files = append(p.d.Files, f)
		return
	}
	if p.file != "" {
		p.d.Text[p.file] += line + "\n"
	}
	t := strings.TrimSpace(line)
	// Text before the first file marker belongs to no file.
	if p.file == "" || t == "" || t[0] == '#' || t[0] == ';' {
		return
	}
	if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
		p.flush()
		// dnf and yum default enabled to 1.
		p.cur = &Repo{File: p.file, ID: strings.TrimSpace(t[1 : len(t)-1]), Enabled: true}
		return
	}
	if k, v, ok := strings.Cut(t, "="); ok && p.cur != nil {
		p.cur.set(strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v))
	}
}

// set reads the section's key k (lower case) the plan needs: enabled and
// the URLs.
func (r *Repo) set(k, v string) {
	switch k {
	case "enabled":
		r.Enabled = v == "1" || strings.EqualFold(v, "true") || strings.EqualFold(v, "yes")
	case "baseurl", "mirrorlist", "metalink":
		if f := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }); len(f) > 0 {
			r.URLs = append(r.URLs, f[0])
		}
	}
}

// ParseReach reads the probe's "HOST CODE" lines: code 000 (curl's word for
// no answer: DNS, refused, timeout) means the server does not answer; any
// HTTP status means it does.
func ParseReach(text string) map[string]bool {
	out := map[string]bool{}
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) == 2 {
			out[f[0]] = f[1] != "000"
		}
	}
	return out
}

// EOLRelease is a release past its end of life, and where its packages went.
type EOLRelease struct {
	Name string // CentOS Linux 7
	Date string // the end of life, YYYY-MM-DD
	// VaultDir is the release's directory on vault.centos.org and on the
	// vault's mirrors (7.9.2009, 8-stream).
	VaultDir string
	el8      bool
}

// EOL tells whether os is a CentOS release past its end of life. Only
// CentOS moves a dead release's repositories away (to vault.centos.org);
// Rocky, Alma and RHEL keep theirs where they were.
func EOL(os OS) (EOLRelease, bool) {
	if os.ID != "centos" {
		return EOLRelease{}, false
	}
	major, _, _ := strings.Cut(os.VersionID, ".")
	stream := strings.Contains(strings.ToLower(os.PrettyName), "stream")
	switch {
	case major == "7":
		return EOLRelease{Name: "CentOS Linux 7", Date: "2024-06-30", VaultDir: "7.9.2009"}, true
	case major == "8" && stream:
		return EOLRelease{Name: "CentOS Stream 8", Date: "2024-05-31", VaultDir: "8-stream", el8: true}, true
	case major == "8":
		return EOLRelease{Name: "CentOS Linux 8", Date: "2021-12-31", VaultDir: "8.5.2111", el8: true}, true
	}
	return EOLRelease{}, false
}

// MirrorRepoFile is the file os_mirror writes; the files it replaces are
// renamed to NAME.shoal-orig (yum and dnf read *.repo only), and
// `cluster down --purge` puts them back.
const (
	MirrorRepoFile = "/etc/yum.repos.d/shoal-os-mirror.repo"
	RepoBackupExt  = ".shoal-orig"
)

// mirrorRepos are the repositories os_mirror defines: the ones a stock
// install enables, under their own ids so that nothing else changes.
func (e EOLRelease) mirrorRepos() [][3]string { // id, name, path under VaultDir
	if e.el8 {
		return [][3]string{
			{"baseos", "BaseOS", "BaseOS/$basearch/os/"},
			{"appstream", "AppStream", "AppStream/$basearch/os/"},
			{"extras", "Extras", "extras/$basearch/os/"},
		}
	}
	return [][3]string{
		{"base", "Base", "os/$basearch/"},
		{"updates", "Updates", "updates/$basearch/"},
		{"extras", "Extras", "extras/$basearch/"},
	}
}

// MirrorRepoText is the content of MirrorRepoFile for mirror (a vault or a
// mirror of it, like https://mirrors.aliyun.com/centos-vault).
func (e EOLRelease) MirrorRepoText(mirror string) string {
	mirror = strings.TrimRight(mirror, "/")
	key := "RPM-GPG-KEY-CentOS-7"
	if e.el8 {
		key = "RPM-GPG-KEY-centosofficial"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by shoal (engine os_mirror): %s reached its end of life on %s\n", e.Name, e.Date)
	fmt.Fprintf(&b, "# and its repositories moved to the vault. The files this replaces are kept\n")
	fmt.Fprintf(&b, "# as *.repo%s; `cluster down --purge` puts them back.\n", RepoBackupExt)
	for _, r := range e.mirrorRepos() {
		fmt.Fprintf(&b, "\n[%s]\nname=%s - %s (%s)\nbaseurl=%s/%s/%s\nenabled=1\ngpgcheck=1\ngpgkey=file:///etc/pki/rpm-gpg/%s\n",
			r[0], e.Name, r[1], mirror, mirror, e.VaultDir, r[2], key)
	}
	return b.String()
}

// retiredHost served CentOS releases that are now in the vault: for an EOL
// release, a repository there is dead even when the server answers.
func retiredHost(h string) bool {
	switch strings.TrimPrefix(strings.TrimPrefix(h, "http://"), "https://") {
	case "mirrorlist.centos.org", "mirror.centos.org":
		return true
	}
	return false
}

// OSRepoPlan is what os-repos does on a host: files to rename aside and the
// mirror file to write ("" for none).
type OSRepoPlan struct {
	MoveAside []string
	Write     string
	// Note is said to the user (os_mirror given where it does not apply).
	Note string
}

// IsDockerRepo tells Docker's own repositories (docker-ce.repo) from the
// OS's: they are not the OS's to answer for.
func IsDockerRepo(r Repo) bool { return strings.HasPrefix(r.ID, "docker-ce") }

// PlanOSRepos decides what the OS's own repositories need before packages
// can be installed. needPackages says whether provisioning will install
// any: dead repositories are an error only then. reach holds the probe's
// answers (a host missing from it is taken to answer).
func PlanOSRepos(os OS, dir RepoDir, reach map[string]bool, mirror string, needPackages bool) (OSRepoPlan, error) {
	var plan OSRepoPlan
	name := displayName(os)
	eol, isEOL := EOL(os)
	mirror, err := plan.useMirror(mirror, name, isEOL)
	if err != nil {
		return plan, err
	}
	dead := deadRepo(reach, isEOL)
	aside := map[string]bool{}
	if mirror != "" {
		if aside, err = plan.mirror(dir, eol, mirror, dead); err != nil {
			return plan, err
		}
	}
	deadRepos := deadOSRepos(dir.Repos, dead, func(r Repo) bool {
		return mirror != "" && (r.File == MirrorRepoFile || aside[r.File])
	})
	if !needPackages || len(deadRepos) == 0 {
		if needPackages && os.ID == "rhel" && !anyEnabled(dir.Repos) {
			return plan, fmt.Errorf("%s has no enabled repositories (is it registered? `subscription-manager register`, then `subscription-manager attach --auto` on older releases): container-selinux and Docker's dependencies come from them", name)
		}
		return plan, nil
	}
	return plan, deadReposError(deadRepos, eol, isEOL)
}

// useMirror checks os_mirror and returns the mirror to use: none (with a
// note) for a release that is not an end-of-life CentOS.
func (plan *OSRepoPlan) useMirror(mirror, name string, isEOL bool) (string, error) {
	if mirror != "" && validate.RepoURL(strings.TrimRight(mirror, "/")) != nil {
		return "", fmt.Errorf("os_mirror %q is not a plain http(s) URL (like https://vault.centos.org)", mirror)
	}
	if mirror != "" && !isEOL {
		plan.Note = fmt.Sprintf("os_mirror is not used: %s is not an end-of-life CentOS release and keeps its own repositories", name)
		return "", nil
	}
	return mirror, nil
}

// deadOSRepos are the enabled OS repositories that are dead, but for
// those the mirror replaces.
func deadOSRepos(repos []Repo, dead, replaced func(Repo) bool) []Repo {
	var out []Repo
	for _, r := range repos {
		if r.Enabled && !IsDockerRepo(r) && !replaced(r) && dead(r) {
			out = append(out, r)
		}
	}
	return out
}

// deadRepo tells a repository none of whose servers answer (reach, the
// probe's answers), or that an end-of-life release's retired servers serve.
func deadRepo(reach map[string]bool, isEOL bool) func(Repo) bool {
	return func(r Repo) bool {
		for _, h := range r.Hosts() {
			if ok, known := reach[h]; known && !ok || isEOL && retiredHost(h) {
				return true
			}
		}
		return false
	}
}

// mirror plans the mirror file of an end-of-life release and the files set
// aside for it; it returns those (by file).
func (plan *OSRepoPlan) mirror(dir RepoDir, eol EOLRelease, mirror string, dead func(Repo) bool) (map[string]bool, error) {
	has := map[string]bool{}
	for _, f := range dir.Files {
		has[f] = true
	}
	want := eol.MirrorRepoText(mirror)
	aside := eol.setAside(dir.Repos, dead)
	for f := range aside {
		if has[f+RepoBackupExt] {
			return aside, fmt.Errorf("%s and its backup %s both exist: shoal keeps the first original and will not overwrite it; move one of them away", f, f+RepoBackupExt)
		}
		plan.MoveAside = append(plan.MoveAside, f)
	}
	sort.Strings(plan.MoveAside)
	if len(plan.MoveAside) > 0 || strings.TrimRight(dir.Text[MirrorRepoFile], "\n") != strings.TrimRight(want, "\n") {
		plan.Write = want
	}
	return aside, nil
}

// setAside are the files (a set) whose enabled OS repositories stop yum
// once the mirror file is there: the same id twice stops it, and so does
// a dead CentOS repository.
func (e EOLRelease) setAside(repos []Repo, dead func(Repo) bool) map[string]bool {
	ids := map[string]bool{}
	for _, r := range e.mirrorRepos() {
		ids[r[0]] = true
	}
	aside := map[string]bool{}
	for _, r := range repos {
		if r.File == MirrorRepoFile || IsDockerRepo(r) || !r.Enabled {
			continue
		}
		if ids[r.ID] || dead(r) && isCentOSRepo(r) {
			aside[r.File] = true
		}
	}
	return aside
}

// deadReposError says which of the OS's repositories do not answer, and
// what to do about it.
func deadReposError(deadRepos []Repo, eol EOLRelease, isEOL bool) error {
	var list []string
	centos := true
	for _, r := range deadRepos {
		list = append(list, fmt.Sprintf("%s (%s, %s)", r.ID, strings.Join(r.Hosts(), " "), r.File))
		centos = centos && isCentOSRepo(r)
	}
	msg := fmt.Sprintf("the OS's repositories do not answer: %s", strings.Join(list, "; "))
	switch {
	case isEOL && centos:
		return fmt.Errorf("%s: %s reached its end of life on %s and its repositories moved to the vault. "+
			"Set engine { os_mirror = \"https://vault.centos.org\" } (or --engine-os-mirror; a mirror of the vault such as "+
			"https://mirrors.aliyun.com/centos-vault works too): shoal then points %s at it, keeping the original files as *.repo%s",
			msg, eol.Name, eol.Date, strings.Join(eol.repoIDs(), ", "), RepoBackupExt)
	default:
		return fmt.Errorf("%s. Packages (Docker's dependencies, container-selinux) come from them: fix or disable them on the host (yum-config-manager --disable ID)", msg)
	}
}

func (e EOLRelease) repoIDs() []string {
	var out []string
	for _, r := range e.mirrorRepos() {
		out = append(out, r[0])
	}
	return out
}

func isCentOSRepo(r Repo) bool {
	for _, h := range r.Hosts() {
		if strings.HasSuffix(h, ".centos.org") {
			return true
		}
	}
	return false
}

func anyEnabled(repos []Repo) bool {
	for _, r := range repos {
		if r.Enabled && !IsDockerRepo(r) {
			return true
		}
	}
	return false
}

// ConflictingPackages are packages that stop a docker-ce install:
// containerd.io obsoletes and conflicts with runc (which podman and buildah
// need), podman-docker owns /usr/bin/docker, and CentOS/RHEL 7's own docker
// packages own the same files as docker-ce.
const ConflictingPackages = "docker docker-client docker-common docker-engine podman podman-docker buildah runc"

// Conflicts lists the installed packages that stop a docker-ce install.
func Conflicts(installed func(string) bool) []string {
	var out []string
	for _, p := range strings.Fields(ConflictingPackages) {
		if installed != nil && installed(p) {
			out = append(out, p)
		}
	}
	return out
}

// ResolveConflicts is the command that removes the conflicting packages
// before docker-ce goes in, or an error when the user did not allow it:
// removing podman is not shoal's to decide.
func (r RHEL) ResolveConflicts(os OS, conflicts []string, replace bool) (string, error) {
	if len(conflicts) == 0 {
		return "", nil
	}
	pm := packager(r.Major)
	if !replace {
		return "", fmt.Errorf("%s has %s installed, which docker-ce cannot be installed beside (%s): %s would stop with a dependency error. "+
			"Set engine { replace_conflicting = true } (or --engine-replace-conflicting) to let shoal run `%s remove -y %s` first, or remove them yourself",
			displayName(os), strings.Join(conflicts, ", "), strings.Join(conflictReasons(conflicts), "; "), pm, pm, strings.Join(conflicts, " "))
	}
	// remove, not --allowerasing: the packages that go are the ones named
	// here (and what needs them), in the transcript for all to see.
	return shell.Word(pm) + " remove -y -q " + shell.Words(conflicts...), nil
}

// conflictReasons say why the conflicting packages stop docker-ce.
func conflictReasons(conflicts []string) []string {
	has := func(names ...string) bool {
		return slices.ContainsFunc(conflicts, func(c string) bool { return slices.Contains(names, c) })
	}
	var why []string
	if has("podman", "buildah", "runc") {
		why = append(why, "containerd.io obsoletes and conflicts with runc, which podman and buildah need")
	}
	if has("podman-docker") {
		why = append(why, "podman-docker owns /usr/bin/docker")
	}
	if has("docker", "docker-client", "docker-common", "docker-engine") {
		why = append(why, "the distribution's docker packages own docker-ce's files")
	}
	return why
}

func displayName(os OS) string {
	if os.PrettyName != "" {
		return os.PrettyName
	}
	return strings.TrimSpace(os.ID + " " + os.VersionID)
}

// extrasRepo tells whether an extras repository is enabled, and else
// names the first disabled one ("" for none).
func extrasRepo(repos []Repo) (enabled bool, disabled string) {
	for _, r := range repos {
		if !strings.Contains(r.ID, "extras") {
			continue
		}
		if r.Enabled {
			return true, ""
		}
		disabled = cmp.Or(disabled, r.ID)
	}
	return false, disabled
}

// RHEL7Extras makes sure RHEL 7's extras repository (container-selinux) is
// enabled: the command that enables it, "" when it is, or an error.
func RHEL7Extras(os OS, repos []Repo, hasSubscriptionManager bool) (string, error) {
	if os.ID != "rhel" || !strings.HasPrefix(os.VersionID, "7") {
		return "", nil
	}
	enabled, disabled := extrasRepo(repos)
	if enabled {
		return "", nil
	}
	if disabled != "" {
		return "yum-config-manager --enable " + shell.Word(disabled), nil
	}
	if hasSubscriptionManager {
		return "subscription-manager repos --enable=rhel-7-server-extras-rpms", nil
	}
	return "", fmt.Errorf("%s: container-selinux comes from the extras repository, which this host does not have (no rhel-7-server-extras-rpms and no subscription-manager): add it, or install container-selinux yourself", displayName(os))
}
