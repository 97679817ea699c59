package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/shoal-dev/shoal/cluster"
	"github.com/shoal-dev/shoal/cluster/clusterfile"
	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/internal/shell"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/internal/validate"
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
	root.AddCommand(newValidate(g), newPlan(g), newUp(g), newDeploy(g), newUpgrade(g), newBackup(g), newRestore(g), newRotate(g), newUnlock(g), newDown(g), newStatus(g), newCheck(g), newLs(g), newEnv(g), &cobra.Command{
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

// clusterSpec takes FILE or NAME: a file is read for its cluster's name,
// and its spec returned (nil for a NAME): its ssh passwords serve the run.
func (g *globals) clusterSpec(cmd *cobra.Command, arg string) (string, *cluster.Spec, error) {
	if st, err := os.Stat(arg); err == nil && !st.IsDir() {
		spec, err := g.load(cmd, arg)
		if err != nil {
			return "", nil, err
		}
		return spec.Name, spec, nil
	}
	// A name becomes a folder of the store: nothing like ../x gets there.
	if err := validate.StoredName(arg); err != nil {
		return "", nil, cli.Invalid(fmt.Errorf("%q is neither a cluster file nor a cluster name: %w", arg, err))
	}
	return arg, nil, nil
}

// namedConverger takes FILE or NAME and returns the cluster's name, the
// file's spec (nil for a NAME) and a converger to act on it.
func (g *globals) namedConverger(cmd *cobra.Command, arg string) (string, *cluster.Spec, *cluster.Converger, error) {
	name, spec, err := g.clusterSpec(cmd, arg)
	if err != nil {
		return "", nil, nil, err
	}
	c, err := g.converger(cmd)
	if err != nil {
		return "", nil, nil, err
	}
	return name, spec, c, nil
}

// openCluster is namedConverger with the file's ssh passwords (if a file)
// serving the run.
func (g *globals) openCluster(cmd *cobra.Command, arg string) (string, *cluster.Converger, error) {
	name, spec, c, err := g.namedConverger(cmd, arg)
	if err != nil {
		return "", nil, err
	}
	if spec != nil {
		c.UseSecrets(spec)
	}
	return name, c, nil
}
