package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/internal/shell"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
	"golang.org/x/crypto/ssh"
)

// swarm makes the hosts one swarm: init once, managers one at a time,
// workers in parallel, roles, labels and availability, the registry, and a
// final check from every node.
func (c *Converger) swarm(ctx context.Context, spec *Spec, hosts []*host, leaderName string) (bool, error) {
	ev := func(h *host, step string, s ui.Status, detail string) {
		c.M.Progress.Event(h.spec.Name, step, s, detail)
	}
	byName := map[string]*host{}
	for _, h := range hosts {
		byName[h.spec.Name] = h
	}
	if err := parallel(ctx, c.Parallel, hosts, func(ctx context.Context, h *host) error {
		var err error
		h.state, err = h.node.State(ctx)
		return err
	}); err != nil {
		return false, err
	}
	changed := false
	leader := byName[leaderName]
	switch {
	case leader.state.Active() && leader.state.Manager:
		ev(leader, "swarm-init", ui.Unchanged, "manager")
	case leader.state.Active() && !c.Force:
		return false, fmt.Errorf("%s is a worker of another swarm: use --force to make it leave and start this cluster's", leaderName)
	default:
		if leader.state.Active() {
			if err := leader.node.Leave(ctx, true); err != nil {
				return false, err
			}
		}
		ev(leader, "swarm-init", ui.Started, leader.mach.Address)
		if err := leader.node.Init(ctx, leader.mach.Address); err != nil {
			ev(leader, "swarm-init", ui.Failed, "")
			return false, err
		}
		changed = true
		ev(leader, "swarm-init", ui.Changed, leader.mach.Address)
		var err error
		if leader.state, err = leader.node.State(ctx); err != nil {
			return false, err
		}
	}
	// Autolock: the unlock key is a secret, kept 0600 in the cluster's folder.
	autoChanged, key, err := bootstrap.EnsureAutolock(ctx, leader.node, spec.Autolock)
	if err != nil {
		return false, err
	}
	keyFile := filepath.Join(c.M.Store.ClusterDir(spec.Name), "unlock-key")
	if key != "" {
		c.M.Redactor.Add(key)
		if err := store.WriteFileAtomic(keyFile, []byte(key+"\n"), 0o600); err != nil {
			return false, err
		}
	} else {
		os.Remove(keyFile)
	}
	if autoChanged {
		changed = true
		ev(leader, "swarm-autolock", ui.Changed, fmt.Sprintf("autolock=%v", spec.Autolock))
	}
	workerToken, managerToken, err := bootstrap.Tokens(ctx, leader.node)
	if err != nil {
		return false, err
	}
	c.M.Redactor.Add(workerToken)
	c.M.Redactor.Add(managerToken)

	join := func(ctx context.Context, h *host, token string) error {
		if bootstrap.SameSwarm(ctx, leader.node, leader.state, h.state) {
			ev(h, "swarm-join", ui.Unchanged, "in the swarm")
			return nil
		}
		if h.state.Active() {
			if !c.Force {
				return fmt.Errorf("%s belongs to another swarm: use --force to make it leave and join this one", h.spec.Name)
			}
			if err := h.node.Leave(ctx, true); err != nil {
				return err
			}
		}
		ev(h, "swarm-join", ui.Started, h.spec.Role)
		if err := h.node.Join(ctx, h.mach.Address, leader.mach.Address, token, c.M.Redactor.Redact); err != nil {
			ev(h, "swarm-join", ui.Failed, "")
			return err
		}
		h.changed = true
		ev(h, "swarm-join", ui.Changed, h.spec.Role)
		var err error
		h.state, err = h.node.State(ctx)
		return err
	}
	// Managers one at a time: Raft adds one member at once.
	var workers []*host
	for _, h := range hosts {
		if h == leader {
			continue
		}
		if h.spec.Role == "worker" {
			workers = append(workers, h)
			continue
		}
		if err := join(ctx, h, managerToken); err != nil {
			return false, err
		}
	}
	if err := parallel(ctx, c.Parallel, workers, func(ctx context.Context, h *host) error { return join(ctx, h, workerToken) }); err != nil {
		return false, err
	}
	// Roles, labels, availability through the leader; promotions one at a time.
	for _, h := range hosts {
		got, err := bootstrap.EnsureNode(ctx, leader.node, h.state.NodeID, bootstrap.NodeWant{Role: h.spec.Role, Labels: h.spec.Labels, Availability: h.spec.Availability})
		if err != nil {
			return false, err
		}
		if len(got) > 0 {
			h.changed = true
			ev(h, "swarm-node", ui.Changed, strings.Join(got, ", "))
		}
	}
	for _, h := range hosts {
		if err := bootstrap.WaitReady(ctx, leader.node, h.state.NodeID, 2*time.Minute); err != nil {
			return false, err
		}
	}
	if !spec.Registry.Enabled {
		return changed, nil
	}
	regHost := byName[spec.Registry.Node]
	reg := bootstrap.Registry{Hostname: regHost.mach.Hostname, Port: spec.Registry.Port, Image: spec.Registry.Image, Path: spec.Registry.Path}
	created, err := bootstrap.EnsureRegistry(ctx, leader.node, regHost.client, reg)
	if err != nil {
		ev(regHost, "registry", ui.Failed, err.Error())
		return false, err
	}
	if created {
		changed = true
		ev(regHost, "registry", ui.Changed, fmt.Sprintf("%s:%d", reg.Hostname, reg.Port))
	}
	// The final check: the registry answers from every node.
	err = parallel(ctx, c.Parallel, hosts, func(ctx context.Context, h *host) error {
		if err := bootstrap.WaitRegistry(ctx, h.node, reg.Hostname, reg.Port, 2*time.Minute); err != nil {
			ev(h, "check", ui.Failed, err.Error())
			return err
		}
		ev(h, "check", ui.Unchanged, "Ready, registry answers")
		return nil
	})
	return changed, err
}

// peerSSH lets the docker user of every node log in to every other node:
// the cluster key, an ssh_config block that uses it for the cluster's
// names, and a known_hosts block with the host keys shoal pinned (never
// StrictHostKeyChecking=no).
func (c *Converger) peerSSH(ctx context.Context, hosts []*host, priv []byte, cluster string) error {
	var known, names []string
	for _, h := range hosts {
		ids := []string{h.mach.Hostname}
		if h.mach.Name != h.mach.Hostname {
			ids = append(ids, h.mach.Name)
		}
		ids = append(ids, h.mach.Address)
		names = append(names, ids...)
		known = append(known, strings.Join(ids, ",")+" "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(h.client.HostKey()))))
	}
	keyName := "shoal-" + cluster
	begin, end := "# BEGIN shoal cluster "+cluster, "# END shoal cluster "+cluster
	knownBlock := begin + "\n" + strings.Join(known, "\n") + "\n" + end + "\n"
	configBlock := fmt.Sprintf("%s\nHost %s\n    IdentityFile ~/.ssh/%s\n    IdentitiesOnly yes\n%s\n", begin, strings.Join(names, " "), keyName, end)
	keySum := sha256.Sum256(priv)
	return parallel(ctx, c.Parallel, hosts, func(ctx context.Context, h *host) error {
		u := shell.Quote(h.mach.DockerUser)
		probe := fmt.Sprintf(`h=$(getent passwd %s | cut -d: -f6); g=$(id -gn %s); echo "$h"; echo "$g"; echo @@; cat "$h/.ssh/config" 2>/dev/null; echo @@; cat "$h/.ssh/known_hosts" 2>/dev/null; echo @@; sha256sum < "$h/.ssh/"%s 2>/dev/null; true`, u, u, shell.Quote(keyName))
		out, err := h.client.RunSudo(ctx, probe)
		if err != nil {
			return err
		}
		parts := strings.Split(string(out.Stdout), "@@\n")
		if len(parts) != 4 {
			return fmt.Errorf("%s: reading the docker user's ~/.ssh: unexpected answer", h.spec.Name)
		}
		head := strings.Fields(parts[0])
		if len(head) != 2 {
			return fmt.Errorf("%s: the docker user %s has no home", h.spec.Name, h.mach.DockerUser)
		}
		home, group := head[0], head[1]
		owner := h.mach.DockerUser + ":" + group
		var wrote []string
		if !strings.HasPrefix(parts[3], hex.EncodeToString(keySum[:])) {
			if err := h.client.WriteFile(ctx, home+"/.ssh/"+keyName, priv, 0o600, owner); err != nil {
				return err
			}
			wrote = append(wrote, "key")
		}
		for _, f := range []struct{ name, cur, block string }{
			{"config", parts[1], configBlock},
			{"known_hosts", parts[2], knownBlock},
		} {
			next := replaceBlock(f.cur, begin, end, f.block)
			if next == f.cur {
				continue
			}
			if err := h.client.WriteFile(ctx, home+"/.ssh/"+f.name, []byte(next), 0o600, owner); err != nil {
				return err
			}
			wrote = append(wrote, f.name)
		}
		if len(wrote) > 0 {
			h.changed = true
			c.M.Progress.Event(h.spec.Name, "peer-ssh", ui.Changed, strings.Join(wrote, ", "))
		}
		return nil
	})
}

// replaceBlock puts block (marker lines included) in place of the old one
// between begin and end, or at the end of text.
func replaceBlock(text, begin, end, block string) string {
	if i := strings.Index(text, begin+"\n"); i >= 0 {
		if j := strings.Index(text[i:], end+"\n"); j >= 0 {
			return text[:i] + block + text[i+j+len(end)+1:]
		}
	}
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	return text + block
}
