package cluster

import (
	"context"
	"errors"
	"fmt"
	"github.com/shoal-dev/shoal/internal/validate"
	"io"
	"os"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/internal/shell"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/machine"
	"github.com/shoal-dev/shoal/provision"
	"github.com/shoal-dev/shoal/stack/deploy"
)

// Down takes the cluster apart: every node leaves the swarm, the machines
// the cluster made are removed, adopted hosts are forgotten and stay up
// with their Docker. With purge, what provisioning can undo on an adopted
// host is undone too.
func (c *Converger) Down(ctx context.Context, name string, purge bool) error {
	if err := store.ValidateName(name); err != nil {
		return err // before any path is made of it
	}
	st := c.Machines.Store
	unlock, err := st.TryLock("cluster", name)
	if err != nil {
		return fmt.Errorf("cluster %s: another 'cluster up' or 'cluster down' is running (%v)", name, err)
	}
	defer unlock()
	hosts, leader, err := c.downHosts(name)
	defer func() {
		for _, h := range hosts {
			h.close()
		}
	}()
	if err != nil {
		return err
	}
	c.removeStacks(ctx, name, hosts, leader)
	if err := c.leaveAll(ctx, hosts, leader); err != nil {
		return err
	}
	if purge {
		if err := c.purgeAdopted(ctx, hosts, name); err != nil {
			return err
		}
	}
	for _, h := range hosts {
		h.close()
	}
	err = parallel(ctx, c.Parallel, hosts, func(ctx context.Context, h *host) error {
		return c.Machines.Remove(ctx, h.mach.Name, false)
	})
	if err != nil {
		return err
	}
	return os.RemoveAll(st.ClusterDir(name))
}

// purgeAdopted undoes on the adopted hosts what provisioning can; the
// others are removed anyway.
func (c *Converger) purgeAdopted(ctx context.Context, hosts []*host, name string) error {
	return parallel(ctx, c.Parallel, hosts, func(ctx context.Context, h *host) error {
		if !drivers.Adopts(h.mach.Driver) {
			return nil
		}
		return c.purge(ctx, h, name)
	})
}

// downHosts loads the cluster's stored machines and names its leader.
func (c *Converger) downHosts(name string) (hosts []*host, leader string, err error) {
	st := c.Machines.Store
	names, err := machinesOf(st, name)
	if err != nil {
		return nil, "", err
	}
	state, _ := LoadState(st, name)
	if len(names) == 0 && state == nil {
		return nil, "", fmt.Errorf("no cluster %q here (see 'cluster ls')", name)
	}
	if state != nil {
		leader = state.Leader
	}
	hosts = make([]*host, 0, len(names))
	for _, n := range names {
		mach, err := c.Machines.Load(n)
		if err != nil {
			return hosts, "", err
		}
		hosts = append(hosts, &host{mach: mach, spec: Node{Name: n}})
	}
	return hosts, leader, nil
}

// leaveAll makes every node leave the swarm: the others first, the leader
// last (it ends the swarm).
func (c *Converger) leaveAll(ctx context.Context, hosts []*host, leader string) error {
	var others []*host
	var last *host
	for _, h := range hosts {
		if h.mach.Name == leader {
			last = h
		} else {
			others = append(others, h)
		}
	}
	errLeave := parallel(ctx, c.Parallel, others, c.leave)
	if last != nil {
		errLeave = errors.Join(errLeave, c.leave(ctx, last))
	}
	return errLeave
}

// leave makes one node leave the swarm, if it is in one.
func (c *Converger) leave(ctx context.Context, h *host) error {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	client, err := c.Machines.Connect(cctx, h.mach, io.Discard)
	if err != nil {
		c.Machines.Progress.Event(h.mach.Name, "swarm-leave", ui.Failed, "unreachable")
		return err
	}
	h.client = client
	node, err := h.mach.Node(client)
	if err != nil {
		return err
	}
	h.node = node
	left, err := bootstrap.Leave(ctx, node, true)
	if left {
		c.Machines.Progress.Event(h.mach.Name, "swarm-leave", ui.Changed, "")
	}
	return err
}

// purge undoes what shoal's provisioning did on an adopted host that can be
// undone without harm: its TLS drop-in and certificates, the /etc/hosts
// block, the cluster's SSH key and blocks; daemon.json and the .repo files
// that os_mirror set aside go back to the originals shoal saved. Docker stays installed and running.
func (c *Converger) purge(ctx context.Context, h *host, cluster string) error {
	if _, err := h.client.RunSudo(ctx, purgeScript(h.mach.DockerUser, cluster)); err != nil {
		return fmt.Errorf("%s: purge: %w", h.mach.Name, err)
	}
	c.Machines.Progress.Event(h.mach.Name, "purge", ui.Changed, "")
	return nil
}

// purgeFuncs are the shell functions purgeScript uses: provision's, and
// one that puts back the .repo files os_mirror set aside.
const purgeFuncs = provision.EditFuncs + `restorerepos() { # DIR: put back the .repo files os_mirror set aside, then drop its own
  [ -d "$1" ] || return 0
  for b in "$1"/*.repo.shoal-orig; do
    [ -e "$b" ] || continue
    mv -f "$b" "${b%.shoal-orig}"
  done
  rm -f "$1/shoal-os-mirror.repo"
}
`

// purgeScript is purge's root script. set -e: a step that fails stops the
// script with its status, never hidden by the steps after it. The SSH
// mesh goes as on a forgotten host (provision.ForgetMesh).
func purgeScript(dockerUser, cluster string) string {
	return strings.Join(append([]string{
		"set -e",
		purgeFuncs,
		// The boot unit goes first: it would put the /etc/hosts block back
		// when docker restarts below.
		provision.PersistUndo(),
		"rm -f /etc/systemd/system/docker.service.d/shoal.conf /etc/systemd/system/docker.service.d/shoal-env.conf",
		"rm -rf /etc/docker/shoal",
		"rm -f /etc/docker/daemon.json.shoal-prev /etc/docker/daemon.json.shoal-new",
		"if [ -e /etc/docker/daemon.json.shoal-orig ]; then mv -f /etc/docker/daemon.json.shoal-orig /etc/docker/daemon.json; else rm -f /etc/docker/daemon.json; fi",
		"strip /etc/hosts " + shell.Quote(provision.HostsBegin) + " " + shell.Quote(provision.HostsEnd),
		"restorerepos /etc/yum.repos.d",
	}, append(provision.ForgetMesh(dockerUser, cluster),
		"systemctl daemon-reload",
		"systemctl restart docker")...), "\n")
}

// NodeStatus is one row of `cluster status`.
type NodeStatus struct {
	Name          string        `json:"name"`
	Address       string        `json:"address"`
	Role          validate.Role `json:"role"`
	Swarm         string        `json:"swarm"`
	NodeID        string        `json:"nodeID,omitempty"`
	DockerVersion string        `json:"dockerVersion,omitempty"`
	// Certs is when the node's TLS certificate (or the CA) expires.
	Certs     string `json:"certs,omitempty"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
}

// Status probes every machine of a cluster in parallel, and reads the
// stacks shoal deployed through a manager that answers.
func (c *Converger) Status(ctx context.Context, name string) ([]NodeStatus, []deploy.StackStatus, error) {
	nodes, hosts, err := c.nodeStatus(ctx, name)
	defer func() {
		for _, h := range hosts {
			h.close()
		}
	}()
	if err != nil {
		return nil, nil, err
	}
	return nodes, c.stackStatus(ctx, name, nodes, hosts), nil
}

// nodeStatus is each machine's status; the hosts it reached stay open.
func (c *Converger) nodeStatus(ctx context.Context, name string) ([]NodeStatus, []*host, error) {
	if err := store.ValidateName(name); err != nil {
		return nil, nil, err
	}
	names, err := machinesOf(c.Machines.Store, name)
	if err != nil {
		return nil, nil, err
	}
	if len(names) == 0 {
		return nil, nil, fmt.Errorf("no cluster %q here (see 'cluster ls')", name)
	}
	out := make([]NodeStatus, len(names))
	hosts := make([]*host, len(names))
	for i, n := range names {
		hosts[i] = &host{spec: Node{Name: n}}
	}
	_ = parallel(ctx, 16, hosts, func(ctx context.Context, h *host) error {
		ns := &out[indexOf(hosts, h)]
		ns.Name = h.spec.Name
		if err := c.probeStatus(ctx, h, ns); err != nil {
			ns.Error = err.Error()
		}
		return nil
	})
	return out, hosts, nil
}

// probeStatus fills ns in for h as far as it gets: the machine's record,
// its connection, its swarm state; it returns what stopped it (a
// connection's or the engine's error on its first line).
func (c *Converger) probeStatus(ctx context.Context, h *host, ns *NodeStatus) error {
	mach, err := c.Machines.Load(h.spec.Name)
	if err != nil {
		return err
	}
	ns.Address = mach.Address
	ns.Role = roleOf(mach)
	ns.Certs = c.Machines.CertExpiry(mach.Machine, time.Now())
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if h.client, err = c.Machines.Connect(cctx, mach, io.Discard); err != nil {
		return errors.New(firstLine(err.Error()))
	}
	ns.Reachable = true
	if h.node, err = mach.Node(h.client); err != nil {
		return err
	}
	s, err := h.node.State(cctx)
	if err != nil {
		return errors.New(firstLine(err.Error()))
	}
	ns.Swarm, ns.NodeID, ns.DockerVersion = s.LocalNodeState, s.NodeID, s.DockerVersion
	if s.Active() {
		ns.Role = swarmRole(s)
	}
	return nil
}

// swarmRole is an active node's role.
func swarmRole(s bootstrap.State) validate.Role {
	if s.Manager {
		return bootstrap.RoleManager
	}
	return bootstrap.RoleWorker
}

func roleOf(m *machine.Machine) validate.Role {
	if m.Swarm != nil && (m.Swarm.Master || m.Swarm.Manager) {
		return bootstrap.RoleManager
	}
	return bootstrap.RoleWorker
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
