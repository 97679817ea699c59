package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shoal-dev/shoal/bootstrap/dataplane"
	"github.com/shoal-dev/shoal/cluster"
	"github.com/shoal-dev/shoal/cluster/clusterfile"
	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/internal/shell"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/internal/validate"
	"github.com/shoal-dev/shoal/machine"
	"github.com/spf13/cobra"
)

var version = "dev"

type globals struct {
	// drivers are the drivers compiled in, built once by main.
	drivers     *drivers.Registry
	storagePath string
	output      string
	vars        []string
	varFiles    []string
	parallel    int
}

func (g *globals) converger(cmd *cobra.Command) (*cluster.Converger, error) {
	m, err := cli.Manager(cmd, g.drivers, g.storagePath, g.output)
	if err != nil {
		return nil, err
	}
	return &cluster.Converger{Machines: m, Parallel: g.parallel}, nil
}

// loadWithConverger reads a cluster file and returns it with a converger
// to act on it.
func (g *globals) loadWithConverger(cmd *cobra.Command, file string) (*cluster.Spec, *cluster.Converger, error) {
	spec, err := g.load(cmd, file)
	if err != nil {
		return nil, nil, err
	}
	c, err := g.converger(cmd)
	if err != nil {
		return nil, nil, err
	}
	c.CommandLine = commandLines(cmd, file, spec.SensitiveVars)
	return spec, c, nil
}

// load decodes a cluster file; an invalid one is exit status 2 and its
// diagnostics say FILE:LINE,COL.
func (g *globals) load(cmd *cobra.Command, path string) (*cluster.Spec, error) {
	spec, diags := cluster.Load(path, clusterfile.Options{Vars: g.vars, VarFiles: g.varFiles, Env: os.LookupEnv}, g.drivers)
	// Read once: no child process (docker, ssh) inherits a password.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, clusterfile.EnvVarPrefix) {
			os.Unsetenv(k)
		}
	}
	if diags.HasErrors() {
		clusterfile.FormatDiagnostics(cmd.ErrOrStderr(), diags, nil)
		return nil, cli.Invalid(fmt.Errorf("%s is not a valid cluster file: nothing was changed", path))
	}
	if len(spec.Warnings) > 0 {
		clusterfile.FormatDiagnostics(cmd.ErrOrStderr(), spec.Warnings, spec.Files)
	}
	return spec, nil
}

func newRoot(reg *drivers.Registry) *cobra.Command {
	g := &globals{drivers: reg}
	root := &cobra.Command{
		Use:   "cluster",
		Short: "Converge a whole Docker Swarm described in one HCL file",
		Long: `cluster reads a cluster file (HCL: machines, their drivers and roles, the
registry) and converges the real world to it: missing machines made or
adopted in parallel, provisioned in parallel, joined into one swarm with a
private registry. Run it again at will: with nothing to do it changes nothing.
Machines it makes are ordinary machines: 'machine ls/ssh/env' work on them.`,
	}
	cli.Setup(root)
	pf := root.PersistentFlags()
	pf.StringVarP(&g.storagePath, "storage-path", "s", store.DefaultRoot(), "where shoal keeps machines, keys and certificates ($SHOAL_STORAGE_PATH)")
	pf.StringVar(&g.output, "output", ui.ModeAuto, "auto (live lines on a terminal), plain, json")
	pf.StringArrayVar(&g.vars, "var", nil, "set a variable of the cluster file: name=value (repeat)")
	pf.StringArrayVar(&g.varFiles, "var-file", nil, "an HCL file of variable values (repeat)")
	pf.IntVar(&g.parallel, "parallel", 32, "how many hosts to work on at once (a host waiting for another does not count)")
	root.AddCommand(newValidate(g), newPlan(g), newUp(g), newUpgrade(g), newBackup(g), newRestore(g), newRotate(g), newUnlock(g), newDown(g), newStatus(g), newCheck(g), newLs(g), newEnv(g), &cobra.Command{
		Use: "version", Short: "Print the version", Args: cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), "cluster (shoal)", version) },
	})
	return root
}

// acceptFlag is --accept-new-host-key, on the commands that connect to
// the file's machines and may pin.
const acceptFlag = "accept-new-host-key"

func addAcceptFlag(cmd *cobra.Command, names *[]string) {
	cmd.Flags().StringArrayVar(names, acceptFlag, nil, "take the host at machine NAME's new address (changed in the file), which offers another key than the one pinned, as NAME's new host: its key is pinned instead (repeat or comma separate; a changed key at an unchanged address stays refused)")
}

// acceptNewHosts checks the names given to --accept-new-host-key and sets
// them on the converger's manager, with the command that takes a new host
// (self, with the flag added) for the refusal to name.
func acceptNewHosts(c *cluster.Converger, spec *cluster.Spec, given []string, self string) error {
	accept, err := cluster.AcceptNewHostKeys(spec, given)
	if err != nil {
		return cli.Invalid(err)
	}
	c.Machines.AcceptNewHostKey = accept
	c.Machines.NewHostStep = func(name string) string { return self + " --" + acceptFlag + " " + shell.Word(name) }
	return nil
}

func oneArg(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return cli.Invalid(fmt.Errorf("%q takes 1 argument, got %d; see '%s --help'", cmd.CommandPath(), len(args), cmd.CommandPath()))
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newValidate(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "validate FILE",
		Short:             "Check a cluster file; exit status 2 and FILE:LINE diagnostics when it is invalid",
		Args:              oneArg,
		ValidArgsFunction: completeFile,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := g.load(cmd, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: cluster %q, %d machines (%d managers), valid\n", args[0], spec.Name, len(spec.Machines), len(spec.Managers()))
			return nil
		},
	}
}

func newPlan(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "plan FILE",
		Short:             "Show what 'cluster up' would change on each machine (changes nothing)",
		Args:              oneArg,
		ValidArgsFunction: completeFile,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := g.load(cmd, args[0])
			if err != nil {
				return err
			}
			// A plan looks and writes nothing: no store, pin or certificate.
			m, err := cli.ReadOnlyManager(cmd, g.drivers, g.storagePath, g.output)
			if err != nil {
				return err
			}
			c := &cluster.Converger{Machines: m, Parallel: g.parallel}
			apply := commandLines(cmd, args[0], spec.SensitiveVars)("up")
			m.NewHostStep = func(name string) string { return apply + " --" + acceptFlag + " " + shell.Word(name) }
			plan, err := c.Plan(cmd.Context(), spec)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if g.output == ui.ModeJSON {
				return writeJSON(out, struct {
					*cluster.PlanResult
					Apply string `json:"apply"`
				}{plan, apply})
			}
			for _, p := range plan.Machines {
				if len(p.Actions) == 0 {
					fmt.Fprintf(out, "%s (%s): nothing to change\n", p.Name, p.Role)
					continue
				}
				fmt.Fprintf(out, "%s (%s):\n", p.Name, p.Role)
				for _, a := range p.Actions {
					fmt.Fprintf(out, "  + %s\n", ui.CleanLine(a))
				}
			}
			for _, p := range plan.Leaving {
				fmt.Fprintf(out, "- %s (%s): %s\n", p.Name, p.Role, ui.CleanLine(strings.Join(p.Actions, ", ")))
			}
			if plan.Roll != "" {
				fmt.Fprintf(out, "engine roll, one batch at a time: %s\n", plan.Roll)
			}
			for _, w := range plan.Warnings {
				fmt.Fprintf(out, "warning: %s\n", ui.Clean(w)) // they quote hosts
			}
			for _, r := range plan.Refusals {
				fmt.Fprintf(out, "refused: %s\n", ui.Clean(r))
			}
			fmt.Fprintf(out, "\n%d of %d machines would change.", plan.Changes(), len(plan.Machines)+len(plan.Leaving))
			if len(plan.Refusals) > 0 {
				fmt.Fprintf(out, " 'cluster up' would refuse (see above) and change nothing.\n")
				return nil
			}
			fmt.Fprintf(out, " Apply with: %s\n", apply)
			return nil
		},
	}
}

func newUp(g *globals) *cobra.Command {
	var force, skipCheck bool
	var drainTimeout time.Duration
	var accept []string
	var co cluster.CheckOptions
	cmd := &cobra.Command{
		Use:               "up FILE",
		Short:             "Make the machines of FILE one ready swarm (again and again, without harm)",
		Args:              oneArg,
		ValidArgsFunction: completeFile,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, c, err := g.loadWithConverger(cmd, args[0])
			if err != nil {
				return err
			}
			c.Force = force
			c.DrainTimeout = drainTimeout
			if err := acceptNewHosts(c, spec, accept, commandLines(cmd, args[0], spec.SensitiveVars)("up")); err != nil {
				return err
			}
			defer c.Machines.Close() // the jump host connections
			res, err := c.Up(cmd.Context(), spec)
			if err != nil {
				c.Machines.Progress.Close()
				return err
			}
			// A run that changed the swarm ends with the data-plane check;
			// a no-op run does not pay for it.
			var rep *dataplane.Report
			if res.Changed && !skipCheck {
				if co.OverlayMTU == 0 {
					co.OverlayMTU = spec.OverlayMTU // the probe's network as the file's
				}
				co.ImageOptional = true // the swarm is made: a node without the probe's image is a warning
				var took time.Duration
				rep, took, err = checkAfterUp(cmd, c, spec.Name, co)
				res.Stages["check"] = took
				res.Elapsed += took
				if err != nil {
					// The swarm is made: a check that could not run is said.
					defer fmt.Fprintf(cmd.ErrOrStderr(), "Warning: cluster %s is up, but its data-plane check could not run: %v (run '%s')\n", spec.Name, err, commandLines(cmd, args[0], spec.SensitiveVars)("check"))
					rep, err = nil, nil
				}
			}
			c.Machines.Progress.Close()
			out := cmd.OutOrStdout()
			if g.output == ui.ModeJSON {
				if err := json.NewEncoder(out).Encode(map[string]any{"result": res, "check": rep}); err != nil {
					return err
				}
			} else {
				summaryWith(out, res, func() {
					if rep != nil {
						fmt.Fprintln(out)
						writeCheck(out, rep, g.output == ui.ModeAuto && ui.IsTerminal(out))
					}
				})
			}
			if rep != nil && !rep.OK {
				// Said, not yet a failed run: the check is new, and a fault
				// it finds after a readdress is still being understood
				// (docs/troubleshooting.md). 'cluster check' exits 1.
				fmt.Fprintf(cmd.ErrOrStderr(), "Warning: cluster %s: the data plane has a fault (see above); the swarm is made. Fix it, then run '%s'\n", spec.Name, commandLines(cmd, args[0], spec.SensitiveVars)("check"))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&skipCheck, "skip-check", false, "do not run the data-plane check at the end of a run that changed the swarm")
	addCheckFlags(cmd, &co)
	cmd.Flags().BoolVar(&force, "force", false, "make nodes that belong to another swarm leave it and join this one (as swarm { force_rejoin = true })")
	cmd.Flags().DurationVar(&drainTimeout, "drain-timeout", cluster.DefaultDrainTimeout, "how long a leaving node may take to have its tasks run elsewhere")
	addAcceptFlag(cmd, &accept)
	return cmd
}

func summary(w io.Writer, res *cluster.Result) { summaryWith(w, res, func() {}) }

// summaryWith is summary with more (the data-plane check's verdict)
// before what to type next.
func summaryWith(w io.Writer, res *cluster.Result, more func()) {
	fmt.Fprintln(w)
	if !res.Changed {
		fmt.Fprintf(w, "Cluster %s: nothing to change.\n", res.Cluster)
	} else {
		fmt.Fprintf(w, "Cluster %s is up.\n", res.Cluster)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tADDRESS\tSTATUS\tDOCKER")
	for _, n := range res.Nodes {
		status := "Ready"
		if !n.Ready {
			status = "NotReady"
		}
		role := n.Role
		if n.Name == res.Leader {
			role += " (leader)"
		}
		ui.TableRow(tw, n.Name, role, n.Address, status, n.DockerVersion)
	}
	tw.Flush()
	if res.Registry != "" {
		fmt.Fprintf(w, "Registry: %s (every node trusts it: docker push %s/IMAGE)\n", res.Registry, res.Registry)
	}
	var stages []string
	for _, s := range []string{"create", "provision", "swarm", "check"} {
		if d, ok := res.Stages[s]; ok || s != "check" {
			stages = append(stages, fmt.Sprintf("%s %s", s, d.Round(100*time.Millisecond)))
		}
	}
	fmt.Fprintf(w, "Took %s (%s), %d SSH sessions.\n", res.Elapsed.Round(100*time.Millisecond), strings.Join(stages, ", "), res.Sessions)
	more()
	fmt.Fprintf(w, "\nNext:\n  eval \"$(%s env %s)\"\n  docker node ls\n", cli.MachineCommand(), res.Leader)
}

// clusterName takes FILE or NAME: a file is read for its cluster's name.
func (g *globals) clusterName(cmd *cobra.Command, arg string) (string, error) {
	name, _, err := g.clusterSpec(cmd, arg)
	return name, err
}

// clusterSpec is clusterName that also returns the file's spec (nil for a
// NAME): its ssh passwords serve the run.
func (g *globals) clusterSpec(cmd *cobra.Command, arg string) (string, *cluster.Spec, error) {
	if st, err := os.Stat(arg); err == nil && !st.IsDir() {
		spec, err := g.load(cmd, arg)
		if err != nil {
			return "", nil, err
		}
		return spec.Name, spec, nil
	}
	// A name becomes a folder of the store: nothing like ../x gets there.
	if err := validate.Name(arg); err != nil {
		return "", nil, cli.Invalid(fmt.Errorf("%q is neither a cluster file nor a cluster name: %w", arg, err))
	}
	return arg, nil, nil
}

func newDown(g *globals) *cobra.Command {
	var purge bool
	cmd := &cobra.Command{
		Use:               "down FILE|NAME",
		Short:             "Take the cluster apart: nodes leave the swarm, machines it made are removed, adopted hosts stay",
		Args:              oneArg,
		ValidArgsFunction: completeFileOrName(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, spec, err := g.clusterSpec(cmd, args[0])
			if err != nil {
				return err
			}
			c, err := g.converger(cmd)
			if err != nil {
				return err
			}
			if spec != nil {
				c.UseSecrets(spec)
			}
			defer c.Machines.Close()
			err = c.Down(cmd.Context(), name, purge)
			c.Machines.Progress.Close()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Cluster %s is down.\n", name)
			return nil
		},
	}
	cmd.Flags().BoolVar(&purge, "purge", false, "also undo on adopted hosts what provisioning can undo (TLS, daemon.json, /etc/hosts block, cluster keys)")
	return cmd
}

func newStatus(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "status FILE|NAME",
		Short:             "Per node: address, role, swarm state, Docker version, when its TLS certificates expire, reachable or not",
		Args:              oneArg,
		ValidArgsFunction: completeFileOrName(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, spec, err := g.clusterSpec(cmd, args[0])
			if err != nil {
				return err
			}
			c, err := g.converger(cmd)
			if err != nil {
				return err
			}
			if spec != nil {
				c.UseSecrets(spec)
			}
			defer c.Machines.Close()
			nodes, err := c.Status(cmd.Context(), name)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if g.output == ui.ModeJSON {
				return writeJSON(out, map[string]any{"cluster": name, "nodes": nodes})
			}
			tw := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "NODE\tADDRESS\tROLE\tSWARM\tDOCKER\tCERTS\tREACHABLE\tERROR")
			for _, n := range nodes {
				ui.TableRow(tw, n.Name, n.Address, n.Role, n.Swarm, n.DockerVersion, n.Certs, strconv.FormatBool(n.Reachable), n.Error)
			}
			return tw.Flush()
		},
	}
}

func newLs(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List the clusters in the store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := store.New(g.storagePath)
			if err != nil {
				return err
			}
			states, err := cluster.List(st)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if g.output == ui.ModeJSON {
				if states == nil {
					states = []*cluster.State{}
				}
				return writeJSON(out, states)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "NAME\tNODES\tLEADER\tREGISTRY\tFILE\tUPDATED")
			for _, s := range states {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", s.Name, len(s.Machines), s.Leader, s.Registry, s.File, s.Updated.Local().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
}

func newEnv(g *globals) *cobra.Command {
	var shell string
	cmd := &cobra.Command{
		Use:               "env [--shell SHELL] NAME",
		Short:             "Print the commands that point the docker CLI at the cluster's leader",
		Args:              oneArg,
		ValidArgsFunction: completeName(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := store.New(g.storagePath)
			if err != nil {
				return err
			}
			s, err := cluster.LoadState(st, args[0])
			if err != nil {
				return err
			}
			mach, err := st.Load(s.Leader)
			if err != nil {
				return err
			}
			url := machine.URL(mach)
			if url == "" {
				return fmt.Errorf("%s has no TLS engine URL (engine tls = false)", s.Leader)
			}
			if shell == "" {
				shell = machine.DetectShell()
			}
			text, err := machine.EnvScript(shell, []string{"1", url, st.CertsDir(), s.Leader}, "cluster env "+args[0])
			if err != nil {
				return cli.Invalid(err)
			}
			fmt.Fprint(cmd.OutOrStdout(), text)
			return nil
		},
	}
	cmd.Flags().StringVar(&shell, "shell", "", "bash, zsh, fish, powershell, cmd, tcsh (default from $SHELL)")
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
			name, err := g.clusterName(cmd, args[0])
			if err != nil {
				return err
			}
			c, err := g.converger(cmd)
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
