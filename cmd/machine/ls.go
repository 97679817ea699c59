package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/shoal-dev/shoal/internal/cli"
	"github.com/shoal-dev/shoal/machine"
	"github.com/spf13/cobra"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newLs(g *globals) *cobra.Command {
	var quiet bool
	var format string
	var filters []string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List machines: NAME ACTIVE DRIVER STATE URL SWARM DOCKER CERTS ERRORS",
		Long: `List machines. Running machines are probed in parallel (SSH, docker version).
Filters: driver=NAME, state=Running|Stopped|..., name=NAME, swarm=MASTER, cluster=NAME.
--format takes a Go template over .Name .Active .DriverName .State .URL .Swarm
.DockerVersion .Certs .Error .Cluster, e.g. '{{.Name}} {{.URL}}'.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var tmpl *template.Template
			if format != "" {
				t, err := template.New("format").Parse(format)
				if err != nil {
					return usageErr("--format: %v", err)
				}
				tmpl = t
			}
			m, err := g.manager(cmd)
			if err != nil {
				return err
			}
			needProbe := !quiet || len(filters) > 0
			infos, err := m.List(cmd.Context(), timeout, !needProbe)
			if err != nil {
				return err
			}
			active := os.Getenv("DOCKER_MACHINE_NAME")
			var rows []machine.Info
			for _, in := range infos {
				in.Active = in.Name == active
				ok, err := matches(in, filters)
				if err != nil {
					return cli.Invalid(err)
				}
				if ok {
					rows = append(rows, in)
				}
			}
			out := cmd.OutOrStdout()
			switch {
			case quiet:
				for _, r := range rows {
					fmt.Fprintln(out, r.Name)
				}
			case tmpl != nil:
				for _, r := range rows {
					if err := tmpl.Execute(out, r); err != nil {
						return err
					}
					fmt.Fprintln(out)
				}
			case g.output == "json":
				if rows == nil {
					rows = []machine.Info{}
				}
				return writeJSON(out, rows)
			default:
				tw := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
				fmt.Fprintln(tw, "NAME\tACTIVE\tDRIVER\tSTATE\tURL\tSWARM\tDOCKER\tCERTS\tERRORS")
				for _, r := range rows {
					act := "-"
					if r.Active {
						act = "*"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, act, r.DriverName, r.State, r.URL, r.Swarm, r.DockerVersion, r.Certs, r.Error)
				}
				return tw.Flush()
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print names only")
	cmd.Flags().StringVarP(&format, "format", "f", "", "Go template for each machine")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "filter k=v (driver, state, name, swarm, cluster); repeat to AND")
	cmd.Flags().DurationVarP(&timeout, "timeout", "t", 10*time.Second, "how long to probe each machine")
	return cmd
}

func matches(in machine.Info, filters []string) (bool, error) {
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return false, fmt.Errorf("--filter %q: want key=value", f)
		}
		var have string
		switch strings.ToLower(k) {
		case "driver", "drivername":
			have = in.DriverName
		case "state":
			have = in.State
		case "name":
			have = in.Name
		case "swarm":
			have = strings.TrimSuffix(in.Swarm, " (master)")
		case "cluster":
			have = in.Cluster
		default:
			return false, fmt.Errorf("--filter %q: unknown key (driver, state, name, swarm, cluster)", f)
		}
		if !strings.EqualFold(have, v) {
			return false, nil
		}
	}
	return true, nil
}
