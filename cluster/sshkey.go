package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/internal/fsutil"
	"github.com/shoal-dev/shoal/internal/sshrun"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
	"golang.org/x/crypto/ssh"
)

// The cluster key: every node holds its private half and authorizes its
// public half for the docker user, so that the nodes log in to each other.
// A host that leaves the cluster keeps what it held; the key is rotated
// then, and the entry of the old key (found by the key's comment) is
// replaced on the nodes that stay, which is what takes the access away.

// clusterKeyComment is the comment of the cluster key's authorized_keys
// entry: the entries with it are the cluster's, and only those change.
func clusterKeyComment(cluster string) string { return "shoal-cluster-" + cluster }

// isClusterEntry tells whether an authorized_keys line is an entry of the
// cluster key: its last field is the comment (options and key come before).
func isClusterEntry(line, comment string) bool {
	f := strings.Fields(line)
	return len(f) >= 2 && !strings.HasPrefix(f[0], "#") && f[len(f)-1] == comment
}

// editAuthorizedKeys returns text with the cluster's entries (those with
// comment) replaced by pub alone, or dropped when pub is "". Every other
// line stays as it was, in its place; an entry that already is pub stays
// where it is.
func editAuthorizedKeys(text, comment, pub string) string {
	pub = strings.TrimSpace(pub)
	want := strings.Join(strings.Fields(pub), " ")
	lines := strings.SplitAfter(text, "\n")
	var out strings.Builder
	have := pub == ""
	for _, l := range lines {
		if l == "" {
			continue
		}
		if !isClusterEntry(l, comment) {
			out.WriteString(l)
			continue
		}
		if !have && strings.Join(strings.Fields(l), " ") == want {
			have = true
			out.WriteString(l)
		}
	}
	if have {
		return out.String()
	}
	return appendLine(out.String(), pub)
}

// appendLine adds line to text, after a line end if its last line has
// none.
func appendLine(text, line string) string {
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	return text + line + "\n"
}

// replaceKeyList is a machine record's list of authorized keys with the
// cluster's entries replaced by pub (kept for 'machine provision', which
// adds back what the list has).
func replaceKeyList(keys []string, comment, pub string) []string {
	out := []string{}
	for _, k := range keys {
		if !isClusterEntry(k, comment) {
			out = append(out, k)
		}
	}
	return append(out, pub)
}

// keyRotationDue tells whether the cluster key must be made anew: some
// machine that held it (the last run's machines, the stored ones) is not
// among the machines the cluster keeps.
func keyRotationDue(holders, keep []string) bool {
	in := map[string]bool{}
	for _, n := range keep {
		in[n] = true
	}
	for _, n := range holders {
		if !in[n] {
			return true
		}
	}
	return false
}

// publicOf is the authorized_keys entry of a private key, with the
// cluster's comment: derived from the private half, so that the two never
// disagree after a rotation cut short.
func publicOf(priv []byte, cluster string) (string, error) {
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		return "", fmt.Errorf("cluster %s: the cluster key in the store: %w", cluster, err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " " + clusterKeyComment(cluster), nil
}

// newClusterKey makes a new cluster key pair and keeps it in the store
// (0600, atomic), in place of the old one.
func newClusterKey(st *store.Store, name string) (priv []byte, pub string, err error) {
	dir := st.ClusterDir(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	priv, pub, err = sshrun.GenerateKey()
	if err != nil {
		return nil, "", err
	}
	pub += " " + clusterKeyComment(name)
	path := st.Cluster(name).KeyPath()
	if err := fsutil.WriteFileAtomic(path, priv, 0o600); err != nil {
		return nil, "", err
	}
	return priv, pub, fsutil.WriteFileAtomic(path+".pub", []byte(pub+"\n"), 0o644)
}

// keyOnlyPeerFiles are the mesh files of a rotation outside 'cluster up':
// the private key and the authorized_keys entry. The config and
// known_hosts blocks name the same key file and hosts, and stay.
func keyOnlyPeerFiles(priv []byte, pub, cluster string) *peerFiles {
	sum := sha256.Sum256(priv)
	return &peerFiles{keyName: peerKeyName(cluster), priv: priv, pub: pub, comment: clusterKeyComment(cluster),
		keySum: hex.EncodeToString(sum[:]), keyOnly: true}
}

// RotateSSHKey makes a new cluster key, keeps it in the store, and puts it
// on every machine of the cluster in place of the old one (the private
// key, the authorized_keys entry, the machine's record). A machine that
// does not answer is named in the error: it still authorizes the old key
// until the next 'cluster up' (which puts the stored key everywhere).
func (c *Converger) RotateSSHKey(ctx context.Context, name string) error {
	if err := store.ValidateName(name); err != nil {
		return err
	}
	st := c.Machines.Store
	unlock, err := st.TryLock("cluster", name)
	if err != nil {
		return fmt.Errorf("cluster %s: another 'cluster up' or 'cluster down' is running (%v)", name, err)
	}
	defer unlock()
	names, err := machinesOf(st, name)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return fmt.Errorf("no cluster %q here (see 'cluster ls')", name)
	}
	priv, pub, err := newClusterKey(st, name)
	if err != nil {
		return err
	}
	pf := keyOnlyPeerFiles(priv, pub, name)
	hosts := make([]*host, len(names))
	for i, n := range names {
		hosts[i] = &host{spec: Node{Name: n}}
	}
	defer func() {
		for _, h := range hosts {
			h.close()
		}
	}()
	var mu sync.Mutex
	return parallel(ctx, c.Parallel, hosts, func(ctx context.Context, h *host) error {
		return c.rotateOn(ctx, h, pf, &mu)
	})
}

// recordKey loads h's machine and puts the rotated key in its record
// instead of the old one.
func (c *Converger) recordKey(h *host, pf *peerFiles) error {
	var err error
	if h.mach, err = c.Machines.Load(h.spec.Name); err != nil {
		return err
	}
	h.mach.AuthorizedKeys = replaceKeyList(h.mach.AuthorizedKeys, pf.comment, pf.pub)
	return c.Machines.Store.Save(h.mach.Machine)
}

// rotateOn puts the rotated key on one machine and in its record.
func (c *Converger) rotateOn(ctx context.Context, h *host, pf *peerFiles, mu *sync.Mutex) error {
	unlock, err := c.Machines.Store.Lock(ctx, "machine", h.spec.Name)
	if err != nil {
		return err
	}
	defer unlock()
	if err := c.recordKey(h, pf); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if h.client, err = c.Machines.Connect(cctx, h.mach, io.Discard); err != nil {
		c.Machines.Progress.Event(h.spec.Name, "peer-ssh", ui.Failed, "unreachable: it authorizes the old cluster key until the next 'cluster up'")
		return fmt.Errorf("%s: rotate the cluster key: %w", h.spec.Name, err)
	}
	if err := c.peerSSHHost(ctx, h, pf, mu); err != nil {
		return errors.Join(fmt.Errorf("%s: rotate the cluster key", h.spec.Name), err)
	}
	return nil
}
