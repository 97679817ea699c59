package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/shoal-dev/shoal/internal/certs"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/machine"
)

// The types below carry docker-machine's field names so that the templates
// its users wrote (inspect --format '{{.Driver.IPAddress}}', ls --format
// '{{.DriverName}}') keep working; `machine import` reads a docker-machine
// store with the same types.

// dmEngineOptions is HostOptions.EngineOptions.
type dmEngineOptions struct {
	ArbitraryFlags   []string
	DNS              []string `json:"Dns"`
	GraphDir         string
	Env              []string
	Ipv6             bool
	InsecureRegistry []string
	Labels           []string
	LogLevel         string
	StorageDriver    string
	SelinuxEnabled   bool
	TLSVerify        bool `json:"TlsVerify"`
	RegistryMirror   []string
	InstallURL       string
}

// dmSwarmOptions is HostOptions.SwarmOptions (shoal's swarm is Swarm mode,
// not the classic swarm these fields described; the flags that still mean
// something are filled).
type dmSwarmOptions struct {
	IsSwarm        bool
	Address        string
	Discovery      string
	Agent          bool
	Master         bool
	Host           string
	Image          string
	ArbitraryFlags []string
	Env            []string
}

// dmAuthOptions is HostOptions.AuthOptions.
type dmAuthOptions struct {
	CertDir              string
	CaCertPath           string
	CaPrivateKeyPath     string
	CaCertRemotePath     string
	ServerCertPath       string
	ServerKeyPath        string
	ClientKeyPath        string
	ServerCertRemotePath string
	ServerKeyRemotePath  string
	ClientCertPath       string
	ServerCertSANs       []string
	StorePath            string
}

// dmHostOptions is Host.HostOptions.
type dmHostOptions struct {
	Driver        string
	Memory        int
	Disk          int
	EngineOptions *dmEngineOptions
	SwarmOptions  *dmSwarmOptions
	AuthOptions   *dmAuthOptions
}

// dmDriver is the part of Host.Driver every docker-machine driver has.
type dmDriver struct {
	IPAddress   string
	MachineName string
	SSHUser     string
	SSHPort     int
	SSHKeyPath  string
	StorePath   string
	SwarmMaster bool
}

// dmHost is a machine as inspect --format sees it: docker-machine's fields
// first, and shoal's own config (.Address, .SSH.User, .Engine) still there.
type dmHost struct {
	*store.Machine `json:"-"`
	ConfigVersion  int
	Driver         dmDriver
	DriverName     string
	HostOptions    *dmHostOptions
	Name           string
}

// newDMHost describes a shoal machine with docker-machine's field names.
func newDMHost(st *store.Store, m *store.Machine) *dmHost {
	dir := st.MachineDir(m.Name)
	e := m.Engine
	eo := &dmEngineOptions{
		Env: e.Env, InsecureRegistry: e.InsecureRegistries, Labels: e.Labels, RegistryMirror: e.RegistryMirrors,
		StorageDriver: e.StorageDriver, TLSVerify: e.TLS, ArbitraryFlags: e.Opts,
	}
	so := &dmSwarmOptions{}
	if m.Swarm != nil {
		so.IsSwarm, so.Master, so.Agent = true, m.Swarm.Master, !m.Swarm.Master
		so.Image = m.Swarm.RegistryImage
		if !m.Swarm.Master {
			so.Discovery = m.Swarm.Join
		}
	}
	certsDir := st.CertsDir()
	ao := &dmAuthOptions{
		CertDir:              certsDir,
		CaCertPath:           filepath.Join(certsDir, certs.CAFile),
		CaPrivateKeyPath:     filepath.Join(certsDir, certs.CAKeyFile),
		ClientCertPath:       filepath.Join(certsDir, certs.ClientFile),
		ClientKeyPath:        filepath.Join(certsDir, certs.ClientKeyFile),
		ServerCertPath:       filepath.Join(dir, store.ServerCertFile),
		ServerKeyPath:        filepath.Join(dir, store.ServerKeyFile),
		CaCertRemotePath:     "/etc/docker/ca.pem",
		ServerCertRemotePath: "/etc/docker/server.pem",
		ServerKeyRemotePath:  "/etc/docker/server-key.pem",
		ServerCertSANs:       e.TLSSANs,
		StorePath:            dir,
	}
	return &dmHost{
		Machine:       m,
		ConfigVersion: 3,
		Driver: dmDriver{
			IPAddress: m.Address, MachineName: m.Name, SSHUser: m.SSH.User, SSHPort: m.SSH.Port,
			SSHKeyPath: m.SSH.KeyPath, StorePath: st.Root, SwarmMaster: m.Swarm != nil && m.Swarm.Master,
		},
		DriverName:  m.Driver,
		HostOptions: &dmHostOptions{Driver: m.Driver, EngineOptions: eo, SwarmOptions: so, AuthOptions: ao},
		Name:        m.Name,
	}
}

// templateFuncs are docker-machine's template functions.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"prettyjson": func(v any) (string, error) {
		b, err := json.MarshalIndent(v, "", "    ")
		return string(b), err
	},
	"join":  strings.Join,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
}

// parseTemplate parses a --format template with docker-machine's functions.
func parseTemplate(flag, text string) (*template.Template, error) {
	t, err := template.New(flag).Funcs(templateFuncs).Parse(text)
	if err != nil {
		return nil, usageErr("--%s: %v", flag, err)
	}
	return t, nil
}

// lsItem is a row of `machine ls` as docker-machine's --format sees it.
type lsItem struct {
	Name          string
	Active        string // "*" or "-", as in the ACTIVE column
	ActiveHost    bool
	ActiveSwarm   bool
	DriverName    string
	State         string
	URL           string
	SwarmOptions  *dmSwarmOptions
	Swarm         string
	EngineOptions *dmEngineOptions
	Error         string
	DockerVersion string
	ResponseTime  time.Duration
	Cluster       string
}

// lsHeaders are the column titles of `ls --format 'table ...'`.
var lsHeaders = map[string]string{
	"Name": "NAME", "Active": "ACTIVE", "ActiveHost": "ACTIVE_HOST", "ActiveSwarm": "ACTIVE_SWARM",
	"DriverName": "DRIVER", "State": "STATE", "URL": "URL", "SwarmOptions": "SWARM_OPTIONS",
	"Swarm": "SWARM", "EngineOptions": "ENGINE_OPTIONS", "Error": "ERRORS", "DockerVersion": "DOCKER",
	"ResponseTime": "RESPONSE", "Cluster": "CLUSTER",
}

// lsDefaultFormat is the table `machine ls` prints.
const lsDefaultFormat = "table {{.Name}}\t{{.Active}}\t{{.DriverName}}\t{{.State}}\t{{.URL}}\t{{.Swarm}}\t{{.DockerVersion}}\t{{.Error}}"

// parseLsFormat reads --format: a "table " prefix prints a header row and
// aligns the columns.
func parseLsFormat(format string) (*template.Template, bool, error) {
	table := false
	if rest, ok := strings.CutPrefix(format, "table"); ok {
		table, format = true, strings.TrimLeft(rest, " ")
	}
	// As in docker-machine, \t typed in a shell's single quotes is a tab.
	format = strings.ReplaceAll(format, `\t`, "\t")
	format = strings.ReplaceAll(format, `\n`, "\n")
	t, err := parseTemplate("format", format)
	return t, table, err
}

// renderLs prints items with t; a table gets its header first.
func renderLs(t *template.Template, table bool, items []lsItem) (string, error) {
	var b bytes.Buffer
	if table {
		if err := t.Execute(&b, lsHeaders); err != nil {
			return "", fmt.Errorf("--format: %w", err)
		}
		b.WriteByte('\n')
	}
	for _, it := range items {
		if err := t.Execute(&b, it); err != nil {
			return "", fmt.Errorf("--format: %w", err)
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// activeRow says whether a row is the active machine: the one DOCKER_HOST
// points at (docker-machine's rule), else the one DOCKER_MACHINE_NAME names.
func activeRow(in machine.Info, dockerHost, machineName string) bool {
	if dockerHost != "" {
		return in.URL != "" && in.URL == dockerHost && in.State == "Running"
	}
	return machineName != "" && in.Name == machineName
}
