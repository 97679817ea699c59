package stack

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/docker/cli/cli/compose/convert"
	composetypes "github.com/docker/cli/cli/compose/types"
	"github.com/moby/moby/api/types/swarm"
)

// convertConfig is what docker stack deploy's deployCompose converts,
// without asking an engine: secret and config references carry names only.
func convertConfig(src Source, cfg *composetypes.Config) (*Desired, error) {
	ns := convert.NewNamespace(src.Name)
	d := &Desired{Name: src.Name, Services: map[string]swarm.ServiceSpec{}}
	slices.SortFunc(cfg.Services, func(a, b composetypes.ServiceConfig) int { return cmp.Compare(a.Name, b.Name) })
	for _, svc := range cfg.Services {
		if err := validImage(svc); err != nil {
			return nil, fmt.Errorf("stack %s: service %s: %w", src.Name, svc.Name, err)
		}
		if err := checkName("service", ns.Scope(svc.Name), dnsComponent, 63); err != nil {
			return nil, fmt.Errorf("stack %s: %w", src.Name, err)
		}
	}
	if err := convertNetworks(d, ns, cfg); err != nil {
		return nil, fmt.Errorf("stack %s: %w", src.Name, err)
	}
	secretNames, err := convertSecrets(d, ns, cfg.Secrets)
	if err != nil {
		return nil, fmt.Errorf("stack %s: %w", src.Name, err)
	}
	configNames, err := convertConfigs(d, ns, cfg.Configs)
	if err != nil {
		return nil, fmt.Errorf("stack %s: %w", src.Name, err)
	}
	workDir := filepath.Dir(src.Compose[0])
	for _, svc := range cfg.Services {
		spec, err := convertService(ns, svc, cfg, secretNames, configNames)
		if err != nil {
			return nil, fmt.Errorf("stack %s: service %s: %w", src.Name, svc.Name, err)
		}
		d.Services[spec.Name] = spec
		if svc.Build.Context != "" {
			d.Builds = append(d.Builds, toBuild(spec.Name, workDir, svc))
		}
	}
	return d, nil
}

func checkName(kind, name string, re interface{ MatchString(string) bool }, max int) error {
	if !re.MatchString(name) || len(name) > max {
		return fmt.Errorf("%s name %q is not valid in swarm (letters, digits, '-' and '_' inside, at most %d characters)", kind, name, max)
	}
	return nil
}

func toBuild(service, workDir string, svc composetypes.ServiceConfig) Build {
	b := Build{Service: service, Context: svc.Build.Context, Dockerfile: svc.Build.Dockerfile,
		Image: svc.Image, Args: svc.Build.Args, Target: svc.Build.Target}
	if !filepath.IsAbs(b.Context) {
		b.Context = filepath.Join(workDir, b.Context)
	}
	if b.Dockerfile == "" {
		b.Dockerfile = "Dockerfile"
	}
	return b
}

func convertNetworks(d *Desired, ns convert.Namespace, cfg *composetypes.Config) error {
	used := map[string]struct{}{}
	for _, svc := range cfg.Services {
		if len(svc.Networks) == 0 {
			used["default"] = struct{}{}
		}
		for n := range svc.Networks {
			used[n] = struct{}{}
		}
	}
	networks, external := convert.Networks(ns, cfg.Networks, used)
	for name, opts := range networks {
		if err := checkName("network", name, dnsComponent, 63); err != nil {
			return err
		}
		if opts.Driver == "" {
			opts.Driver = "overlay" // what docker stack deploy creates
		}
		networks[name] = opts
	}
	slices.Sort(external)
	d.Networks, d.External = networks, slices.Compact(external)
	return nil
}

// Swarm's limits on a secret's and a config's data (swarmkit api/validation).
const (
	maxSecretSize = 500 * 1024
	maxConfigSize = 1000 * 1024
)

// checkFile refuses what is not a regular file or larger than swarm takes,
// before it is read (a device or a fifo would never end).
func checkFile(path string, limit int64) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > limit {
		return fmt.Errorf("%s has %d bytes, swarm takes at most %d", path, fi.Size(), limit)
	}
	return nil
}

// convertSecrets converts the stack's secrets and returns the swarm name of
// each, by its key in the compose file.
func convertSecrets(d *Desired, ns convert.Namespace, secrets map[string]composetypes.SecretConfig) (map[string]string, error) {
	names := map[string]string{}
	for _, key := range sortedKeys(secrets) {
		s := secrets[key]
		if s.External.External {
			names[key] = s.Name
			continue
		}
		if s.Driver == "" {
			if err := checkFile(s.File, maxSecretSize); err != nil {
				return nil, fmt.Errorf("secret %s: %w", key, err)
			}
		}
		specs, err := convert.Secrets(ns, map[string]composetypes.SecretConfig{key: s})
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", key, err)
		}
		spec := specs[0]
		if s.Driver == "" {
			spec.Name = contentName(spec.Name, spec.Data)
		}
		if err := checkName("secret", spec.Name, objectName, 64); err != nil {
			return nil, err
		}
		names[key] = spec.Name
		d.Secrets = append(d.Secrets, spec)
	}
	slices.SortFunc(d.Secrets, func(a, b swarm.SecretSpec) int { return cmp.Compare(a.Name, b.Name) })
	return names, nil
}

func convertConfigs(d *Desired, ns convert.Namespace, configs map[string]composetypes.ConfigObjConfig) (map[string]string, error) {
	names := map[string]string{}
	for _, key := range sortedKeys(configs) {
		c := configs[key]
		if c.External.External {
			names[key] = c.Name
			continue
		}
		if err := checkFile(c.File, maxConfigSize); err != nil {
			return nil, fmt.Errorf("config %s: %w", key, err)
		}
		specs, err := convert.Configs(ns, map[string]composetypes.ConfigObjConfig{key: c})
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", key, err)
		}
		spec := specs[0]
		spec.Name = contentName(spec.Name, spec.Data)
		if err := checkName("config", spec.Name, objectName, 64); err != nil {
			return nil, err
		}
		names[key] = spec.Name
		d.Configs = append(d.Configs, spec)
	}
	slices.SortFunc(d.Configs, func(a, b swarm.ConfigSpec) int { return cmp.Compare(a.Name, b.Name) })
	return names, nil
}

func convertService(ns convert.Namespace, svc composetypes.ServiceConfig, cfg *composetypes.Config,
	secretNames, configNames map[string]string) (swarm.ServiceSpec, error) {
	if err := uniqueTargets(svc); err != nil {
		return swarm.ServiceSpec{}, err
	}
	var secrets []*swarm.SecretReference
	for _, s := range svc.Secrets {
		name, ok := secretNames[s.Source]
		if !ok {
			return swarm.ServiceSpec{}, fmt.Errorf("undefined secret %q", s.Source)
		}
		secrets = append(secrets, &swarm.SecretReference{SecretName: name,
			File: new(swarm.SecretReferenceFileTarget(fileTarget(composetypes.FileReferenceConfig(s))))})
	}
	slices.SortStableFunc(secrets, func(a, b *swarm.SecretReference) int { return cmp.Compare(a.SecretName, b.SecretName) })
	var configs []*swarm.ConfigReference
	for _, c := range svc.Configs {
		name, ok := configNames[c.Source]
		if !ok {
			return swarm.ServiceSpec{}, fmt.Errorf("undefined config %q", c.Source)
		}
		configs = append(configs, &swarm.ConfigReference{ConfigName: name,
			File: new(swarm.ConfigReferenceFileTarget(fileTarget(composetypes.FileReferenceConfig(c))))})
	}
	slices.SortStableFunc(configs, func(a, b *swarm.ConfigReference) int { return cmp.Compare(a.ConfigName, b.ConfigName) })
	return convert.Service(ns, svc, cfg.Networks, cfg.Volumes, secrets, configs)
}

// uniqueTargets refuses two secrets, or two configs, at one path in the
// container, as docker stack deploy does (swarm refuses them too).
func uniqueTargets(svc composetypes.ServiceConfig) error {
	seen := map[string]bool{}
	for _, s := range svc.Secrets {
		t := fileTarget(composetypes.FileReferenceConfig(s)).Name
		if seen[t] {
			return fmt.Errorf("secrets: two at target %s", t)
		}
		seen[t] = true
	}
	seen = map[string]bool{}
	for _, c := range svc.Configs {
		t := fileTarget(composetypes.FileReferenceConfig(c)).Name
		if seen[t] {
			return fmt.Errorf("configs: two at target %s", t)
		}
		seen[t] = true
	}
	return nil
}

// fileTarget is where a secret or config lands in the container, with
// docker stack's defaults (its name, root, 0444).
func fileTarget(ref composetypes.FileReferenceConfig) swarm.SecretReferenceFileTarget {
	t := swarm.SecretReferenceFileTarget{Name: ref.Target, UID: ref.UID, GID: ref.GID, Mode: 0o444}
	if t.Name == "" {
		t.Name = ref.Source
	}
	if t.UID == "" {
		t.UID = "0"
	}
	if t.GID == "" {
		t.GID = "0"
	}
	if ref.Mode != nil {
		t.Mode = os.FileMode(*ref.Mode)
	}
	return t
}

// ResolveIDs fills in the IDs of the secrets and configs spec refers to,
// which swarm needs in a service create or update; the maps give the IDs by
// swarm name (the objects made or found). A name without an ID is an error.
// The references are copied: the Desired spec came from stays as it was.
func ResolveIDs(spec *swarm.ServiceSpec, secretIDs, configIDs map[string]string) error {
	if spec.TaskTemplate.ContainerSpec == nil {
		return nil
	}
	cs := *spec.TaskTemplate.ContainerSpec
	cs.Secrets = make([]*swarm.SecretReference, 0, len(cs.Secrets))
	for _, s := range spec.TaskTemplate.ContainerSpec.Secrets {
		id, ok := secretIDs[s.SecretName]
		if !ok {
			return fmt.Errorf("service %s: secret %s not found", spec.Name, s.SecretName)
		}
		ref := *s
		ref.SecretID = id
		cs.Secrets = append(cs.Secrets, &ref)
	}
	cs.Configs = make([]*swarm.ConfigReference, 0, len(cs.Configs))
	for _, c := range spec.TaskTemplate.ContainerSpec.Configs {
		id, ok := configIDs[c.ConfigName]
		if !ok {
			return fmt.Errorf("service %s: config %s not found", spec.Name, c.ConfigName)
		}
		ref := *c
		ref.ConfigID = id
		cs.Configs = append(cs.Configs, &ref)
	}
	spec.TaskTemplate.ContainerSpec = &cs
	return nil
}
