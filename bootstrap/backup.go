package bootstrap

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"
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
	Role          string            `json:"role"`
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
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		res, err := n.R.RunSudo(ctx, "grep -c ENCRYPTED "+shell.Quote(nodeKey)+" || true")
		if err == nil && strings.TrimSpace(string(res.Stdout)) == "0" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: its swarm key is still encrypted %s after autolock was turned off", n.Name, timeout)
		case <-time.After(pollInterval):
		}
	}
}

// Describe reads what the manifest says of the swarm through a manager.
func Describe(ctx context.Context, mgr *Node) (Manifest, error) {
	sw, err := mgr.API.SwarmInspect(ctx)
	if err != nil {
		return Manifest{}, fmt.Errorf("%s: swarm inspect: %w", mgr.Name, err)
	}
	nodes, err := mgr.API.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return Manifest{}, fmt.Errorf("%s: node ls: %w", mgr.Name, err)
	}
	m := Manifest{Version: 1, SwarmID: sw.ID, Autolock: sw.Spec.EncryptionConfig.AutoLockManagers}
	for _, n := range nodes {
		m.Nodes = append(m.Nodes, ManifestNode{ID: n.ID, Hostname: n.Description.Hostname, Role: string(n.Spec.Role), Addr: n.Status.Addr,
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

// CopySwarmState stops the node's dockerd, packs its Raft state into a
// gzip tar, starts dockerd again (also when the copy failed) and unlocks
// it with key when it comes up locked. It returns the tar.
func CopySwarmState(ctx context.Context, n *Node, read func(ctx context.Context, path string) ([]byte, error), key string, redact func(string) string) (data []byte, err error) {
	tmp := "/var/lib/docker/shoal-swarm-backup.tgz"
	if _, err := n.R.RunSudo(ctx, stopDocker); err != nil {
		return nil, fmt.Errorf("%s: stopping dockerd for the copy: %w", n.Name, err)
	}
	defer func() {
		// dockerd comes back whatever happened to the copy.
		bg := context.WithoutCancel(ctx)
		if _, serr := n.R.RunSudo(bg, startDocker); serr != nil && err == nil {
			err = fmt.Errorf("%s: starting dockerd after the copy: %w", n.Name, serr)
			return
		}
		if uerr := waitAndUnlock(bg, n, key, redact, false); uerr != nil && err == nil {
			err = uerr
		}
	}()
	cmd := "umask 077 && tar -C " + shell.Quote(strings.TrimSuffix(SwarmDir, "/swarm")) + " -czf " + shell.Quote(tmp) + " swarm"
	if _, err := n.R.RunSudo(ctx, cmd); err != nil {
		return nil, fmt.Errorf("%s: packing %s: %w", n.Name, SwarmDir, err)
	}
	data, err = read(ctx, tmp)
	_, _ = n.R.RunSudo(context.WithoutCancel(ctx), "rm -f "+shell.Quote(tmp))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the copy: %w", n.Name, err)
	}
	return data, nil
}

// waitAndUnlock waits until the node's engine answers and its swarm is
// active (or, with pending, still looking for its old managers), unlocking
// it with key when it is locked (autolock).
func waitAndUnlock(ctx context.Context, n *Node, key string, redact func(string) string, pending bool) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	unlocked := false
	for {
		s, err := n.State(ctx)
		if err == nil {
			switch {
			case s.LocalNodeState == StateLocked && key != "" && !unlocked:
				// Docker's unlock answers once the manager reaches its
				// quorum: bounded, so that a manager whose peers are gone
				// does not hang the run.
				uctx, ucancel := context.WithTimeout(ctx, 45*time.Second)
				uerr := n.API.SwarmUnlock(uctx, swarm.UnlockRequest{UnlockKey: key})
				ucancel()
				if uerr != nil {
					return fmt.Errorf("%s: swarm unlock: %s", n.Name, redact(uerr.Error()))
				}
				unlocked = true
			case s.LocalNodeState == StateLocked && key == "":
				return fmt.Errorf("%s: the swarm is locked (autolock) and no unlock key is at hand", n.Name)
			case s.LocalNodeState != StateLocked && (pending || s.LocalNodeState != StatePending):
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: dockerd did not come back with its swarm: %w", n.Name, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// PutSwarmState replaces the node's Raft state with a backup's (its dockerd
// stopped meanwhile), unlocks it with key when the backup was locked, and
// starts a new cluster of one manager from it at advertise
// (--force-new-cluster): the swarm's services, secrets, configs and
// networks come back; the other nodes join it again.
func PutSwarmState(ctx context.Context, n *Node, write func(ctx context.Context, path string, data []byte) error, tgz []byte, advertise, key string, redact func(string) string) error {
	tmp := "/var/lib/docker/shoal-swarm-restore.tgz"
	if _, err := n.R.RunSudo(ctx, "install -d -m 700 /var/lib/docker"); err != nil {
		return err
	}
	if err := write(ctx, tmp, tgz); err != nil {
		return fmt.Errorf("%s: uploading the swarm state: %w", n.Name, err)
	}
	dir := shell.Quote(SwarmDir)
	cmd := stopDocker + " && rm -rf " + dir + " && tar -C " + shell.Quote(strings.TrimSuffix(SwarmDir, "/swarm")) + " -xzf " + shell.Quote(tmp) + " && rm -f " + shell.Quote(tmp)
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
