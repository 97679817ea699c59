package bootstrap

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"github.com/shoal-dev/shoal/internal/validate"
	"github.com/shoal-dev/shoal/internal/wait"
	"io"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/shoal-dev/shoal/internal/shell"
)

// Backup and restore of a swarm's Raft state (/var/lib/docker/swarm of a
// manager). Reading it needs that manager's dockerd stopped; a restore puts
// it on a new manager and starts a new cluster of one from it
// (--force-new-cluster), which the other nodes join.

// SwarmDir is where a manager keeps the swarm's Raft state.
const SwarmDir = "/var/lib/docker/swarm"

// BackupChoice is the manager whose state is copied.
type BackupChoice struct {
	ID, Hostname string
	// Pause: the copy stops the only manager (or one of two): the swarm
	// takes no changes until it is back.
	Pause bool
}

// PickBackupSource chooses the manager to copy from: with three or more
// managers a reachable one that does not lead (stopping it keeps the
// quorum: refused when it would not); with fewer, the leader, and the swarm
// pauses for the copy.
func PickBackupSource(members []Member) (BackupChoice, error) {
	var managers, reachable int
	var followers []Member
	var leader *Member
	for i, m := range members {
		if m.Role != RoleManager {
			continue
		}
		managers++
		if m.Reachable {
			reachable++
		}
		if m.Leader {
			leader = &members[i]
		} else if m.Reachable {
			followers = append(followers, m)
		}
	}
	if managers == 0 || leader == nil {
		return BackupChoice{}, fmt.Errorf("the swarm has no leader now (%d managers, %d reachable): a backup needs a working swarm", managers, reachable)
	}
	if managers < 3 {
		return BackupChoice{ID: leader.ID, Hostname: leader.Hostname, Pause: true}, nil
	}
	if need := managers/2 + 1; reachable-1 < need {
		return BackupChoice{}, fmt.Errorf("stopping a manager for the copy would lose the Raft quorum: %d of %d managers reachable, %d needed", reachable, managers, need)
	}
	sort.Slice(followers, func(i, j int) bool { return followers[i].Hostname < followers[j].Hostname })
	return BackupChoice{ID: followers[0].ID, Hostname: followers[0].Hostname}, nil
}

// ManifestNode is one node of the swarm when it was backed up.
type ManifestNode struct {
	ID            string            `json:"id"`
	Hostname      string            `json:"hostname"`
	Role          validate.Role     `json:"role"`
	Addr          string            `json:"addr,omitempty"`
	Availability  string            `json:"availability"`
	Labels        map[string]string `json:"labels,omitempty"`
	EngineVersion string            `json:"engineVersion,omitempty"`
}

// Manifest describes a backup.
type Manifest struct {
	Version int       `json:"version"`
	Cluster string    `json:"cluster"`
	SwarmID string    `json:"swarmID"`
	Created time.Time `json:"created"`
	Source  string    `json:"source"`
	// Autolock: the swarm had autolock on. The copy itself is taken with
	// it off (see cluster backup), so the state needs no key to start.
	Autolock bool `json:"autolock"`
	// Locked: the copied state is encrypted with the unlock key.
	Locked bool           `json:"locked"`
	Nodes  []ManifestNode `json:"nodes"`
}

// nodeKey is the manager's TLS key; with autolock on it is encrypted with
// the unlock key, and with it the Raft log's key.
const nodeKey = SwarmDir + "/certificates/swarm-node.key"

// WaitKeyPlain waits until the node's swarm key is no longer encrypted
// (after autolock was turned off, each manager rewrites it).
func WaitKeyPlain(ctx context.Context, n *Node, timeout time.Duration) error {
	err := wait.Poll(ctx, pollInterval, timeout, func(ctx context.Context) (bool, error) {
		res, err := n.R.RunSudo(ctx, "grep -c ENCRYPTED "+shell.Quote(nodeKey)+" || true")
		return err == nil && strings.TrimSpace(string(res.Stdout)) == "0", nil
	})
	if err != nil {
		return fmt.Errorf("%s: its swarm key is still encrypted %s after autolock was turned off", n.Name, timeout)
	}
	return nil
}

// Describe reads what the manifest says of the swarm through a manager.
func Describe(ctx context.Context, mgr *Node) (Manifest, error) {
	sw, err := mgr.API.SwarmInspect(ctx)
	if err != nil {
		return Manifest{}, fmt.Errorf("%s: swarm inspect: %w", mgr.Name, err)
	}
	nodes, err := mgr.API.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return Manifest{}, fmt.Errorf("%s: node ls: %w", mgr.Name, err)
	}
	m := Manifest{Version: 1, SwarmID: sw.ID, Autolock: sw.Spec.EncryptionConfig.AutoLockManagers}
	for _, n := range nodes {
		m.Nodes = append(m.Nodes, ManifestNode{ID: n.ID, Hostname: n.Description.Hostname, Role: validate.Role(n.Spec.Role), Addr: n.Status.Addr,
			Availability: string(n.Spec.Availability), Labels: n.Spec.Labels, EngineVersion: n.Description.Engine.EngineVersion})
	}
	sort.Slice(m.Nodes, func(i, j int) bool { return m.Nodes[i].Hostname < m.Nodes[j].Hostname })
	return m, nil
}

// stopDocker and startDocker stop and start dockerd with its socket unit,
// so that no client starts it again through the socket meanwhile.
const (
	stopDocker  = "systemctl stop docker.socket 2>/dev/null; systemctl stop docker"
	startDocker = "systemctl start docker && { systemctl start docker.socket 2>/dev/null || true; }"
)

// stagingParent is where the job on the host packs the Raft state: a
// fresh 0700 folder there, owned by the login user once the pack is whole
// (read over SFTP), outside /var/lib/docker.
const stagingParent = "/var/tmp"

// SwarmRoom is what the copy needs on the host and has: the Raft state's
// size and the free space where it is packed, in bytes.
type SwarmRoom struct{ Used, Free int64 }

// MeasureSwarm reads the size of the node's Raft state and the free space
// for its pack, before anything is stopped.
func MeasureSwarm(ctx context.Context, n *Node) (SwarmRoom, error) {
	cmd := "du -sk " + shell.Quote(SwarmDir) + " | cut -f1 && df -Pk " + shell.Quote(stagingParent) + " | awk 'NR==2 {print $4}'"
	res, err := n.R.RunSudo(ctx, cmd)
	if err != nil {
		return SwarmRoom{}, fmt.Errorf("%s: measuring %s and the free space in %s: %w", n.Name, SwarmDir, stagingParent, err)
	}
	r, err := parseRoom(string(res.Stdout))
	if err != nil {
		return SwarmRoom{}, fmt.Errorf("%s: measuring %s: %w", n.Name, SwarmDir, err)
	}
	return r, nil
}

// parseRoom reads MeasureSwarm's two lines of KiB.
func parseRoom(out string) (SwarmRoom, error) {
	f := strings.Fields(out)
	var kib [2]int64
	if len(f) != 2 {
		return SwarmRoom{}, fmt.Errorf("want two sizes in KiB, got %q", out)
	}
	for i := range kib {
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil || v < 0 || v > 1<<40 {
			return SwarmRoom{}, fmt.Errorf("want two sizes in KiB, got %q", out)
		}
		kib[i] = v
	}
	return SwarmRoom{Used: kib[0] << 10, Free: kib[1] << 10}, nil
}

// Job exit codes: which step of the job failed.
const (
	jobStopFailed  = 1
	jobPackFailed  = 2
	jobStartFailed = 3
)

// backupJob is the script that stops dockerd, packs the Raft state into
// dir and starts dockerd again, whatever the pack did; then it hands the
// pack to owner and writes its exit code to dir/status. It runs as one job
// on the host (see launchJob): a shoal killed or cut off meanwhile leaves
// dockerd running all the same.
func backupJob(dir, owner string) string {
	q := shell.Quote
	d := q(dir)
	return strings.Join([]string{
		"rc=0",
		"{ " + stopDocker + "; } || rc=" + strconv.Itoa(jobStopFailed),
		"[ $rc -ne 0 ] || ( umask 077 && tar -C " + q(strings.TrimSuffix(SwarmDir, "/swarm")) + " -czf " + d + "/swarm.tgz swarm ) || rc=" + strconv.Itoa(jobPackFailed),
		"{ " + startDocker + "; } || rc=" + strconv.Itoa(jobStartFailed),
		"[ $rc -ne 0 ] || chown " + q(owner) + " " + d + " " + d + "/swarm.tgz || rc=" + strconv.Itoa(jobPackFailed),
		"echo $rc > " + d + "/status.tmp && mv " + d + "/status.tmp " + d + "/status",
	}, "\n")
}

// launchJob makes dir (0700, it must not exist) and starts script in the
// background, as a transient systemd unit when systemd runs, else in a
// session of its own: it does not end with the SSH session. The folders
// of jobs that ended and were not removed (their shoal was killed) go
// first.
func launchJob(dir, unit, script string) string {
	q := shell.Quote
	sh := "sh -c " + q(script+"\n") + " >" + q(dir+"/log") + " 2>&1"
	old := "for d in " + q(path.Dir(dir)) + "/shoal-backup-*; do [ -f \"$d/status\" ] && rm -rf \"$d\"; done; "
	return old + "mkdir -m 700 " + q(dir) + " && if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then " +
		"systemd-run --unit=" + q(unit) + " sh -c " + q(sh) + "; else " +
		"( setsid sh -c " + q(sh) + " </dev/null >/dev/null 2>&1 & ); fi"
}

// SwarmPack is the Raft state packed on the host, in a folder of its own.
type SwarmPack struct {
	Path string // the tar.gz, readable by the login user
	Size int64
	Dir  string
}

// Remove deletes the pack's folder on the host.
func (p *SwarmPack) Remove(ctx context.Context, n *Node) {
	_, _ = n.R.RunSudo(context.WithoutCancel(ctx), "rm -rf "+shell.Quote(p.Dir))
}

// jobTimeout bounds the wait for the job (stop, pack, start).
const jobTimeout = 10 * time.Minute

// PackSwarmState has a job on the host stop the node's dockerd, pack its
// Raft state and start dockerd again (see backupJob), waits for it, and
// unlocks the node with key when it comes up locked. The pack is left on
// the host for owner (the login user) to read; Remove deletes it.
func PackSwarmState(ctx context.Context, n *Node, owner, id, key string, redact func(string) string) (*SwarmPack, error) {
	dir := stagingParent + "/shoal-backup-" + id
	p := &SwarmPack{Path: dir + "/swarm.tgz", Dir: dir}
	if _, err := n.R.RunSudo(ctx, launchJob(dir, "shoal-backup-"+id, backupJob(dir, owner))); err != nil {
		return nil, fmt.Errorf("%s: starting the copy's job: %w", n.Name, err)
	}
	rc, err := waitJob(ctx, n, dir)
	if err != nil {
		return nil, err
	}
	bg := context.WithoutCancel(ctx)
	uerr := waitAndUnlock(bg, n, key, redact, false)
	if rc != 0 {
		log, _ := n.R.RunSudo(bg, "tail -c 2000 "+shell.Quote(dir+"/log"))
		p.Remove(ctx, n)
		step := map[int]string{jobStopFailed: "stopping dockerd", jobPackFailed: "packing " + SwarmDir, jobStartFailed: "starting dockerd again"}[rc]
		return nil, fmt.Errorf("%s: the copy's job failed %s (exit %d): %s", n.Name, step, rc, redact(strings.TrimSpace(string(log.Stdout))))
	}
	if uerr != nil {
		p.Remove(ctx, n)
		return nil, uerr
	}
	res, err := n.R.RunSudo(ctx, "stat -c %s "+shell.Quote(p.Path))
	if err == nil {
		p.Size, err = strconv.ParseInt(strings.TrimSpace(string(res.Stdout)), 10, 64)
	}
	if err != nil {
		p.Remove(ctx, n)
		return nil, fmt.Errorf("%s: the size of the pack: %w", n.Name, err)
	}
	return p, nil
}

// waitJob waits for the job's status file and returns its exit code.
func waitJob(ctx context.Context, n *Node, dir string) (int, error) {
	rc := 0
	err := wait.Poll(ctx, pollInterval*4, jobTimeout, func(ctx context.Context) (bool, error) {
		res, err := n.R.RunSudo(ctx, "cat "+shell.Quote(dir+"/status")+" 2>/dev/null || true")
		s := strings.TrimSpace(string(res.Stdout))
		if err != nil || s == "" {
			return false, nil
		}
		if rc, err = strconv.Atoi(s); err != nil {
			return false, errJobStatus{s}
		}
		return true, nil
	})
	var bad errJobStatus
	switch {
	case err == nil:
		return rc, nil
	case errors.As(err, &bad):
		return 0, fmt.Errorf("%s: the copy's job wrote status %q", n.Name, bad.status)
	}
	return 0, fmt.Errorf("%s: the copy's job did not end within %s (it goes on on the host and starts dockerd again itself; its log is %s/log): %w", n.Name, jobTimeout, dir, err)
}

// errJobStatus is a status file that holds no exit code.
type errJobStatus struct{ status string }

func (e errJobStatus) Error() string { return "status " + e.status }

// waitAndUnlock waits until the node's engine answers and its swarm is
// active (or, with pending, still looking for its old managers), unlocking
// it with key when it is locked (autolock).
func waitAndUnlock(ctx context.Context, n *Node, key string, redact func(string) string, pending bool) error {
	u := nodeUnlocker{n: n, key: key, redact: redact, pending: pending}
	err := wait.Poll(ctx, pollInterval, 2*time.Minute, u.poll)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: dockerd did not come back with its swarm: %w", n.Name, err)
	}
	return err
}

// nodeUnlocker is waitAndUnlock's poll: it unlocks the node once.
type nodeUnlocker struct {
	n        *Node
	key      string
	redact   func(string) string
	pending  bool
	unlocked bool
}

func (u *nodeUnlocker) poll(ctx context.Context) (bool, error) {
	s, err := u.n.State(ctx)
	if err != nil {
		return false, nil
	}
	switch {
	case s.LocalNodeState == StateLocked && u.key != "" && !u.unlocked:
		u.unlocked = true
		return false, unlockBounded(ctx, u.n, u.key, u.redact)
	case s.LocalNodeState == StateLocked && u.key == "":
		return false, fmt.Errorf("%s: the swarm is locked (autolock) and no unlock key is at hand", u.n.Name)
	}
	return s.LocalNodeState != StateLocked && (u.pending || s.LocalNodeState != StatePending), nil
}

// unlockBounded unlocks the node with key. Docker's unlock answers once the
// manager reaches its quorum: bounded, so that a manager whose peers are
// gone does not hang the run.
func unlockBounded(ctx context.Context, n *Node, key string, redact func(string) string) error {
	uctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	if err := n.API.SwarmUnlock(uctx, swarm.UnlockRequest{UnlockKey: key}); err != nil {
		return fmt.Errorf("%s: swarm unlock: %s", n.Name, redact(err.Error()))
	}
	return nil
}

// PutSwarmState replaces the node's Raft state with a backup's (its dockerd
// stopped meanwhile), unlocks it with key when the backup was locked, and
// starts a new cluster of one manager from it at advertise
// (--force-new-cluster): the swarm's services, secrets, configs and
// networks come back; the other nodes join it again.
func PutSwarmState(ctx context.Context, n *Node, write func(ctx context.Context, path string, data []byte) error, tgz []byte, advertise, key string, redact func(string) string) error {
	tmp := "/var/lib/docker/shoal-swarm-restore.tgz"
	if err := CheckSwarmTar(bytes.NewReader(tgz)); err != nil {
		return fmt.Errorf("%s: the backup's swarm state: %w", n.Name, err)
	}
	if _, err := n.R.RunSudo(ctx, "install -d -m 700 /var/lib/docker"); err != nil {
		return err
	}
	if err := write(ctx, tmp, tgz); err != nil {
		return fmt.Errorf("%s: uploading the swarm state: %w", n.Name, err)
	}
	dir := shell.Quote(SwarmDir)
	// Only swarm/ is taken from the pack (CheckSwarmTar refused anything
	// else before it was uploaded).
	cmd := stopDocker + " && rm -rf " + dir + " && tar -C " + shell.Quote(strings.TrimSuffix(SwarmDir, "/swarm")) + " --no-same-owner -xzf " + shell.Quote(tmp) + " swarm && rm -f " + shell.Quote(tmp)
	_, err := n.R.RunSudo(ctx, cmd)
	if _, serr := n.R.RunSudo(context.WithoutCancel(ctx), startDocker); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("%s: putting the swarm state in place: %w", n.Name, err)
	}
	// Its old managers are gone: it may wait for them (pending) until the
	// new cluster starts.
	if err := waitAndUnlock(ctx, n, key, redact, true); err != nil {
		return err
	}
	_, err = n.API.SwarmInit(ctx, swarm.InitRequest{ListenAddr: "0.0.0.0:2377", AdvertiseAddr: advertise, ForceNewCluster: true})
	if err != nil {
		return fmt.Errorf("%s: swarm init --force-new-cluster (advertise %s): %w", n.Name, advertise, err)
	}
	return waitState(ctx, n, StateActive, 2*time.Minute)
}

// GoneManagers are the manager entries other than self that a restored
// swarm of one manager carries from before: none of them is in its Raft
// group (unreachable), so they are removed before others join. Managers
// that joined the restored swarm since (a restore run again) are reachable
// and stay.
func GoneManagers(members []Member, self string) []Member {
	var out []Member
	for _, m := range members {
		if m.ID != self && m.Role == RoleManager && !m.Reachable {
			out = append(out, m)
		}
	}
	return out
}

// LabelsBack is the labels each node of the restored swarm gets back from
// the manifest (by hostname), only keys the node does not have: a label
// set in the cluster file wins.
func LabelsBack(man Manifest, members []Member, have map[string]map[string]string) map[string]map[string]string {
	old := map[string]map[string]string{}
	for _, n := range man.Nodes {
		for k, v := range n.Labels {
			if old[n.Hostname] == nil {
				old[n.Hostname] = map[string]string{}
			}
			old[n.Hostname][k] = v
		}
	}
	out := map[string]map[string]string{}
	for _, m := range members {
		for k, v := range old[m.Hostname] {
			if _, ok := have[m.ID][k]; ok {
				continue
			}
			if out[m.ID] == nil {
				out[m.ID] = map[string]string{}
			}
			out[m.ID][k] = v
		}
	}
	return out
}

// Bounds on the Raft state a restore unpacks on a host.
const (
	maxSwarmFiles    = 100000
	MaxSwarmUnpacked = 8 << 30
)

// CheckSwarmTar refuses a packed Raft state that holds anything but
// swarm/ and its folders and regular files: no absolute path, no "..",
// no links or devices, within the bounds on files and bytes. A restore
// extracts it as root in /var/lib/docker.
func CheckSwarmTar(r io.Reader) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("not a tar.gz: %w", err)
	}
	tr := tar.NewReader(zr)
	var files int
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("not a tar.gz: %w", err)
		}
		if files++; files > maxSwarmFiles {
			return fmt.Errorf("more than %d files", maxSwarmFiles)
		}
		if err := swarmMember(h); err != nil {
			return err
		}
		if total += h.Size; total > MaxSwarmUnpacked {
			return fmt.Errorf("unpacks to more than %d GiB", MaxSwarmUnpacked>>30)
		}
	}
	if files == 0 {
		return errors.New("no files")
	}
	return nil
}

// swarmMember checks one entry of a packed Raft state.
func swarmMember(h *tar.Header) error {
	name := h.Name
	clean := path.Clean(name)
	switch {
	case name == "" || path.IsAbs(name) || strings.Contains(name, "\\"):
		return fmt.Errorf("%q: not a relative path", name)
	case clean != "swarm" && !strings.HasPrefix(clean, "swarm/"):
		return fmt.Errorf("%q: outside swarm/", name)
	case slices.Contains(strings.Split(name, "/"), ".."):
		return fmt.Errorf("%q: has ..", name)
	case h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeDir:
		return fmt.Errorf("%q: not a folder or regular file (type %q)", name, h.Typeflag)
	case h.Size < 0:
		return fmt.Errorf("%q: bad size", name)
	}
	return nil
}
