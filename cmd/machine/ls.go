package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/machine"
	"github.com/spf13/cobra"
)

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// timeoutValue is ls --timeout: seconds, as docker-machine takes it
// (--timeout 20), or a Go duration (20s, 1m).
type timeoutValue time.Duration

func (v *timeoutValue) String() string { return time.Duration(*v).String() }
func (v *timeoutValue) Type() string   { return "seconds|duration" }
func (v *timeoutValue) Set(s string) error {
	d, err := parseTimeout(s)
	if err != nil {
		return err
	}
	*v = timeoutValue(d)
	return nil
}

func parseTimeout(s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 {
			return 0, fmt.Errorf("%q: want a positive number of seconds or a duration like 20s", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want a positive number of seconds or a duration like 20s", s)
	}
	return d, nil
}

const lsLong = `List machines. Running machines are probed in parallel (SSH, docker version).
Filters, as docker-machine's: driver=NAME, state=Running|Stopped|...,
name=REGEXP, label=K=V (an engine label), swarm=MASTER, and cluster=NAME;
a key given twice matches either value, different keys must all match.
The active machine (*) is the one $DOCKER_HOST points at (else the one
$DOCKER_MACHINE_NAME names).
--format takes a Go template over docker-machine's fields: .Name .Active
.ActiveHost .ActiveSwarm .DriverName .State .URL .Swarm .SwarmOptions
.EngineOptions .DockerVersion .Error .ResponseTime, and shoal's .Cluster
and .Certs (when its TLS certificates expire); a "table " prefix prints a
header row and aligns the columns, e.g. 'table {{.Name}}\t{{.URL}}'; a title is
the ls column's (.DriverName: DRIVER), else the field's name in capitals
(.EngineOptions.StorageDriver: STORAGE_DRIVER; {{if .ActiveHost}}*{{end}}:
ACTIVE_HOST).`

func newLs(g *globals) *cobra.Command {
	var quiet bool
	var format string
	var filters []string
	timeout := timeoutValue(10 * time.Second)
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List machines: NAME ACTIVE DRIVER STATE URL SWARM DOCKER CERTS ERRORS",
		Long:    lsLong,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var tmpl *template.Template
			table := false
			if format != "" {
				t, tab, err := parseLsFormat(format)
				if err != nil {
					return err
				}
				tmpl, table = t, tab
			}
			filter, err := parseFilters(filters)
			if err != nil {
				return cli.Invalid(err)
			}
			m, err := g.manager(cmd)
			if err != nil {
				return err
			}
			needProbe := !quiet || len(filters) > 0
			infos, err := m.List(cmd.Context(), time.Duration(timeout), !needProbe)
			if err != nil {
				return err
			}
			rows := filterRows(m, infos, filter)
			out := cmd.OutOrStdout()
			switch {
			case quiet:
				printNames(out, rows)
				return nil
			case tmpl != nil:
				return printLsFormat(out, m, rows, tmpl, table)
			case g.output == "json":
				return writeJSON(out, nonNil(rows))
			}
			return printLsTable(out, rows)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print names only")
	cmd.Flags().StringVarP(&format, "format", "f", "", "Go template for each machine (docker-machine's fields; 'table ' prints a header)")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "filter k=v (driver, state, name, label, swarm, cluster); one key twice is OR, different keys AND")
	cmd.Flags().VarP(&timeout, "timeout", "t", "how long to probe each machine: seconds (20) or a duration (20s)")
	return cmd
}

func printNames(out io.Writer, rows []machine.Info) {
	for _, r := range rows {
		fmt.Fprintln(out, r.Name)
	}
}

// nonNil makes no rows an empty JSON list, not null.
func nonNil(rows []machine.Info) []machine.Info {
	if rows == nil {
		return []machine.Info{}
	}
	return rows
}

// filterRows marks the active machine and keeps the rows the filter
// passes (a machine's engine labels read only when a label is asked).
func filterRows(m *machine.Manager, infos []machine.Info, filter lsFilter) []machine.Info {
	dockerHost, active := os.Getenv("DOCKER_HOST"), os.Getenv("DOCKER_MACHINE_NAME")
	var rows []machine.Info
	for _, in := range infos {
		in.Active = activeRow(in, dockerHost, active)
		var labels []string
		if len(filter["label"]) > 0 {
			if mach, err := m.Store.Load(in.Name); err == nil {
				labels = mach.Engine.Labels
			}
		}
		if filter.matches(in, labels) {
			rows = append(rows, in)
		}
	}
	return rows
}

// printLsFormat prints the rows through ls --format's template; a table
// has its columns aligned.
func printLsFormat(out io.Writer, m *machine.Manager, rows []machine.Info, tmpl *template.Template, table bool) error {
	items := make([]lsItem, 0, len(rows))
	for _, r := range rows {
		var h *dmHost
		if mach, err := m.Store.Load(r.Name); err == nil {
			h = newDMHost(m.Store, mach)
		}
		it := newLsItem(r, h)
		items = append(items, it)
	}
	text, err := renderLs(tmpl, table, items)
	if err != nil {
		return cli.Invalid(err)
	}
	if !table {
		_, err = io.WriteString(out, text)
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
	io.WriteString(tw, text)
	return tw.Flush()
}

// printLsTable prints ls's own table.
func printLsTable(out io.Writer, rows []machine.Info) error {
	tw := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tACTIVE\tDRIVER\tSTATE\tURL\tSWARM\tDOCKER\tCERTS\tERRORS")
	for _, r := range rows {
		act := "-"
		if r.Active {
			act = "*"
		}
		ui.TableRow(tw, r.Name, act, r.DriverName, r.State, r.URL, r.Swarm, r.DockerVersion, r.Certs, r.Error)
	}
	return tw.Flush()
}

// lsFilter is ls --filter as docker-machine reads it: values of one key
// are alternatives (OR), different keys must all match (AND); name is a
// regular expression, label an engine label k=v.
type lsFilter map[string][]string

var filterKeys = map[string]bool{"driver": true, "state": true, "name": true, "swarm": true, "cluster": true, "label": true}

func parseFilters(in []string) (lsFilter, error) {
	f := lsFilter{}
	for _, s := range in {
		k, v, ok := strings.Cut(s, "=")
		k = strings.ToLower(k)
		if k == "drivername" {
			k = "driver"
		}
		if !ok {
			return nil, fmt.Errorf("--filter %q: want key=value", s)
		}
		if !filterKeys[k] {
			return nil, fmt.Errorf("--filter %q: unknown key (driver, state, name, swarm, cluster, label)", s)
		}
		if k == "name" {
			if _, err := regexp.Compile(v); err != nil {
				return nil, fmt.Errorf("--filter %q: %w", s, err)
			}
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

// matches tells whether a row passes the filter; labels are the
// machine's engine labels.
func (f lsFilter) matches(in machine.Info, labels []string) bool {
	for k, values := range f {
		if !slices.ContainsFunc(values, func(v string) bool { return filterHit(k, v, in, labels) }) {
			return false
		}
	}
	return true
}

// filterHit tells whether the row passes one value v of filter key k.
func filterHit(k, v string, in machine.Info, labels []string) bool {
	switch k {
	case "driver":
		return strings.EqualFold(in.DriverName, v)
	case "state":
		return strings.EqualFold(in.State, v)
	case "name":
		return regexp.MustCompile(v).MatchString(in.Name)
	case "swarm":
		return strings.EqualFold(strings.TrimSuffix(in.Swarm, " (master)"), v)
	case "cluster":
		return strings.EqualFold(in.Cluster, v)
	case "label":
		return slices.Contains(labels, v)
	}
	return false
}

// newLsItem is a row as --format sees it; h is nil when the machine's
// config cannot be read, and its options are then empty, not nil, so that
// {{.EngineOptions.StorageDriver}} prints nothing rather than failing.
func newLsItem(r machine.Info, h *dmHost) lsItem {
	it := lsItem{
		Name: r.Name, Active: "-", ActiveHost: r.Active, DriverName: r.DriverName, State: r.State,
		URL: r.URL, Swarm: r.Swarm, Error: r.Error, DockerVersion: r.DockerVersion, Cluster: r.Cluster,
		ResponseTime: r.ResponseTime, Certs: r.Certs,
		SwarmOptions: &dmSwarmOptions{}, EngineOptions: &dmEngineOptions{},
	}
	if r.Active {
		it.Active = "*"
	}
	if h != nil {
		it.SwarmOptions, it.EngineOptions = h.HostOptions.SwarmOptions, h.HostOptions.EngineOptions
	}
	return it
}
