// Package stack turns the compose files of a cluster file's stack block into
// what the stack asks of swarm (Load), decides what to change in a swarm to
// get there (Decide), and tells from a service's tasks whether it converged
// (Converged). It does no network I/O: the code that talks to the engines
// calls it.
//
// The compose files mean what they mean to `docker stack deploy`: they are
// read and converted by docker/cli's compose loader and convert packages,
// and everything is labelled as docker stack labels it, so `docker stack
// ls/ps/services/rm` work on what shoal made.
package stack

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/cli/cli/compose/convert"
	"github.com/docker/cli/cli/compose/loader"
	"github.com/docker/cli/cli/compose/schema"
	composetypes "github.com/docker/cli/cli/compose/types"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// Labels docker stack puts on what it makes.
const (
	LabelNamespace = convert.LabelNamespace // com.docker.stack.namespace
	LabelImage     = convert.LabelImage     // com.docker.stack.image
)

// Source is one stack block of the cluster file.
type Source struct {
	Name    string            // the stack's name (namespace)
	Compose []string          // absolute paths, merged in order like docker stack deploy -c a -c b
	Env     map[string]string // interpolation variables (beside the process environment given to Load)
}

// Build is a service whose image shoal builds (`build:` in the compose file).
type Build struct {
	Service    string // full service name (STACK_svc)
	Context    string // absolute directory
	Dockerfile string // as given, relative to Context ("Dockerfile" when not given)
	Image      string // the image reference as given (after interpolation)
	Args       map[string]*string
	Target     string
}

// Desired is what the stack asks of swarm, labelled as docker stack labels
// it (com.docker.stack.namespace, com.docker.stack.image).
type Desired struct {
	Name     string
	Networks map[string]client.NetworkCreateOptions // by full name (NAME_net); external networks are in External
	External []string                               // external networks the services need
	Secrets  []swarm.SecretSpec                     // NAME_<secret>_<12 hex of sha256 of content>, Data set
	Configs  []swarm.ConfigSpec                     // same naming
	// Services by full name (NAME_svc). Secret and config references name
	// the hashed objects; their IDs are empty (see ResolveIDs).
	Services map[string]swarm.ServiceSpec
	Builds   []Build  // services that have build:
	Warnings []string // compose options swarm ignores, as docker stack deploy warns
}

// Swarm's own rules (swarmkit controlapi): services and networks are DNS
// labels, secrets and configs a little wider. A stack name is checked with
// the service rule since every service name starts with it.
var (
	dnsComponent = regexp.MustCompile(`^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$`)
	objectName   = regexp.MustCompile(`^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$`)
)

// ValidName says whether name can be a stack's name: every service and
// network of the stack is NAME_x, which swarm wants as a DNS label (letters,
// digits, '-' and '_' inside, at most 63 characters).
func ValidName(name string) error {
	if !dnsComponent.MatchString(name) || len(name) > 61 {
		return fmt.Errorf("invalid stack name %q: use letters, digits, '-' and '_' (not first or last), at most 61 characters", name)
	}
	return nil
}

// Load reads the stack's compose files (and the files they name: secrets,
// configs, env_file) and converts them as docker stack deploy does.
// Variables are looked up in src.Env first, then in environ. Relative
// paths in every file are taken from the first file's directory, as
// docker stack deploy takes them. The docker/cli loader logs a few
// deprecation warnings through logrus (standard error).
func Load(src Source, environ func(string) (string, bool)) (*Desired, error) {
	if err := ValidName(src.Name); err != nil {
		return nil, err
	}
	if len(src.Compose) == 0 {
		return nil, fmt.Errorf("stack %s: no compose file", src.Name)
	}
	if environ == nil {
		environ = func(string) (string, bool) { return "", false }
	}
	cfg, warnings, err := loadCompose(src, environ)
	if err != nil {
		return nil, err
	}
	d, err := convertConfig(src, cfg)
	if err != nil {
		return nil, err
	}
	d.Warnings = warnings
	return d, nil
}

func loadCompose(src Source, environ func(string) (string, bool)) (*composetypes.Config, []string, error) {
	files := make([]composetypes.ConfigFile, 0, len(src.Compose))
	for _, p := range src.Compose {
		if !filepath.IsAbs(p) {
			return nil, nil, fmt.Errorf("stack %s: compose file %s: not an absolute path", src.Name, p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, fmt.Errorf("stack %s: %w", src.Name, err)
		}
		dict, err := parseYAML(data)
		if err != nil {
			return nil, nil, fmt.Errorf("stack %s: compose file %s: %w", src.Name, p, err)
		}
		files = append(files, composetypes.ConfigFile{Filename: p, Config: dict})
	}
	lookup := func(k string) (string, bool) {
		if v, ok := src.Env[k]; ok {
			return v, true
		}
		return environ(k)
	}
	// The loader takes the environment as a map; what it reads from it
	// besides interpolation is HOME (~ in bind mounts) and the values of
	// environment entries given without one, filled in below.
	env := map[string]string{}
	if h, ok := lookup("HOME"); ok {
		env["HOME"] = h
	}
	for k, v := range src.Env {
		env[k] = v
	}
	details := composetypes.ConfigDetails{
		WorkingDir:  filepath.Dir(src.Compose[0]),
		ConfigFiles: files,
		Environment: env,
		Version:     schema.Version(files[0].Config),
	}
	cfg, err := loadDetails(details, lookup)
	if err != nil {
		return nil, nil, fmt.Errorf("stack %s: %s: %w", src.Name, blame(details, lookup), describe(err))
	}
	fillEnvironment(cfg, lookup)
	return cfg, unsupported(files), nil
}

// parseYAML is loader.ParseYAML, which panics on some inputs (found by
// FuzzLoad, e.g. a mapping with a key of a type it does not expect).
func parseYAML(data []byte) (dict map[string]any, err error) {
	defer func() {
		if r := recover(); r != nil {
			dict, err = nil, fmt.Errorf("cannot parse the file: %v", r)
		}
	}()
	return loader.ParseYAML(data)
}

func loadDetails(details composetypes.ConfigDetails, lookup func(string) (string, bool)) (cfg *composetypes.Config, err error) {
	defer func() {
		if r := recover(); r != nil {
			cfg, err = nil, fmt.Errorf("cannot load the file: %v", r)
		}
	}()
	return loader.Load(details, func(o *loader.Options) { o.Interpolate.LookupValue = lookup })
}

// blame names the file a load error comes from: the loader does not say
// which of several files it was reading, so each is loaded alone.
func blame(details composetypes.ConfigDetails, lookup func(string) (string, bool)) string {
	if len(details.ConfigFiles) > 1 {
		for _, f := range details.ConfigFiles {
			one := details
			one.ConfigFiles = []composetypes.ConfigFile{f}
			one.Version = schema.Version(f.Config)
			if _, err := loadDetails(one, lookup); err != nil {
				return "compose file " + f.Filename
			}
		}
	}
	names := make([]string, 0, len(details.ConfigFiles))
	for _, f := range details.ConfigFiles {
		names = append(names, f.Filename)
	}
	return "compose file " + strings.Join(names, ", ")
}

func describe(err error) error {
	var fpe *loader.ForbiddenPropertiesError
	if errors.As(err, &fpe) {
		msgs := make([]string, 0, len(fpe.Properties))
		for name, why := range fpe.Properties {
			msgs = append(msgs, name+": "+why)
		}
		slices.Sort(msgs)
		return fmt.Errorf("unsupported options: %s", strings.Join(msgs, "; "))
	}
	return err
}

// fillEnvironment gives environment entries without a value (or with an
// empty one) the value of the variable of that name, as docker stack deploy
// does with its process environment.
func fillEnvironment(cfg *composetypes.Config, lookup func(string) (string, bool)) {
	for i := range cfg.Services {
		for k, v := range cfg.Services[i].Environment {
			if v != nil && *v != "" {
				continue
			}
			if val, ok := lookup(k); ok {
				cfg.Services[i].Environment[k] = &val
			}
		}
	}
}

// unsupported lists the options swarm ignores (docker stack deploy prints
// "Ignoring unsupported options"); build is not one of them here.
func unsupported(files []composetypes.ConfigFile) []string {
	dicts := make([]map[string]any, 0, len(files))
	for _, f := range files {
		dicts = append(dicts, f.Config)
	}
	var out []string
	for _, p := range loader.GetUnsupportedProperties(dicts...) {
		if p != "build" {
			out = append(out, "ignoring unsupported option "+p)
		}
	}
	for name, why := range loader.GetDeprecatedProperties(dicts...) {
		out = append(out, "ignoring deprecated option "+name+": "+why)
	}
	slices.Sort(out)
	return out
}

// contentName is a secret's or config's name in swarm: its content's hash
// makes a changed file a new object (swarm keeps them immutable).
func contentName(base string, data []byte) string {
	sum := sha256.Sum256(data)
	return base + "_" + hex.EncodeToString(sum[:])[:12]
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func validImage(svc composetypes.ServiceConfig) error {
	if svc.Image == "" {
		if svc.Build.Context != "" {
			return errors.New("build: needs image: (the reference the built image is pushed to, e.g. ${SHOAL_REGISTRY}/app)")
		}
		return errors.New("no image specified")
	}
	if _, err := reference.ParseAnyReference(svc.Image); err != nil {
		return fmt.Errorf("invalid image reference %q: %w", svc.Image, err)
	}
	return nil
}
