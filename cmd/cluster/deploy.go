package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/cluster"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/stack/deploy"
	"github.com/spf13/cobra"
)

func addStackFlags(cmd *cobra.Command, o *cluster.StackOptions) {
	cmd.Flags().BoolVar(&o.NoPrune, "no-prune", false, "keep services, networks, secrets and configs that left a stack's compose files, and stacks that left the cluster file")
	cmd.Flags().DurationVar(&o.DeployTimeout, "deploy-timeout", deploy.DefaultTimeout, "how long each stack's services may take to run what they were asked to")
}

func newDeploy(g *globals) *cobra.Command {
	var o cluster.StackOptions
	cmd := &cobra.Command{
		Use:   "deploy FILE",
		Short: "Deploy the file's stacks on the swarm 'cluster up' made, and wait for them (no host is touched)",
		Long: `deploy runs the stack part of 'cluster up' alone: each stack block's compose
files are built (services with build:, pushed to the cluster's registry),
deployed as 'docker stack deploy' would, with docker stack's labels, and waited
for until every service runs what it was asked to. A task that fails is
reported with its node, its error and the end of its log (exit status 1).`,
		Args:              oneArg,
		ValidArgsFunction: completeFile,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, c, err := g.loadWithConverger(cmd, args[0])
			if err != nil {
				return err
			}
			defer c.Machines.Close()
			c.Stacks = o
			res, err := c.Deploy(cmd.Context(), spec)
			c.Machines.Progress.Close()
			if err != nil && (res == nil || len(res.Stacks) == 0) {
				return err // no stack was tried: the error says why
			}
			out := cmd.OutOrStdout()
			if g.output == ui.ModeJSON {
				if werr := writeJSON(out, map[string]any{"result": res}); werr != nil {
					return werr
				}
				return err
			}
			fmt.Fprintln(out)
			writeStacks(out, res)
			fmt.Fprintf(out, "Took %s.\n", res.Elapsed.Round(100*time.Millisecond))
			return err
		},
	}
	cmd.Flags().StringVar(&o.Only, "stack", "", "deploy this stack alone")
	addStackFlags(cmd, &o)
	return cmd
}

// writeStacks is a line per stack of the run, and how to look at them.
func writeStacks(w io.Writer, res *cluster.Result) {
	if len(res.Stacks) == 0 {
		return
	}
	fmt.Fprintln(w, "Stacks:")
	for _, s := range res.Stacks {
		fmt.Fprintf(w, "  %s: %s (%s)\n", s.Stack, s.Summary(), s.Elapsed.Round(100*time.Millisecond))
	}
	fmt.Fprintf(w, "  see them with: docker stack services %s\n", res.Stacks[0].Stack)
}

// writeStackPlan is what up would do to one stack, a line per object.
func writeStackPlan(w io.Writer, r *deploy.Result) {
	if !r.Changed() {
		fmt.Fprintf(w, "stack %s: nothing to change\n", r.Stack)
		return
	}
	fmt.Fprintf(w, "stack %s:\n", r.Stack)
	line := func(sign, what string, names []string) {
		for _, n := range names {
			fmt.Fprintf(w, "  %s %s %s\n", sign, what, n)
		}
	}
	line("+", "build", r.WouldBuild)
	p := r.Plan
	line("+", "network", p.CreateNetworks)
	line("+", "secret", p.CreateSecrets)
	line("+", "config", p.CreateConfigs)
	line("+", "service", p.CreateServices)
	for _, u := range p.UpdateServices {
		fmt.Fprintf(w, "  ~ service %s (%s)\n", u.Name, strings.Join(u.Fields, ", "))
	}
	line("-", "service", p.RemoveServices)
	line("-", "secret", p.RemoveSecrets)
	line("-", "config", p.RemoveConfigs)
	line("-", "network", p.RemoveNetworks)
}
