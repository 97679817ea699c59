package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/internal/validate"
	"github.com/shoal-dev/shoal/machine"
	"github.com/shoal-dev/shoal/machine/dmimport"
	"github.com/spf13/cobra"
)

const importLong = `Bring the machines of a docker-machine store into shoal's (all, or the NAMEs).
generic machines become ssh machines with their address, user, port and key
(copied into shoal's store, as are the client certificates of their engine);
virtualbox machines become virtualbox machines that adopt the VM as it is
(boot2docker: ls, env, ssh, start, stop and rm work, provision does not).
Other drivers are listed with the reason they are not imported.

Each host's SSH key is read and shown; it is pinned once confirmed (on a
terminal, or with --yes). A login key that config.json names outside the
machine's folder is shown too, and copied only once confirmed; only regular
files are read, within bounds, and only SSH private keys are taken as keys. Nothing on the hosts changes: their engines keep
docker-machine's TLS set-up, so 'machine env' works at once, and 'machine
provision' puts them under shoal's provisioning without restarting dockerd
unless something must change. 'machine regenerate-certs' moves an engine to
shoal's certificates (dockerd restarts). The docker-machine store is only read.`

func newImport(g *globals) *cobra.Command {
	var dmRoot string
	var yes bool
	cmd := &cobra.Command{
		Use:   "import [--docker-machine-storage-path DIR] [-y] [NAME...]",
		Short: "Bring machines over from a docker-machine store",
		Long:  importLong,
		Example: `  machine import --yes
  machine import --docker-machine-storage-path ~/old/.docker/machine dev1`,
		ValidArgsFunction: func(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			return machineNames(dmRoot, args, toComplete), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, n := range args {
				if err := validate.Name(n); err != nil {
					return cli.Invalid(err)
				}
			}
			m, err := g.manager(cmd)
			if err != nil {
				return err
			}
			root, err := otherStore(dmRoot, m.Store.Root)
			if err != nil {
				return err
			}
			plans, err := dmimport.PlanStore(root, args, m.Store.Exists)
			if err != nil {
				return cli.Invalid(err)
			}
			dmimport.ScanHostKeys(cmd.Context(), plans)
			dmimport.PrintPlans(cmd.OutOrStdout(), plans)
			if err := confirmImport(cmd, plans, yes); err != nil {
				return err
			}
			return importAll(cmd.Context(), m, plans, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&dmRoot, "docker-machine-storage-path", dmimport.DefaultStore(), "docker-machine's store ($MACHINE_STORAGE_PATH, else ~/.docker/machine)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "pin the host keys shown without asking")
	return cmd
}

// otherStore is the docker-machine store's absolute path, refused when it
// is shoal's own.
func otherStore(dmRoot, shoalRoot string) (string, error) {
	root, err := filepath.Abs(dmRoot)
	if err != nil {
		return "", err
	}
	if root == shoalRoot {
		return "", usageErr("the docker-machine store and shoal's are the same folder (%s): give shoal another with --storage-path", root)
	}
	return root, nil
}

// confirmImport asks before anything is imported, unless --yes: the host
// keys shown are pinned, and keys outside their folders copied.
func confirmImport(cmd *cobra.Command, plans []dmimport.Plan, yes bool) error {
	n := dmimport.Importable(plans)
	if n == 0 {
		return errors.New("nothing to import")
	}
	if yes {
		return nil
	}
	if !cli.IsTerminal(cmd.InOrStdin()) {
		return usageErr("not a terminal to ask on: check the host keys (and SSH keys) above and pass --yes to import")
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "Import %d machine(s) and pin the host keys above%s? (y/n): ", n, dmimport.KeysQuestion(plans))
	var answer string
	fmt.Fscanln(cmd.InOrStdin(), &answer)
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return &cli.ExitError{Code: 1, Err: errors.New("nothing imported")}
	}
	return nil
}

// importAll imports each importable machine; one failing does not stop
// the others.
func importAll(ctx context.Context, m *machine.Manager, plans []dmimport.Plan, out io.Writer) error {
	var errs []error
	for _, p := range plans {
		if p.Driver == "" {
			continue
		}
		if err := dmimport.Import(ctx, m, p); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.Name, err))
			continue
		}
		fmt.Fprintf(out, "Imported %s\n", p.Name)
	}
	return errors.Join(errs...)
}
