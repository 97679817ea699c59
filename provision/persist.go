package provision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/ui"
)

// What shoal leaves on a host so that its settings survive a reboot that
// rewrites them: Docker rewrites a container host's /etc/hosts and
// /etc/hostname at every start, cloud-init with manage_etc_hosts: true or
// preserve_hostname: false does so on VMs. A small unit puts them back at
// boot, before dockerd starts (dockerd takes its node's hostname then), from
// copies kept in /etc/shoal; and cloud-init is told, in its own
// configuration, to leave them alone.
const (
	PersistDir      = "/etc/shoal"
	persistHostname = PersistDir + "/hostname"
	persistBlock    = PersistDir + "/hosts.block"
	persistScript   = PersistDir + "/restore"
	PersistUnitName = "shoal-restore.service"
	persistUnit     = "/etc/systemd/system/" + PersistUnitName
	cloudInitCfg    = "/etc/cloud/cloud.cfg.d/99-shoal.cfg"
)

// PersistUndo is the shell that takes the restore away again (cluster down
// --purge): the unit disabled and removed, the copies and cloud-init's
// setting gone. It runs as root.
func PersistUndo() string {
	return "systemctl disable " + PersistUnitName + " >/dev/null 2>&1 || true; rm -f " + persistUnit + " " + cloudInitCfg + "; rm -rf " + PersistDir
}

// PersistFile is one file the restore needs.
type PersistFile struct {
	Path string
	Data []byte
	Mode fs.FileMode
}

// hostsBlock is the cluster block exactly as EditHosts writes it ("" when
// there are no entries).
func hostsBlock(entries []HostEntry) (string, error) {
	if len(entries) == 0 {
		return "", nil
	}
	full, err := EditHosts("", "x", entries)
	if err != nil {
		return "", err
	}
	_, block, _ := strings.Cut(full, "\n") // drop the 127.0.1.1 line
	return block, nil
}

// PersistFiles lists what the host must hold; cloudInit says whether the
// host has cloud-init (/etc/cloud).
func PersistFiles(hostname string, entries []HostEntry, cloudInit bool) ([]PersistFile, error) {
	block, err := hostsBlock(entries)
	if err != nil {
		return nil, err
	}
	files := []PersistFile{
		{Path: persistHostname, Data: []byte(hostname + "\n"), Mode: 0o644},
		{Path: persistBlock, Data: []byte(block), Mode: 0o644},
		{Path: persistScript, Data: []byte(restoreScript()), Mode: 0o755},
		{Path: persistUnit, Data: []byte(restoreUnit), Mode: 0o644},
	}
	if cloudInit {
		files = append(files, PersistFile{Path: cloudInitCfg, Data: []byte(cloudInitConfig), Mode: 0o644})
	}
	return files, nil
}

const cloudInitConfig = `# Written by shoal: the hostname and the /etc/hosts block are shoal's.
manage_etc_hosts: false
preserve_hostname: true
`

const restoreUnit = `# Written by shoal: puts back the hostname and the cluster block of
# /etc/hosts that shoal set, when the boot rewrote them (a container's
# runtime, cloud-init).
[Unit]
Description=Restore the hostname and /etc/hosts block set by shoal
DefaultDependencies=no
After=local-fs.target cloud-init-local.service cloud-init.service
Before=docker.service network-online.target

[Service]
Type=oneshot
ExecStart=/bin/sh ` + persistScript + `
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
`

// hostsAwk is EditHosts in awk: it runs on the host at boot, where shoal is
// not. hn is the hostname, blockfile the cluster block; stdin /etc/hosts.
// TestHostsAwkMatchesEditHosts holds the two together.
const hostsAwk = `
function trim(s) { sub(/^[ \t\r\n]+/, "", s); sub(/[ \t\r\n]+$/, "", s); return s }
{ line[NR] = $0 }
END {
	n = NR
	k = 0; inb = 0
	for (i = 1; i <= n; i++) {
		t = trim(line[i])
		if (t == begin) { inb = 1; continue }
		if (t == end && inb) { inb = 0; continue }
		if (!inb) kept[++k] = line[i]
	}
	lo = "127.0.1.1\t" hn; found = 0; at = 0
	for (i = 1; i <= k; i++) {
		nf = split(kept[i], f, /[ \t\r\n\v\f]+/)
		j = 1; if (nf > 0 && f[1] == "") j = 2
		if (nf < j || substr(f[j], 1, 1) == "#") continue
		if (f[j] == "127.0.1.1") {
			found = 1; has = 0
			for (m = j + 1; m <= nf; m++) if (f[m] == hn) has = 1
			if (!has) kept[i] = lo
		}
		if (f[j] == "127.0.0.1" && at == 0) at = i + 1
	}
	if (!found) {
		if (at == 0) at = k + 1
		for (i = k; i >= at; i--) kept[i + 1] = kept[i]
		kept[at] = lo; k++
	}
	for (i = 1; i <= k; i++) print kept[i]
	while ((getline l < blockfile) > 0) print l
}
`

func restoreScript() string {
	return `#!/bin/sh
# Written by shoal (see ` + persistUnit + `).
d=` + PersistDir + `
if [ -s "$d/hostname" ]; then
	n=$(cat "$d/hostname")
	[ "$(hostname)" = "$n" ] || hostname "$n" || echo "shoal: cannot set the hostname $n" >&2
	[ "$(cat /etc/hostname 2>/dev/null)" = "$n" ] || printf '%s\n' "$n" > /etc/hostname
	# Not in /tmp: at boot systemd-tmpfiles empties it, unordered with this
	# unit, and took the file from under awk (the block was not restored).
	t=$(mktemp "$d/hosts.XXXXXX") || exit 1
	awk -v hn="$n" -v begin='` + hostsBegin + `' -v end='` + hostsEnd + `' -v blockfile="$d/hosts.block" '` + hostsAwk + `' /etc/hosts > "$t" &&
		{ cmp -s "$t" /etc/hosts || cat "$t" > /etc/hosts; }
	rm -f "$t"
fi
exit 0
`
}

// persistProbe prints the checksums of the files, whether the unit is
// enabled, and whether cloud-init is there. It only reads, as the login
// user: the unit's link is looked at, not asked of systemctl (which a
// user without a D-Bus session cannot ask).
func PersistProbe() string {
	return "sha256sum " + strings.Join([]string{persistHostname, persistBlock, persistScript, persistUnit, cloudInitCfg}, " ") +
		" 2>/dev/null; echo '@@enabled'; test -L /etc/systemd/system/multi-user.target.wants/" + PersistUnitName + " && echo enabled; echo '@@cloud'; test -d /etc/cloud && echo yes; true"
}

// PersistChanges reads the probe's output and returns the files to write
// and whether the unit must be enabled.
// The probe's final newlines may have been trimmed (Facts.Section).
func PersistChanges(probe, hostname string, entries []HostEntry) (write []PersistFile, enable bool, err error) {
	probe = strings.TrimRight(probe, "\n") + "\n"
	sums, rest, _ := strings.Cut(probe, "@@enabled\n")
	enabled, cloud, _ := strings.Cut(rest, "@@cloud\n")
	files, err := PersistFiles(hostname, entries, strings.TrimSpace(cloud) == "yes")
	if err != nil {
		return nil, false, err
	}
	have := parseSums(sums)
	for _, f := range files {
		sum := sha256.Sum256(f.Data)
		if have[f.Path] != hex.EncodeToString(sum[:]) {
			write = append(write, f)
		}
	}
	unitChanged := slices.ContainsFunc(write, func(f PersistFile) bool { return f.Path == persistUnit })
	return write, unitChanged || strings.TrimSpace(enabled) != "enabled", nil
}

// parseSums reads sha256sum's lines: each file's sum, by path.
func parseSums(text string) map[string]string {
	have := map[string]string{}
	for _, l := range strings.Split(text, "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			have[f[1]] = f[0]
		}
	}
	return have
}

// persistProbeName is the facts section that carries PersistProbe when
// Spec.Persist asks for the restore: it costs no session of its own.
const persistProbeName = "shoal-persist"

func persistProbe() Probe {
	return Probe{Name: persistProbeName, Cmd: PersistProbe()}
}

// persistPlan is what the persist step does: the files it writes (the
// copies written first: the restore unit runs when dockerd starts, and a
// restart in this run must put back the new /etc/hosts block, not the
// last run's) and whether the unit is enabled (again).
type persistPlan struct {
	files  []sshrun.File
	enable bool
}

// persistStep keeps what provisioning set over a reboot that rewrites it
// (Spec.Persist). Its files go first, before any other step; enabling the
// unit is the docker-service step's (EnableUnit), and when that is all it
// does the step is reported at the end (finishPersist).
type persistStep struct{}

func (persistStep) Name() StepName { return StepPersist }
func (persistStep) Check(_ context.Context, h *Host) (bool, error) {
	return h.persist != nil && len(h.persist.files) > 0, nil
}
func (persistStep) Apply(ctx context.Context, h *Host) error {
	return writeFiles(ctx, h.R, h.persist.files)
}

// planPersist reads what the restore needs from the facts probe's answer
// (asking the host when the probe did not carry it); it writes nothing.
func (h *Host) planPersist(ctx context.Context) (*persistPlan, error) {
	if h.persist != nil || !h.Spec.Persist {
		return h.persist, nil
	}
	probed := h.Facts.Section(persistProbeName)
	if !strings.Contains(probed, "@@enabled") {
		res, err := h.R.Run(ctx, PersistProbe())
		if err != nil {
			return nil, &StepError{Host: h.R.Host(), Step: StepPersist, Err: fmt.Errorf("read the restore unit: %w", err)}
		}
		probed = string(res.Stdout)
	}
	write, enable, err := PersistChanges(probed, h.Spec.Hostname, h.Spec.Hosts)
	if err != nil {
		return nil, &StepError{Host: h.R.Host(), Step: StepPersist, Err: err}
	}
	p := &persistPlan{files: make([]sshrun.File, len(write)), enable: enable}
	for i, f := range write {
		p.files[i] = sshrun.File{Path: f.Path, Data: f.Data, Mode: f.Mode}
		if path.Dir(f.Path) == PersistDir {
			p.files[i].DirMode = 0o755
		}
	}
	h.persist = p
	return p, nil
}

// finishPersist reports the persist step when it wrote no files: it only
// had the unit enabled again (by the docker-service step), or nothing.
func finishPersist(h *Host, rep *Report, progress Progress) {
	if h.persist == nil || len(h.persist.files) > 0 {
		return
	}
	if !h.persist.enable {
		progress(string(StepPersist), ui.Unchanged, "")
		return
	}
	progress(string(StepPersist), ui.Changed, "")
	rep.Changed = append(rep.Changed, string(StepPersist))
}
