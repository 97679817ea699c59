package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/internal/fanout"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/machine"
)

// Converger makes the real machines what a Spec says.
type Converger struct {
	M *machine.Manager
	// Parallel bounds how many hosts are worked on at once.
	Parallel int
	// Force lets nodes of another swarm leave it and join this one.
	Force bool
	// DrainTimeout bounds the wait for a leaving node's tasks to move.
	DrainTimeout time.Duration
	// restore, during Restore, is the backup the swarm comes from.
	restore *Backup
}

// NodeResult is one row of the summary.
type NodeResult struct {
	Name          string `json:"name"`
	Role          string `json:"role"`
	Address       string `json:"address"`
	Hostname      string `json:"hostname"`
	NodeID        string `json:"nodeID"`
	Ready         bool   `json:"ready"`
	DockerVersion string `json:"dockerVersion"`
}

// Result says what `cluster up` did.
type Result struct {
	Cluster  string                   `json:"cluster"`
	Changed  bool                     `json:"changed"`
	Nodes    []NodeResult             `json:"nodes"`
	Leader   string                   `json:"leader"`
	Registry string                   `json:"registry,omitempty"`
	Stages   map[string]time.Duration `json:"stages"`
	Sessions int64                    `json:"sshSessions"`
	Elapsed  time.Duration            `json:"elapsed"`
}

// host is one machine during a run: its config, connection and node.
type host struct {
	spec    Machine
	mach    *machine.Machine
	client  *sshrun.Client
	node    *bootstrap.Node
	state   bootstrap.State
	log     *os.File
	changed bool
	// held: the host is a swarm node whose engine changes; provisioning
	// kept its engine and the roll installs the new one.
	held    bool
	heldWhy string
	// restarted: provisioning restarted dockerd in this run.
	restarted bool
	// unlock releases the machine's lock, held from its create to the end
	// of the run so that no other command works on it meanwhile.
	unlock func()
}

func (h *host) close() {
	if h.unlock != nil {
		defer h.unlock()
		h.unlock = nil
	}
	if h.node != nil {
		h.node.Close()
	}
	if h.client != nil {
		h.client.Close()
	}
	if h.log != nil {
		h.log.Close()
	}
}

// parallel runs f for every host, at most n at once, and joins the errors;
// a bug met on one host fails that host alone.
func parallel(ctx context.Context, n int, hosts []*host, f func(context.Context, *host) error) error {
	return fanout.Each(ctx, n, hosts, func(h *host) string { return h.spec.Name }, f)
}

// clusterKey returns the cluster's SSH key pair, made once: the docker users
// of the nodes log in to each other with it.
func clusterKey(st *store.Store, name string) (priv []byte, pub string, err error) {
	dir := st.ClusterDir(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	path := filepath.Join(dir, store.KeyFile)
	priv, err1 := os.ReadFile(path)
	pubB, err2 := os.ReadFile(path + ".pub")
	if err1 == nil && err2 == nil {
		return priv, strings.TrimSpace(string(pubB)), nil
	}
	priv, pub, err = sshrun.GenerateKey()
	if err != nil {
		return nil, "", err
	}
	pub += " shoal-cluster-" + name
	if err := store.WriteFileAtomic(path+".pub", []byte(pub+"\n"), 0o644); err != nil {
		return nil, "", err
	}
	return priv, pub, store.WriteFileAtomic(path, priv, 0o600)
}

// Up converges the cluster: machines made or adopted, provisioned, one
// swarm with its registry. A second run with nothing to do changes nothing.
func (c *Converger) Up(ctx context.Context, spec *Spec) (*Result, error) {
	start := time.Now()
	c.UseSecrets(spec)
	st := c.M.Store
	unlock, err := st.TryLock("cluster", spec.Name)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: another 'cluster up' or 'cluster down' is running (%v)", spec.Name, err)
	}
	defer unlock()
	priv, pub, err := clusterKey(st, spec.Name)
	if err != nil {
		return nil, err
	}
	res := &Result{Cluster: spec.Name, Stages: map[string]time.Duration{}}
	leader := spec.Managers()[0].Name
	prev, _ := LoadState(st, spec.Name)
	leaving, err := c.leaving(spec)
	if err != nil {
		return res, err
	}
	// Removals are checked against the quorum before anything changes.
	if err := c.checkRemovals(ctx, spec, leaving); err != nil {
		return res, err
	}
	hosts := make([]*host, len(spec.Machines))
	for i, m := range spec.Machines {
		hosts[i] = &host{spec: m}
	}
	defer func() {
		for _, h := range hosts {
			if h.client != nil {
				res.Sessions += h.client.Sessions()
			}
			h.close()
		}
	}()
	ev := func(h *host, step string, s ui.Status, detail string) {
		c.M.Progress.Event(h.spec.Name, step, s, detail)
	}

	// 1. Hosts: made or adopted, in parallel.
	t := time.Now()
	err = parallel(ctx, c.Parallel, hosts, func(ctx context.Context, h *host) error {
		m := h.spec
		sw := &store.Swarm{Join: leader, Manager: m.Role == "manager", Labels: labelList(m.Labels), Availability: m.Availability, ImageArchives: m.ImageArchives}
		if m.Name == leader {
			sw = &store.Swarm{Master: true, Labels: sw.Labels, Availability: sw.Availability, ImageArchives: sw.ImageArchives,
				Registry: spec.Registry.Enabled, RegistryPort: spec.Registry.Port, RegistryImage: spec.Registry.Image,
				RegistryPath: spec.Registry.Path, RegistryNode: spec.Registry.Node}
		}
		setup := m.Setup
		setup.Swarm, setup.Cluster, setup.AuthorizedKeys = sw, spec.Name, []string{pub}
		mach, unlock, err := c.M.EnsureHostLocked(ctx, machine.CreateOptions{Name: m.Name, Driver: m.Driver, DriverConfig: m.DriverConfig, Setup: setup})
		if err != nil {
			return err
		}
		if m.AdvertiseAddr != "" && mach.Address != m.AdvertiseAddr {
			mach.Address = m.AdvertiseAddr // the other nodes reach it there
			if err := st.Save(mach.Machine); err != nil {
				return err
			}
		}
		h.mach, h.unlock = mach, unlock
		h.changed = mach.JustCreated
		return nil
	})
	res.Stages["create"] = time.Since(t)
	if err != nil {
		return res, err
	}
	// Every node's /etc/hosts names every node.
	var entries []store.HostEntry
	for _, h := range hosts {
		names := []string{h.mach.Hostname}
		if h.mach.Name != h.mach.Hostname {
			names = append(names, h.mach.Name)
		}
		entries = append(entries, store.HostEntry{IP: h.mach.Address, Names: names})
	}
	for _, h := range hosts {
		h.mach.Hosts = entries
		if err := st.Save(h.mach.Machine); err != nil {
			return res, err
		}
	}

	// Certificates that expire soon are renewed before anything uses them.
	if _, err := c.M.RenewCerts(time.Now()); err != nil {
		return res, err
	}

	// 2. Provisioning, in parallel, each host on its one connection.
	t = time.Now()
	err = parallel(ctx, c.Parallel, hosts, func(ctx context.Context, h *host) error {
		log, err := c.M.OpenLog(h.mach)
		if err != nil {
			return err
		}
		h.log = log
		ev(h, "ssh", ui.Started, "")
		h.client, err = c.M.Connect(ctx, h.mach, log)
		if err != nil {
			ev(h, "ssh", ui.Failed, "")
			return err
		}
		ev(h, "ssh", ui.Unchanged, h.client.User()+"@"+h.client.Host())
		rep, held, why, err := c.M.ProvisionHolding(ctx, h.mach, h.client, c.holdFor(h))
		if err != nil {
			return fmt.Errorf("%s: %w", h.spec.Name, err) // the error names the address
		}
		h.held, h.heldWhy = held, why
		if len(rep.Changed) > 0 {
			h.changed = true
		}
		h.restarted = rep.DockerRestarted
		h.node, err = bootstrap.Open(h.mach.Name, h.mach.Hostname, h.mach.Address, h.client)
		if err != nil {
			return err
		}
		for _, a := range h.spec.ImageArchives {
			loaded, err := bootstrap.LoadImages(ctx, h.node, a)
			if err != nil {
				ev(h, "images", ui.Failed, err.Error())
				return err
			}
			if loaded {
				h.changed = true
				ev(h, "images", ui.Changed, filepath.Base(a))
			}
		}
		return nil
	})
	if err == nil {
		err = c.peerSSH(ctx, hosts, priv, spec.Name)
	}
	res.Stages["provision"] = time.Since(t)
	if err != nil {
		return res, err
	}

	// 3. The swarm (from a backup, when restoring).
	t = time.Now()
	if c.restore != nil {
		if err := c.restoreSwarm(ctx, hosts, leader); err != nil {
			return res, err
		}
	}
	changed, leaderHost, clusterID, err := c.swarm(ctx, spec, hosts, leader, prev)
	if err == nil && len(leaving) > 0 {
		err = c.retire(ctx, leaderHost, leaving)
		changed = true
	}
	if err == nil && c.restore != nil {
		err = c.labelsBack(ctx, leaderHost)
	}
	res.Stages["swarm"] = time.Since(t)
	if err != nil {
		return res, err
	}
	leader = leaderHost.spec.Name
	res.Changed = changed
	for _, h := range hosts {
		res.Changed = res.Changed || h.changed
		res.Nodes = append(res.Nodes, NodeResult{Name: h.mach.Name, Role: h.spec.Role, Address: h.mach.Address, Hostname: h.mach.Hostname,
			NodeID: h.state.NodeID, Ready: true, DockerVersion: h.state.DockerVersion})
	}
	res.Leader = leader
	if spec.Registry.Enabled {
		for _, h := range hosts {
			if h.mach.Name == spec.Registry.Node {
				res.Registry = fmt.Sprintf("%s:%d", h.mach.Hostname, spec.Registry.Port)
			}
		}
	}
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.mach.Name
	}
	res.Elapsed = time.Since(start)
	return res, saveState(st, &State{Name: spec.Name, File: spec.File, Machines: names, Leader: leader, Registry: res.Registry, ClusterID: clusterID})
}

func labelList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
