package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/shoal-dev/shoal/cmd/internal/cli"
	"github.com/shoal-dev/shoal/drivers"
	"github.com/shoal-dev/shoal/internal/shell"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/machine"
	"github.com/spf13/cobra"
)

type createFlags struct {
	reg        *drivers.Registry
	driver     string
	hostname   string
	dockerUser string
	engine     store.Engine
	swarm      swarmFlags
	access     accessFlags
}

func newCreate(g *globals) *cobra.Command {
	reg := g.drivers
	f := &createFlags{reg: reg}
	configs := map[string]any{}
	var compat *engineCompat // docker-machine's flags, bound below
	cmd := &cobra.Command{
		Use:   "create [-d DRIVER] [driver flags] [engine flags] [swarm flags] NAME",
		Short: "Create (or adopt) a host and provision it as a Docker node",
		Long: `Create makes the host with the chosen driver (or adopts it with -d ssh),
waits for SSH, and provisions it: hostname, /etc/hosts, the docker user in the
docker group, Docker installed, daemon.json merged (keys the host has are
kept), TLS on tcp 2376. Creating an existing machine again converges it and
changes nothing that is already right.

Drivers: ` + strings.Join(reg.Names(), ", ") + ` (and generic, an alias of ssh).`,
		Example: `  machine create -d docker node1
  machine create -d ssh --ssh-host 192.168.56.104 --ssh-user hadoop --ssh-key ~/.ssh/id_rsa edge
  machine create -d ssh --ssh-host 192.168.56.104 --ssh-user hadoop --ssh-password-file pw --sudo-password-file pw edge
  machine create -d ssh --ssh-host web1 --ssh-proxy-jump ops@bastion edge   # web1 may be a Host in ~/.ssh/config
  machine create -d docker --swarm-master --swarm-image-archive images.tar master
  machine create -d docker --swarm --swarm-join master worker1`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, secrets, err := f.options(cmd, args[0], configs, compat)
			if err != nil {
				return err
			}
			m, err := g.manager(cmd)
			if err != nil {
				return err
			}
			m.Secrets = secrets
			defer m.Close()
			if swarm := opts.Setup.Swarm; swarm != nil && swarm.Join != "" && !m.Store.Exists(swarm.Join) {
				return usageErr("--swarm-join %s: no such machine (see 'machine ls')", swarm.Join)
			}
			mach, err := m.Create(cmd.Context(), opts)
			m.Progress.Close()
			if err != nil {
				return err
			}
			return printCreated(cmd.OutOrStdout(), g.output, mach)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringVarP(&f.driver, "driver", "d", "docker", "driver: "+strings.Join(reg.Names(), ", "))
	fs.StringVar(&f.hostname, "hostname", "", "the host's hostname (default NAME)")
	fs.StringVar(&f.dockerUser, "docker-user", "", "user put in the docker group (default the SSH user)")
	fs.StringVar(&f.engine.Install, "engine-install", "auto", "how to get Docker: auto (keep what is there, else repo), repo (docker-ce), distro (docker.io), skip")
	fs.StringVar(&f.engine.Version, "engine-version", "", "Docker version to install (e.g. 24.0.9 or 24.0)")
	fs.StringVar(&f.engine.RepoURL, "engine-repo-url", "", "docker-ce repository or mirror (default https://download.docker.com)")
	fs.StringVar(&f.engine.OSMirror, "engine-os-mirror", "", "CentOS vault or a mirror of it for an end-of-life CentOS 7/8 host's base, updates and extras (e.g. https://vault.centos.org)")
	fs.BoolVar(&f.engine.ReplaceConflicting, "engine-replace-conflicting", false, "remove podman, buildah, runc or the distro's docker when they stop docker-ce from installing")
	fs.StringArrayVar(&f.engine.InsecureRegistries, "engine-insecure-registry", nil, "registry trusted without TLS, added to daemon.json (repeat)")
	fs.StringArrayVar(&f.engine.RegistryMirrors, "engine-registry-mirror", nil, "registry mirror URL, added to daemon.json (repeat)")
	fs.StringArrayVar(&f.engine.Labels, "engine-label", nil, "engine label k=v, added to daemon.json (repeat)")
	fs.BoolVar(&f.engine.TLS, "engine-tls", true, "dockerd listens on tcp 2376 with TLS verification (for 'machine env')")
	compat = bindEngineCompat(fs, &f.engine)
	f.swarm.bind(cmd)
	f.access.bind(fs, true)
	for _, spec := range reg.All() {
		cfg := spec.NewConfig()
		spec.BindFlags(fs, cfg)
		configs[spec.Name] = cfg
	}
	return cmd
}

// options reads the flags into what Create takes. Every value is checked
// before the store or a driver is touched, and every bad one is said at
// once (exit status 2).
func (f *createFlags) options(cmd *cobra.Command, name string, configs map[string]any, compat *engineCompat) (machine.CreateOptions, machine.Secrets, error) {
	var opts machine.CreateOptions
	spec, err := f.reg.Get(f.driver)
	if err != nil {
		return opts, machine.Secrets{}, cli.Invalid(err)
	}
	if err := store.ValidateName(name); err != nil {
		return opts, machine.Secrets{}, cli.Invalid(err)
	}
	swarm, err := f.swarm.toStore(cmd)
	if err != nil {
		return opts, machine.Secrets{}, cli.Invalid(err)
	}
	opts = machine.CreateOptions{
		Name: name, Driver: spec.Name, DriverConfig: configs[spec.Name],
		Setup: store.Setup{Hostname: f.hostname, DockerUser: f.dockerUser, Engine: f.engine, Swarm: swarm},
	}
	var derr, rerr error
	if spec.Resolve != nil {
		rerr = spec.Resolve(configs[spec.Name], func(n string) bool { return flagGiven(cmd, spec.Name, n) })
	}
	if spec.Validate != nil && rerr == nil {
		derr = spec.Validate(configs[spec.Name])
	}
	secrets, serr := f.access.secrets()
	if err := errors.Join(rerr, derr, opts.Validate(), validateEngineCompat(&f.engine, compat), serr); err != nil {
		return opts, secrets, cli.Invalid(err)
	}
	return opts, secrets, nil
}

// printCreated says the machine is ready and how to use it.
func printCreated(out io.Writer, output string, mach *machine.Machine) error {
	if output == ui.ModeJSON {
		return json.NewEncoder(out).Encode(map[string]any{"result": mach.Machine})
	}
	fmt.Fprintf(out, "\n%s is ready: Docker on %s (%s driver).\n", mach.Name, mach.Address, mach.Driver.Name())
	if mach.Engine.TLS {
		fmt.Fprintf(out, "To point your docker CLI at it:  eval \"$(%s env %s)\"\n", cli.MachineCommand(), shell.Word(mach.Name))
	}
	fmt.Fprintf(out, "To log in:  %s ssh %s\n", cli.MachineCommand(), shell.Word(mach.Name))
	return nil
}

// flagGiven tells whether the user gave the driver setting (HCL attribute
// name) on the command line, under any of its flag names.
func flagGiven(cmd *cobra.Command, driver, attr string) bool {
	names := map[string][]string{
		"user":       {driver + "-user", "generic-ssh-user"},
		"port":       {driver + "-port", "generic-ssh-port"},
		"key":        {driver + "-key", "generic-ssh-key"},
		"proxy_jump": {driver + "-proxy-jump"},
	}[attr]
	for _, n := range names {
		if f := cmd.Flags().Lookup(n); f != nil && f.Changed {
			return true
		}
	}
	return false
}
