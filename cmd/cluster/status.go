package main

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/shoal-dev/shoal/cluster"
	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/cmd/internal/shellenv"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/machine"
	"github.com/shoal-dev/shoal/stack/deploy"
	"github.com/spf13/cobra"
)

func newStatus(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "status FILE|NAME",
		Short:             "Per node: address, role, swarm state, Docker version, when its TLS certificates expire, reachable or not",
		Args:              oneArg,
		ValidArgsFunction: completeFileOrName(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, c, err := g.openCluster(cmd, args[0])
			if err != nil {
				return err
			}
			defer c.Machines.Close()
			nodes, stacks, err := c.Status(cmd.Context(), name)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if g.output == ui.ModeJSON {
				return writeJSON(out, map[string]any{"cluster": name, "nodes": nodes, "stacks": stacks})
			}
			tw := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "NODE\tADDRESS\tROLE\tSWARM\tDOCKER\tCERTS\tREACHABLE\tERROR")
			for _, n := range nodes {
				ui.TableRow(tw, n.Name, n.Address, string(n.Role), n.Swarm, n.DockerVersion, n.Certs, strconv.FormatBool(n.Reachable), n.Error)
			}
			if err := tw.Flush(); err != nil || len(stacks) == 0 {
				return err
			}
			return writeStackStatus(out, stacks)
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

// leaderURL is the store, the cluster's leader and its TLS engine URL.
func leaderURL(g *globals, name string) (*store.Store, string, string, error) {
	st, err := store.New(g.storagePath)
	if err != nil {
		return nil, "", "", err
	}
	s, err := cluster.LoadState(st, name)
	if err != nil {
		return nil, "", "", err
	}
	mach, err := st.Load(s.Leader)
	if err != nil {
		return nil, "", "", err
	}
	url := machine.URL(mach)
	if url == "" {
		return nil, "", "", fmt.Errorf("%s has no TLS engine URL (engine tls = false)", s.Leader)
	}
	return st, s.Leader, url, nil
}

func newEnv(g *globals) *cobra.Command {
	var shell string
	cmd := &cobra.Command{
		Use:               "env [--shell SHELL] NAME",
		Short:             "Print the commands that point the docker CLI at the cluster's leader",
		Args:              oneArg,
		ValidArgsFunction: completeName(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, leader, url, err := leaderURL(g, args[0])
			if err != nil {
				return err
			}
			if shell == "" {
				shell = shellenv.DetectShell()
			}
			text, err := shellenv.EnvScript(shell, []string{"1", url, st.CertsDir(), leader}, "cluster env "+args[0])
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

// writeStackStatus is a row per service of each stack: tasks running of
// desired, and why the current spec's tasks fail, if they do.
func writeStackStatus(w io.Writer, stacks []deploy.StackStatus) error {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "STACK\tSERVICE\tRUNNING\tLAST ERROR")
	for _, st := range stacks {
		if st.Error != "" {
			ui.TableRow(tw, st.Stack, "", "", st.Error)
		}
		for _, s := range st.Services {
			last := ""
			if f := s.Failed; f != nil {
				last = f.Err
				if f.Node != "" {
					last = f.Node + ": " + last
				}
			}
			ui.TableRow(tw, st.Stack, s.Service, fmt.Sprintf("%d/%d", s.Running, s.Desired), last)
		}
	}
	return tw.Flush()
}
