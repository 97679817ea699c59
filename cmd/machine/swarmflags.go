package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/shoal-dev/shoal/bootstrap"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/validate"
	"github.com/spf13/cobra"
)

// swarmFlags are create's swarm flags.
type swarmFlags struct {
	master, swarm, manager, registry, force bool
	join, advertise, availability, image    string
	port                                    int
	labels, archives                        []string
}

func (s *swarmFlags) bind(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.BoolVar(&s.master, "swarm-master", false, "init a new swarm on this machine, with the registry service")
	fs.BoolVar(&s.swarm, "swarm", false, "put this machine in a swarm (with --swarm-join)")
	fs.StringVar(&s.join, "swarm-join", "", "join the swarm of machine MASTER (as a worker unless --swarm-manager)")
	fs.BoolVar(&s.manager, "swarm-manager", false, "join as a manager")
	fs.StringVar(&s.advertise, "swarm-advertise-addr", "", "address advertised to the swarm (default the machine's address)")
	fs.StringArrayVar(&s.labels, "swarm-label", nil, "node label k=v (repeat)")
	fs.StringVar(&s.availability, "swarm-availability", "", "node availability: active or drain")
	fs.BoolVar(&s.registry, "swarm-registry", true, "with --swarm-master: run the registry service on this node")
	fs.IntVar(&s.port, "swarm-registry-port", bootstrap.DefaultRegistryPort, "the registry's port, published in host mode")
	fs.StringVar(&s.image, "swarm-registry-image", bootstrap.DefaultRegistryImage, "the registry's image")
	fs.StringArrayVar(&s.archives, "swarm-image-archive", nil, "a 'docker save' tar loaded on the node first, for air-gapped hosts (repeat)")
	fs.BoolVar(&s.force, "swarm-force", false, "make a node that belongs to another swarm leave it")
}

func (s *swarmFlags) toStore(cmd *cobra.Command) (*store.Swarm, error) {
	if !s.master && !s.swarm && s.join == "" {
		return nil, noSwarmFlags(cmd)
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	archives, err := checkArchives(s.archives)
	if err != nil {
		return nil, err
	}
	return &store.Swarm{
		Master: s.master, Join: s.join, Manager: s.manager, AdvertiseAddr: s.advertise,
		Labels: s.labels, Availability: s.availability,
		Registry: s.master && s.registry, RegistryPort: s.port, RegistryImage: s.image,
		ImageArchives: archives, Force: s.force,
	}, nil
}

// noSwarmFlags refuses the swarm flags that mean nothing without a swarm
// to init or join.
func noSwarmFlags(cmd *cobra.Command) error {
	for _, f := range []string{"swarm-manager", "swarm-advertise-addr", "swarm-label", "swarm-availability", "swarm-image-archive", "swarm-force"} {
		if cmd.Flags().Changed(f) {
			return fmt.Errorf("--%s needs --swarm-master or --swarm --swarm-join MASTER", f)
		}
	}
	return nil
}

// check validates the flags of a machine that inits or joins a swarm.
func (s *swarmFlags) check() error {
	if s.master && (s.join != "" || s.manager) {
		return fmt.Errorf("--swarm-master starts a swarm: it does not go with --swarm-join or --swarm-manager")
	}
	if !s.master && s.join == "" {
		return fmt.Errorf("--swarm needs --swarm-join MASTER (the machine whose swarm to join), or use --swarm-master")
	}
	if _, err := validate.ParseAvailability(s.availability); err != nil {
		return fmt.Errorf("--swarm-availability: %w", err)
	}
	if err := checkLabels(s.labels); err != nil {
		return err
	}
	if err := validate.Port(s.port); err != nil {
		return fmt.Errorf("--swarm-registry-port: %w", err)
	}
	return nil
}

func checkLabels(labels []string) error {
	for _, l := range labels {
		if _, _, err := validate.Label(l); err != nil {
			return fmt.Errorf("--swarm-label: %w", err)
		}
	}
	return nil
}

// checkArchives returns the --swarm-image-archive files' absolute paths,
// each checked to be a 'docker save' tar.
func checkArchives(paths []string) ([]string, error) {
	var archives []string
	for _, a := range paths {
		abs, err := filepath.Abs(a)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("--swarm-image-archive: %w", err)
		}
		if _, err := bootstrap.ArchiveTags(abs); err != nil {
			return nil, fmt.Errorf("--swarm-image-archive: %w", err)
		}
		archives = append(archives, abs)
	}
	return archives, nil
}
