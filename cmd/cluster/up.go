package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shoal-dev/shoal/bootstrap/dataplane"
	"github.com/shoal-dev/shoal/cluster"
	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/internal/shell"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/spf13/cobra"
)

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
			writePlan(out, plan, apply)
			return nil
		},
	}
}

// writePlan is the plan for a reader: each machine's actions, the machines
// that leave, the roll, the stacks, then what to type.
func writePlan(out io.Writer, plan *cluster.PlanResult, apply string) {
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
	for _, st := range plan.Stacks {
		writeStackPlan(out, st)
	}
	if plan.SSHKeyRotates {
		fmt.Fprintf(out, "cluster SSH key: made anew and replaced on every node that stays (a machine that held it leaves the cluster)\n")
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
		return
	}
	fmt.Fprintf(out, " Apply with: %s\n", apply)
}

func newUp(g *globals) *cobra.Command {
	var force, skipCheck bool
	var drainTimeout time.Duration
	var accept []string
	var co cluster.CheckOptions
	var so cluster.StackOptions
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
			c.Stacks = so
			if err := acceptNewHosts(c, spec, accept, commandLines(cmd, args[0], spec.SensitiveVars)("up")); err != nil {
				return err
			}
			defer c.Machines.Close() // the jump host connections
			ck := &upCheck{opts: co, skip: skipCheck}
			c.AfterUp = ck.afterUp(c, spec)
			res, err := c.Up(cmd.Context(), spec)
			return finishUp(cmd, g.output, c, spec, args[0], res, err, ck)
		},
	}
	cmd.Flags().BoolVar(&skipCheck, "skip-check", false, "do not run the data-plane check at the end of a run that changed the swarm")
	addCheckFlags(cmd, &co)
	addStackFlags(cmd, &so)
	cmd.Flags().BoolVar(&force, "force", false, "make nodes that belong to another swarm leave it and join this one (as swarm { force_rejoin = true })")
	cmd.Flags().DurationVar(&drainTimeout, "drain-timeout", cluster.DefaultDrainTimeout, "how long a leaving node may take to have its tasks run elsewhere")
	addAcceptFlag(cmd, &accept)
	return cmd
}

// upCheck is the data-plane check at the end of a run that changed the
// swarm: inside the run (its machines still locked); a no-op run does not
// pay for it.
type upCheck struct {
	opts cluster.CheckOptions
	skip bool
	rep  *dataplane.Report
	err  error
}

// afterUp is the converger's AfterUp hook that runs the check.
func (ck *upCheck) afterUp(c *cluster.Converger, spec *cluster.Spec) func(context.Context, *cluster.Result) {
	return func(ctx context.Context, res *cluster.Result) {
		if !res.Changed || ck.skip {
			return
		}
		if ck.opts.OverlayMTU == 0 {
			ck.opts.OverlayMTU = spec.OverlayMTU // the probe's network as the file's
		}
		ck.opts.ImageOptional = true // the swarm is made: a node without the probe's image is a warning
		var took time.Duration
		ck.rep, took, ck.err = checkAfterUp(ctx, c, spec.Name, ck.opts)
		res.Stages["check"] = took
		res.Elapsed += took
	}
}

// finishUp shows up's result (the summary with the check's verdict, also
// when a stack failed on the swarm it made) and says how the run ended.
func finishUp(cmd *cobra.Command, output string, c *cluster.Converger, spec *cluster.Spec, file string, res *cluster.Result, err error, ck *upCheck) error {
	var stacksErr *cluster.StacksError
	if err != nil && !errors.As(err, &stacksErr) {
		c.Machines.Progress.Close()
		return err
	}
	check := commandLines(cmd, file, spec.SensitiveVars)("check")
	if ck.err != nil {
		// The swarm is made: a check that could not run is said.
		defer fmt.Fprintf(cmd.ErrOrStderr(), "Warning: cluster %s is up, but its data-plane check could not run: %v (run '%s')\n", spec.Name, ck.err, check)
		ck.rep = nil
	}
	c.Machines.Progress.Close()
	if err := writeUp(cmd.OutOrStdout(), output, res, ck.rep); err != nil {
		return err
	}
	if stacksErr != nil {
		// The swarm is up (the summary says so); its apps are not.
		return fmt.Errorf("cluster %s: the swarm is up, but a stack failed: %w", spec.Name, stacksErr)
	}
	if ck.rep != nil && !ck.rep.OK {
		return &cli.ExitError{Code: 1, Err: fmt.Errorf("cluster %s: the swarm is made, but its data plane has a fault (see above): fix it, then run '%s'", spec.Name, check)}
	}
	return nil
}

// writeUp is up's result: one JSON document, or the summary with the
// data-plane check's verdict (rep, nil when none ran).
func writeUp(out io.Writer, mode string, res *cluster.Result, rep *dataplane.Report) error {
	if mode == ui.ModeJSON {
		return json.NewEncoder(out).Encode(map[string]any{"result": res, "check": rep})
	}
	summaryWith(out, res, func() {
		if rep != nil {
			fmt.Fprintln(out)
			writeCheck(out, rep, mode == ui.ModeAuto && ui.IsTerminal(out))
		}
	})
	return nil
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
		role := string(n.Role)
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
	for _, s := range []string{"create", "provision", "swarm", "check", "stacks"} {
		if d, ok := res.Stages[s]; ok || (s != "check" && s != "stacks") {
			stages = append(stages, fmt.Sprintf("%s %s", s, d.Round(100*time.Millisecond)))
		}
	}
	fmt.Fprintf(w, "Took %s (%s), %d SSH sessions.\n", res.Elapsed.Round(100*time.Millisecond), strings.Join(stages, ", "), res.Sessions)
	writeStacks(w, res)
	more()
	fmt.Fprintf(w, "\nNext:\n  eval \"$(%s env %s)\"\n  docker node ls\n", cli.MachineCommand(), res.Leader)
}
