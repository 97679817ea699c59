package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/internal/fsutil"
	"github.com/shoal-dev/shoal/internal/shell"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/provision"
	"golang.org/x/crypto/ssh"
)

// reconciler is the swarm reconciler with this run's progress and secrets.
func (c *Converger) reconciler() *bootstrap.Reconciler {
	return &bootstrap.Reconciler{Event: c.Machines.Progress.Event, Redactor: c.Machines.Redactor, Parallel: c.Parallel}
}

// swarmRequest is what the reconciler is asked for the hosts of spec.
func (c *Converger) swarmRequest(spec *Spec, hosts []*host, leaderName string, prev *State) bootstrap.Request {
	req := bootstrap.Request{Policy: bootstrap.Policy{
		Leader:     leaderName,
		Force:      c.Force || spec.ForceRejoin,
		CanUnlock:  spec.AutoUnlock,
		ForceHint:  "force_rejoin = true in the swarm block (or 'cluster up --force')",
		UnlockHint: "'cluster unlock " + spec.Name + "' (or swarm { auto_unlock = true })",
	}}
	req.Init = bootstrap.InitOptions{DefaultAddrPool: spec.DefaultAddrPool, DataPathPort: uint32(spec.DataPathPort), OverlayMTU: spec.OverlayMTU}
	if prev != nil {
		req.Policy.ClusterID = prev.ClusterID
	}
	if key, err := os.ReadFile(c.Machines.Store.Cluster(spec.Name).UnlockKeyPath()); err == nil {
		req.UnlockKey = strings.TrimSpace(string(key))
		c.Machines.Redactor.Add(req.UnlockKey)
	}
	req.Policy.Restarted = map[string]bool{}
	for _, h := range hosts {
		req.Policy.Restarted[h.spec.Name] = h.restarted
		req.Targets = append(req.Targets, &bootstrap.Target{
			Node:      h.node,
			Advertise: h.mach.Address,
			Want: bootstrap.Want{Name: h.spec.Name, Hostname: h.mach.Hostname, Role: h.spec.Role,
				Labels: h.spec.Labels, Availability: h.spec.Availability},
		})
	}
	return req
}

// swarm makes the hosts one swarm through the reconciler, then autolock,
// the registry, and a final check from every node. It returns the leader
// (the manager the others joined through) and the swarm's ID.
func (c *Converger) swarm(ctx context.Context, spec *Spec, hosts []*host, leaderName string, prev *State) (changed bool, leader *host, clusterID string, err error) {
	return c.swarmWith(ctx, spec, hosts, leaderName, prev, swarmChecks{})
}

// swarmChecks is what the pipeline already did or knows before the swarm
// pass.
type swarmChecks struct {
	// registryMade: the registry service was created or corrected early.
	registryMade bool
	// answered names the hosts from which the registry answered as they
	// were provisioned, with nothing changed since: no final check for
	// them.
	answered map[string]bool
	// checked names the hosts the registry answered from in the pipeline
	// (after their provisioning, with the registry service made); it
	// waits for the pipeline's checks (nil: none).
	checked func() map[string]bool
	// known are states the early swarm read after its last change to
	// each node (bootstrap.Request.Known).
	known map[string]bootstrap.State
	// mark records the end of a stage (nil: not recorded).
	mark func(stage string)
}

func (sc swarmChecks) done(stage string) {
	if sc.mark != nil {
		sc.mark(stage)
	}
}

func (c *Converger) swarmWith(ctx context.Context, spec *Spec, hosts []*host, leaderName string, prev *State, sc swarmChecks) (changed bool, leader *host, clusterID string, err error) {
	req := c.swarmRequest(spec, hosts, leaderName, prev)
	req.Known = sc.known
	out, err := c.reconciler().Reconcile(ctx, req)
	if err != nil {
		return false, nil, "", err
	}
	for _, w := range out.Warnings {
		c.Machines.Progress.Event(spec.Name, "swarm", ui.Info, w)
	}
	changed = out.Changed || sc.registryMade
	sc.done("reconcile")
	leader = takeStates(hosts, out)
	autoChanged, err := c.ensureAutolock(ctx, spec, leader)
	if err != nil {
		return false, leader, out.ClusterID, err
	}
	changed = changed || autoChanged
	// Changes that restart dockerd go one node at a time (and nodes a
	// stopped roll left drained are made active), before the registry's
	// check: its node may be one of them.
	rolled, err := c.roll(ctx, spec, hosts, leader, c.commandLine(spec, "up"))
	if err != nil {
		return false, leader, out.ClusterID, err
	}
	changed = changed || rolled
	if !spec.Registry.Enabled {
		return changed, leader, out.ClusterID, nil
	}
	fin := &registryCheck{c: c, spec: spec, hosts: hosts, leader: leader, sc: sc, rolled: rolled, swarmChanged: out.Changed}
	if err := fin.ensure(ctx); err != nil {
		return false, leader, out.ClusterID, err
	}
	changed = changed || fin.created
	return changed, leader, out.ClusterID, fin.checkAll(ctx)
}

// takeStates gives each host its state as the reconciler left it, and
// returns the host of its anchor, the leader.
func takeStates(hosts []*host, out *bootstrap.Outcome) *host {
	var leader *host
	for _, h := range hosts {
		h.state = out.States[h.spec.Name]
		if h.node == out.Anchor {
			leader = h
		}
	}
	return leader
}

// ensureAutolock sets the swarm's autolock as the file says. The unlock
// key is a secret, kept 0600 in the cluster's folder.
func (c *Converger) ensureAutolock(ctx context.Context, spec *Spec, leader *host) (bool, error) {
	changed, key, err := bootstrap.EnsureAutolock(ctx, leader.node, spec.Autolock)
	if err != nil {
		return false, err
	}
	keyFile := c.Machines.Store.Cluster(spec.Name).UnlockKeyPath()
	if key != "" {
		c.Machines.Redactor.Add(key)
		if err := fsutil.WriteFileAtomic(keyFile, []byte(key+"\n"), 0o600); err != nil {
			return false, err
		}
	} else {
		os.Remove(keyFile)
	}
	if changed {
		c.Machines.Progress.Event(leader.spec.Name, "swarm-autolock", ui.Changed, fmt.Sprintf("autolock=%v", spec.Autolock))
	}
	return changed, nil
}

// registryCheck is the swarm pass's registry: its service made or
// corrected, then the final check that it answers from every node.
type registryCheck struct {
	c            *Converger
	spec         *Spec
	hosts        []*host
	leader       *host
	sc           swarmChecks
	rolled       bool // the roll changed engines
	swarmChanged bool
	node         *host // the registry's node
	reg          bootstrap.Registry
	created      bool // the service was created or corrected
}

func (r *registryCheck) event(h *host, step string, s ui.Status, detail string) {
	r.c.Machines.Progress.Event(h.spec.Name, step, s, detail)
}

// ensure creates or corrects the registry service.
func (r *registryCheck) ensure(ctx context.Context) error {
	spec := r.spec
	for _, h := range r.hosts {
		if h.spec.Name == spec.Registry.Node {
			r.node = h
		}
	}
	r.reg = bootstrap.Registry{Hostname: r.node.mach.Hostname, Port: spec.Registry.Port, Image: spec.Registry.Image, Path: spec.Registry.Path, FreshNode: r.node.changed}
	created, err := bootstrap.EnsureRegistry(ctx, r.leader.node, r.node.client, r.reg)
	if err != nil {
		r.event(r.node, "registry", ui.Failed, err.Error())
		return err
	}
	if created {
		r.created = true
		r.event(r.node, "registry", ui.Changed, fmt.Sprintf("%s:%d", r.reg.Hostname, r.reg.Port))
	}
	r.sc.done("registry")
	return nil
}

// checkAll is the final check: the registry answers from every node (a
// node it answered as it was provisioned, with nothing changed since, is
// not asked again). Its own node first: the others are asked once it
// answers there, and not polled while its task starts.
func (r *registryCheck) checkAll(ctx context.Context) error {
	checked := map[string]bool{}
	if r.sc.checked != nil {
		checked = r.sc.checked()
	}
	check := func(ctx context.Context, h *host) error {
		ask := registryAsk{probed: r.sc.answered[h.spec.Name], checked: checked[h.spec.Name], regNode: h == r.node,
			created: r.created, rolled: r.rolled, swarmChanged: r.swarmChanged}
		if !ask.needed() {
			r.event(h, "check", ui.Unchanged, "Ready, registry answers")
			return nil
		}
		if err := bootstrap.WaitRegistry(ctx, h.node, r.reg.Hostname, r.reg.Port, 2*time.Minute); err != nil {
			r.event(h, "check", ui.Failed, err.Error())
			return err
		}
		r.event(h, "check", ui.Unchanged, "Ready, registry answers")
		return nil
	}
	if err := check(ctx, r.node); err != nil {
		return err
	}
	var others []*host
	for _, h := range r.hosts {
		if h != r.node {
			others = append(others, h)
		}
	}
	err := parallel(ctx, r.c.Parallel, others, check)
	r.sc.done("check")
	return err
}

// registryAsk is what the final check knows of one host when it decides
// whether to ask the registry from it again.
type registryAsk struct {
	probed       bool // it answered as the host was provisioned, nothing on it changed since
	checked      bool // it answered from the host in the pipeline
	regNode      bool // the host is the registry's node
	created      bool // the swarm pass created or corrected the registry service
	rolled       bool // the swarm pass rolled engines
	swarmChanged bool // the swarm pass changed the swarm (joins, roles, labels)
}

// needed tells whether the registry must be asked again. An answer to the
// probe stands while nothing changed at all. The swarm pass changes
// neither a host's /etc/hosts nor its way to the registry's node: an
// answer in the pipeline stands unless the registry service is new or
// engines rolled; on the registry's own node, only while the swarm did not
// change (its task may have moved).
func (a registryAsk) needed() bool {
	fresh := !a.created && !a.rolled && !a.swarmChanged
	switch {
	case a.probed && fresh:
		return false
	case a.checked && !a.created && !a.rolled && (!a.regNode || fresh):
		return false
	}
	return true
}

// peerFiles is the SSH mesh every node gets: the docker user of every node
// logs in to every other node with the cluster key, through an ssh_config
// block that uses it for the cluster's names and a known_hosts block with
// the host keys shoal pinned (never StrictHostKeyChecking=no); its
// authorized_keys has the cluster key's entry and no older one. It needs
// every host's key.
type peerFiles struct {
	keyName, begin, end     string
	knownBlock, configBlock string
	keySum                  string
	priv                    []byte
	// pub is the cluster key's authorized_keys entry; the entries with
	// comment are replaced by it.
	pub, comment string
	// keyOnly: only the key and authorized_keys are written (a rotation
	// outside 'cluster up').
	keyOnly bool
}

// hostIDs are the names a host is reached by in the mesh: its hostname,
// its machine name when another, its address.
func hostIDs(h *host) []string {
	ids := []string{h.mach.Hostname}
	if h.mach.Name != h.mach.Hostname {
		ids = append(ids, h.mach.Name)
	}
	return append(ids, h.mach.Address)
}

func newPeerFiles(hosts []*host, priv []byte, pub, cluster string) *peerFiles {
	var known, names []string
	for _, h := range hosts {
		ids := hostIDs(h)
		names = append(names, ids...)
		known = append(known, strings.Join(ids, ",")+" "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(h.client.HostKey()))))
	}
	pf := &peerFiles{keyName: peerKeyName(cluster), begin: "# BEGIN shoal cluster " + cluster, end: "# END shoal cluster " + cluster, priv: priv,
		pub: pub, comment: clusterKeyComment(cluster)}
	pf.knownBlock = pf.begin + "\n" + strings.Join(known, "\n") + "\n" + pf.end + "\n"
	pf.configBlock = fmt.Sprintf("%s\nHost %s\n    IdentityFile ~/.ssh/%s\n    IdentitiesOnly yes\n%s\n", pf.begin, strings.Join(names, " "), pf.keyName, pf.end)
	sum := sha256.Sum256(priv)
	pf.keySum = hex.EncodeToString(sum[:])
	return pf
}

func peerKeyName(cluster string) string { return "shoal-" + cluster }

// peerProbeName is the facts section with the docker user's ~/.ssh.
const peerProbeName = "shoal-peer-ssh"

// peerProbe reads the docker user's home, group, ~/.ssh/config and
// known_hosts, the cluster key's checksum and the cluster key's entries of
// authorized_keys: five parts split by "@@".
func peerProbe(dockerUser, cluster string) provision.Probe {
	u := shell.Quote(dockerUser)
	return provision.Probe{Name: peerProbeName, Cmd: fmt.Sprintf(`h=$(getent passwd %s | cut -d: -f6); g=$(id -gn %s); echo "$h"; echo "$g"; echo @@; cat "$h/.ssh/config" 2>/dev/null; echo @@; cat "$h/.ssh/known_hosts" 2>/dev/null; echo @@; sha256sum < "$h/.ssh/"%s 2>/dev/null; echo @@; grep -F -e %s "$h/.ssh/authorized_keys" 2>/dev/null; true`,
		u, u, shell.Quote(peerKeyName(cluster)), shell.Quote(clusterKeyComment(cluster)))}
}

// peerProbeParts is the number of parts of peerProbe's answer.
const peerProbeParts = 5

// markPeerSSH notes that the mesh's files changed on h (wrote names
// them).
func (c *Converger) markPeerSSH(h *host, wrote []string, mu *sync.Mutex) {
	mu.Lock()
	h.changed = true
	mu.Unlock()
	c.Machines.Progress.Event(h.spec.Name, "peer-ssh", ui.Changed, strings.Join(wrote, ", "))
}

// peerSSHHost writes what differs of the SSH mesh on one host. The facts
// probe read the files already; a host whose docker user was only made by
// this run's provisioning is read again.
// mu guards h.changed, which the host's other branches set too.
func (c *Converger) peerSSHHost(ctx context.Context, h *host, pf *peerFiles, mu *sync.Mutex) error {
	parts, err := peerSSHNow(ctx, h, pf)
	if err != nil {
		return err
	}
	head := strings.Fields(parts[0])
	if len(head) != 2 {
		return fmt.Errorf("%s: the docker user %s has no home", h.spec.Name, h.mach.DockerUser)
	}
	home, group := head[0], head[1]
	owner := h.mach.DockerUser + ":" + group
	files, wrote := peerSSHFiles(parts, home, owner, pf)
	if pf.pub != "" && editAuthorizedKeys(parts[4], pf.comment, pf.pub) != parts[4] {
		f, changed, err := authorizedKeysFile(ctx, h, home, owner, pf)
		if err != nil {
			return err
		}
		if changed {
			files = append(files, f)
			wrote = append(wrote, "authorized_keys")
		}
	}
	if len(files) > 0 {
		if err := h.client.WriteFiles(ctx, files); err != nil {
			return err
		}
	}
	if len(wrote) > 0 {
		c.markPeerSSH(h, wrote, mu)
	}
	return nil
}

// peerSSHNow is the docker user's ~/.ssh as the facts probe found it (or,
// where it did not answer, as the probe run now finds it), in its parts.
func peerSSHNow(ctx context.Context, h *host, pf *peerFiles) ([]string, error) {
	var parts []string
	if h.facts != nil {
		parts = strings.Split(h.facts.Section(peerProbeName)+"\n", "@@\n")
	}
	if len(parts) != peerProbeParts || len(strings.Fields(parts[0])) != 2 {
		out, err := h.client.RunSudo(ctx, peerProbe(h.mach.DockerUser, strings.TrimPrefix(pf.keyName, "shoal-")).Cmd)
		if err != nil {
			return nil, err
		}
		parts = strings.Split(string(out.Stdout), "@@\n")
	}
	if len(parts) != peerProbeParts {
		return nil, fmt.Errorf("%s: reading the docker user's ~/.ssh: unexpected answer", h.spec.Name)
	}
	return parts, nil
}

// peerSSHFiles are the key, config and known_hosts files that differ from
// what the host has (parts), and their names.
func peerSSHFiles(parts []string, home, owner string, pf *peerFiles) (files []sshrun.File, wrote []string) {
	if !strings.HasPrefix(parts[3], pf.keySum) {
		files = append(files, sshrun.File{Path: home + "/.ssh/" + pf.keyName, Data: pf.priv, Mode: 0o600, Owner: owner})
		wrote = append(wrote, "key")
	}
	if pf.keyOnly {
		return files, wrote
	}
	for _, f := range []struct{ name, cur, block string }{
		{"config", parts[1], pf.configBlock},
		{"known_hosts", parts[2], pf.knownBlock},
	} {
		next := replaceBlock(f.cur, pf.begin, pf.end, f.block)
		if next == f.cur {
			continue
		}
		files = append(files, sshrun.File{Path: home + "/.ssh/" + f.name, Data: []byte(next), Mode: 0o600, Owner: owner})
		wrote = append(wrote, f.name)
	}
	return files, wrote
}

// authorizedKeysFile is the docker user's authorized_keys with the cluster
// key's entry alone in place of the cluster's old ones. The file is read
// again here: the probe came before provisioning added keys to it (and
// when that made it right, nothing is written).
func authorizedKeysFile(ctx context.Context, h *host, home, owner string, pf *peerFiles) (f sshrun.File, changed bool, err error) {
	path := home + "/.ssh/authorized_keys"
	out, err := h.client.RunSudo(ctx, "cat "+shell.Quote(path)+" 2>/dev/null || [ ! -e "+shell.Quote(path)+" ]")
	if err != nil {
		return f, false, fmt.Errorf("%s: read %s: %w", h.spec.Name, path, err)
	}
	next := editAuthorizedKeys(string(out.Stdout), pf.comment, pf.pub)
	return sshrun.File{Path: path, Data: []byte(next), Mode: 0o600, Owner: owner}, next != string(out.Stdout), nil
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
