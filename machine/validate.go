package machine

import (
	"errors"
	"fmt"

	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/validate"
	"github.com/shoal-dev/shoal/provision"
)

// Validate checks every value of opts that reaches the store or a host,
// except the driver's config (its Spec.Validate checks that). Create calls
// it before it saves or makes anything; the commands call it first so that
// bad input is exit status 2. Each error names the flag it came from.
func (o *CreateOptions) Validate() error {
	var errs []error
	add := func(flag string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", flag, err))
		}
	}
	add("machine name", validate.Name(o.Name))
	if o.Hostname != "" {
		add("--hostname", validate.Hostname(o.Hostname))
	}
	if o.DockerUser != "" {
		add("--docker-user", validate.DockerUser(o.DockerUser))
	}
	if o.Cluster != "" {
		add("cluster name", validate.Name(o.Cluster))
	}
	errs = append(errs, EngineErrors(o.Engine)...)
	if o.Swarm != nil {
		errs = append(errs, swarmErrors(o.Swarm)...)
	}
	return errors.Join(errs...)
}

// EngineErrors checks the Docker Engine settings, one error per bad value,
// named by its machine create flag.
func EngineErrors(e store.Engine) []error {
	var errs flagErrors
	errs.source(e)
	errs.daemon(e)
	// docker-machine's engine flags; their errors name the flag.
	if _, err := EngineOptions(e.Opts, e.StorageDriver); err != nil {
		errs = append(errs, err)
	}
	for _, err := range []error{provision.ValidateEnv(e.Env), ValidateSANs(e.TLSSANs)} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// flagErrors gathers EngineErrors's errors.
type flagErrors []error

// add adds err, if any, named by its flag.
func (errs *flagErrors) add(flag string, err error) {
	if err != nil {
		*errs = append(*errs, fmt.Errorf("%s: %w", flag, err))
	}
}

// source checks where the engine comes from: install mode, version,
// repository and OS mirror.
func (errs *flagErrors) source(e store.Engine) {
	_, err := validate.ParseInstallMode(e.Install)
	errs.add("--engine-install", err)
	errs.add("--engine-version", validate.EngineVersion(e.Version))
	if e.RepoURL != "" {
		errs.add("--engine-repo-url", validate.RepoURL(e.RepoURL))
	}
	if e.OSMirror != "" {
		errs.add("--engine-os-mirror", validate.RepoURL(e.OSMirror))
	}
}

// daemon checks dockerd's settings: registries, mirrors, labels, TLS port.
func (errs *flagErrors) daemon(e store.Engine) {
	for _, r := range e.InsecureRegistries {
		errs.add("--engine-insecure-registry", validate.InsecureRegistry(r))
	}
	for _, u := range e.RegistryMirrors {
		errs.add("--engine-registry-mirror", validate.URL(u))
	}
	for _, l := range e.Labels {
		_, _, err := validate.Label(l)
		errs.add("--engine-label", err)
	}
	if e.TLSPort != 0 {
		errs.add("--engine-tls-port", validate.Port(e.TLSPort))
	}
}

// swarmErrors checks a machine's place in a swarm.
func swarmErrors(s *store.Swarm) []error {
	var errs flagErrors
	if s.Join != "" {
		errs.add("--swarm-join", validate.Name(s.Join))
	}
	if s.RegistryNode != "" {
		errs.add("registry node", validate.Name(s.RegistryNode))
	}
	if s.AdvertiseAddr != "" {
		errs.add("--swarm-advertise-addr", validate.AdvertiseAddr(s.AdvertiseAddr))
	}
	for _, l := range s.Labels {
		_, _, err := validate.Label(l)
		errs.add("--swarm-label", err)
	}
	_, err := validate.ParseAvailability(s.Availability)
	errs.add("--swarm-availability", err)
	errs.registry(s)
	return errs
}

// registry checks the swarm registry's port, image and folder.
func (errs *flagErrors) registry(s *store.Swarm) {
	if s.RegistryPort != 0 {
		errs.add("--swarm-registry-port", validate.Port(s.RegistryPort))
	}
	if s.RegistryImage != "" {
		errs.add("--swarm-registry-image", validate.ImageRef(s.RegistryImage))
	}
	if s.RegistryPath != "" {
		errs.add("registry path", validate.RemotePath(s.RegistryPath))
	}
}
