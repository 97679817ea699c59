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
	var errs []error
	add := func(flag string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", flag, err))
		}
	}
	_, err := validate.ParseInstallMode(e.Install)
	add("--engine-install", err)
	add("--engine-version", validate.EngineVersion(e.Version))
	if e.RepoURL != "" {
		add("--engine-repo-url", validate.RepoURL(e.RepoURL))
	}
	if e.OSMirror != "" {
		add("--engine-os-mirror", validate.RepoURL(e.OSMirror))
	}
	for _, r := range e.InsecureRegistries {
		add("--engine-insecure-registry", validate.InsecureRegistry(r))
	}
	for _, u := range e.RegistryMirrors {
		add("--engine-registry-mirror", validate.URL(u))
	}
	for _, l := range e.Labels {
		_, _, err := validate.Label(l)
		add("--engine-label", err)
	}
	if e.TLSPort != 0 {
		add("--engine-tls-port", validate.Port(e.TLSPort))
	}
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

// swarmErrors checks a machine's place in a swarm.
func swarmErrors(s *store.Swarm) []error {
	var errs []error
	add := func(flag string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", flag, err))
		}
	}
	if s.Join != "" {
		add("--swarm-join", validate.Name(s.Join))
	}
	if s.RegistryNode != "" {
		add("registry node", validate.Name(s.RegistryNode))
	}
	if s.AdvertiseAddr != "" {
		add("--swarm-advertise-addr", validate.AdvertiseAddr(s.AdvertiseAddr))
	}
	for _, l := range s.Labels {
		_, _, err := validate.Label(l)
		add("--swarm-label", err)
	}
	_, err := validate.ParseAvailability(s.Availability)
	add("--swarm-availability", err)
	if s.RegistryPort != 0 {
		add("--swarm-registry-port", validate.Port(s.RegistryPort))
	}
	if s.RegistryImage != "" {
		add("--swarm-registry-image", validate.ImageRef(s.RegistryImage))
	}
	if s.RegistryPath != "" {
		add("registry path", validate.RemotePath(s.RegistryPath))
	}
	return errs
}
