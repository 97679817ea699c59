package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/cluster"
	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/spf13/cobra"
)

func newUpgrade(g *globals) *cobra.Command {
	var drainTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "upgrade FILE",
		Short: "Apply only the engine settings of FILE (install, version, repo_url), one node at a time",
		Long: `upgrade installs the Docker engine that FILE's engine blocks ask for on the
machines of the cluster whose engine differs, one node at a time: drain, wait
until its tasks run elsewhere, install, restart dockerd, wait until the node is
Ready, make it what it was (active), wait for the tasks, then the next node.
Managers go one at a time with the Raft quorum kept (the leader last), workers
in batches of swarm { max_unavailable } (default 1). A node whose engine is
already right is not touched. The first failure stops the roll and leaves that
node drained; running upgrade (or up) again resumes. 'cluster up' does the same
roll as part of converging the whole file.`,
		Args: oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, c, err := g.loadWithConverger(cmd, args[0])
			if err != nil {
				return err
			}
			c.DrainTimeout = drainTimeout
			res, err := c.Upgrade(cmd.Context(), spec)
			c.Machines.Progress.Close()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if g.output == ui.ModeJSON {
				return writeJSON(out, res)
			}
			if len(res.Rolled) == 0 {
				fmt.Fprintf(out, "Cluster %s: every engine is as the file says; nothing to change.\n", res.Cluster)
				return nil
			}
			fmt.Fprintf(out, "Cluster %s: engines changed on %s (order: %s).\n", res.Cluster, strings.Join(res.Rolled, ", "), res.Order)
			return nil
		},
	}
	cmd.Flags().DurationVar(&drainTimeout, "drain-timeout", cluster.DefaultDrainTimeout, "how long a node may take to have its tasks run elsewhere, and the tasks to run again")
	return cmd
}

func newBackup(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "backup NAME|FILE -o ARCHIVE",
		Short: "Save the swarm's Raft state, its unlock key and shoal's state of the cluster in one archive (0600)",
		Long: `backup copies /var/lib/docker/swarm from one manager of the cluster: with three
or more managers from one that does not lead, whose dockerd is stopped for the
copy while the others keep the quorum; with one or two managers from the
leader, and the swarm takes no changes for those seconds. The archive (a
tar.gz written 0600) also holds the unlock key (autolock), the cluster's own
folder of the store (state.json, the cluster's SSH key pair), the cluster file
and a manifest.json: the swarm's ID, its nodes with roles, labels and engine
versions, and the time. The archive holds secrets: keep it like a key.
'cluster restore ARCHIVE' rebuilds the swarm from it.

Stopping dockerd, packing the state and starting dockerd again run as one job
on the host (a systemd unit), so a backup killed or cut off midway leaves
dockerd running (autolock, turned off for the copy, comes back on with the
next 'cluster up'). The size of the state and the free space on the host and
here are checked before anything stops; the pack is streamed into the
archive. The archive ends with an HMAC-SHA256 made with the store's backup
key (backup.key, 0600, made by the first backup), which 'cluster restore'
checks.`,
		Args: oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return cli.Invalid(fmt.Errorf("backup needs -o ARCHIVE: where to write the archive"))
			}
			name, _, c, err := g.namedConverger(cmd, args[0])
			if err != nil {
				return err
			}
			res, err := c.Backup(cmd.Context(), name, out)
			c.Machines.Progress.Close()
			if err != nil {
				return err
			}
			if g.output == ui.ModeJSON {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Cluster %s: swarm %s (%d nodes) saved from %s to %s (%d bytes, mode 0600; it holds secrets).\n",
				res.Cluster, res.SwarmID, res.Nodes, res.Source, res.File, res.Bytes)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output-file", "o", "", "the archive to write")
	return cmd
}

// readRestore reads the backup archive, checked with the store's backup
// key (unless trust), and returns it with the cluster file to restore on:
// file, else the one the cluster was last converged from.
func readRestore(g *globals, archive, file string, trust bool) (*cluster.Backup, string, error) {
	st, err := store.Open(g.storagePath)
	if err != nil {
		return nil, "", err
	}
	key, err := cluster.BackupKey(st, false)
	if err != nil {
		return nil, "", err
	}
	b, err := cluster.ReadBackup(archive, key, trust)
	if err != nil {
		return nil, "", cli.Invalid(err)
	}
	if file == "" {
		if s, err := cluster.LoadState(st, b.Manifest.Cluster); err == nil && s.File != "" {
			file = s.File
		}
	}
	if file == "" {
		return nil, "", cli.Invalid(fmt.Errorf("which machines? give the cluster file with --file (the backup's copy of it is cluster.hcl inside the archive)"))
	}
	return b, file, nil
}

func newRestore(g *globals) *cobra.Command {
	var file string
	var accept []string
	var trust bool
	cmd := &cobra.Command{
		Use:   "restore ARCHIVE [--file NEW.hcl]",
		Short: "Rebuild the cluster's swarm from a backup, on its machines or on new ones",
		Long: `restore rebuilds the swarm of a 'cluster backup' archive on the machines of
the cluster file (--file, else the file the cluster was last converged from):
the file's first manager, a host in no swarm, gets the backup's Raft state and
starts a new cluster of one manager from it (swarm init --force-new-cluster at
its address), the entries of the managers that are gone are removed, the
other machines leave what is left of the old swarm and join again, and then
everything 'cluster up' does follows (/etc/hosts, registry trust, roles,
labels, the registry). Services, secrets, configs, overlay networks and node
labels come back. Run it again to finish an interrupted restore.

The archive must carry the HMAC of this store's backup key (backup.key in
the store, made by the first 'cluster backup'): a backup altered, made by
another store or by an older shoal is refused unless --trust. Only swarm/ of
the archive's Raft state is unpacked on the host. Until the first manager
has the backup's state, a refused or failed restore changes nothing in the
store.`,
		Args: oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, file, err := readRestore(g, args[0], file, trust)
			if err != nil {
				return err
			}
			spec, err := g.load(cmd, file)
			if err != nil {
				return err
			}
			c, err := g.converger(cmd)
			if err != nil {
				return err
			}
			// The restore as given (--file, --trust), for the refusal of a
			// new host to name with the step that takes it.
			self := cli.CommandLine([]string{cli.ClusterCommand(), "restore"}, cli.GivenFlags(cmd, true), []string{args[0]}, spec.SensitiveVars)
			if err := acceptNewHosts(c, spec, accept, self); err != nil {
				return err
			}
			res, err := c.Restore(cmd.Context(), spec, b)
			c.Machines.Progress.Close()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if g.output == ui.ModeJSON {
				return json.NewEncoder(out).Encode(map[string]any{"result": res})
			}
			fmt.Fprintf(out, "\nSwarm %s restored from the backup of %s.\n", b.Manifest.SwarmID, b.Manifest.Created.Format("2006-01-02 15:04 MST"))
			summary(out, res)
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "the cluster file whose machines get the swarm (new ones may have other addresses)")
	addAcceptFlag(cmd, &accept)
	cmd.Flags().BoolVar(&trust, "trust", false, "restore a backup whose HMAC this store cannot confirm (altered, made by another store, or by an older shoal): only one you know the origin of")
	return cmd
}

// rotated says what rotate rotated.
func rotated(ca, sshKey bool) string {
	switch {
	case ca:
		return "join tokens and root CA (every node has its new certificate)"
	case sshKey:
		return "SSH key (every node has the new one; the old one is authorized nowhere)"
	}
	return "join tokens"
}

func newRotate(g *globals) *cobra.Command {
	var ca, sshKey bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "rotate FILE [--ca | --ssh-key]",
		Short: "Rotate the swarm's join tokens and, with --ca, its root CA; or the cluster's SSH key",
		Long: `rotate makes new worker and manager join tokens (the old ones stop working;
shoal reads the new ones when it needs them and never shows them). With --ca
it also rotates the swarm's own root CA (as 'docker swarm ca --rotate') and
waits until every node has a certificate of the new root.

With --ssh-key it rotates the cluster's SSH key instead (the key the nodes'
docker users log in to each other with): a new key pair in the store, on
every node in place of the old one, whose authorized_keys entry goes. A node
that does not answer keeps the old one until the next 'cluster up'.`,
		Args: oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if ca && sshKey {
				return cli.Invalid(fmt.Errorf("--ca and --ssh-key: one at a time"))
			}
			spec, c, err := g.loadWithConverger(cmd, args[0])
			if err != nil {
				return err
			}
			if sshKey {
				c.UseSecrets(spec)
				err = c.RotateSSHKey(cmd.Context(), spec.Name)
			} else {
				err = c.Rotate(cmd.Context(), spec, ca, timeout)
			}
			c.Machines.Progress.Close()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Cluster %s: rotated the %s.\n", spec.Name, rotated(ca, sshKey))
			return nil
		},
	}
	cmd.Flags().BoolVar(&ca, "ca", false, "also rotate the swarm's root CA")
	cmd.Flags().BoolVar(&sshKey, "ssh-key", false, "rotate the cluster's SSH key (only)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long every node may take to get a certificate of the new root CA")
	return cmd
}

func newUnlock(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "unlock FILE|NAME",
		Short: "Unlock the cluster's locked managers with the unlock key shoal keeps (never printed)",
		Long: `With swarm { autolock = true } a manager whose dockerd restarted comes back
locked. unlock unlocks every locked manager of the cluster with the key in
clusters/NAME/unlock-key, and does nothing else to any node.`,
		Args: oneArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, _, c, err := g.namedConverger(cmd, args[0])
			if err != nil {
				return err
			}
			done, err := c.Unlock(cmd.Context(), name)
			c.Machines.Progress.Close()
			if err != nil {
				return err
			}
			if len(done) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "Cluster %s: no manager is locked.\n", name)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Cluster %s: unlocked %s.\n", name, strings.Join(done, ", "))
			return nil
		},
	}
}
