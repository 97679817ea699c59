package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
	"unicode"

	"github.com/shoal-dev/shoal/internal/certs"
	"github.com/shoal-dev/shoal/internal/store"
	"github.com/shoal-dev/shoal/internal/ui"
	"github.com/shoal-dev/shoal/machine"
	"github.com/shoal-dev/shoal/machine/dmimport"
)

// The types below carry docker-machine's field names so that the templates
// its users wrote (inspect --format '{{.Driver.IPAddress}}', ls --format
// '{{.DriverName}}') keep working; `machine import` reads a docker-machine
// store with the same types, dmimport's.
type (
	dmEngineOptions = dmimport.EngineOptions
	dmSwarmOptions  = dmimport.SwarmOptions
	dmAuthOptions   = dmimport.AuthOptions
	dmHostOptions   = dmimport.HostOptions
	dmDriver        = dmimport.Driver
)

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
	so := newDMSwarmOptions(m.Swarm)
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

// newDMSwarmOptions are docker-machine's swarm options of a machine in
// swarm s (none when nil): a master, else an agent that joins.
func newDMSwarmOptions(s *store.Swarm) *dmSwarmOptions {
	so := &dmSwarmOptions{}
	if s == nil {
		return so
	}
	so.IsSwarm, so.Master, so.Agent = true, s.Master, !s.Master
	so.Image = s.RegistryImage
	if !s.Master {
		so.Discovery = s.Join
	}
	return so
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
	Certs         string
}

// lsHeaders are the column titles of `ls --format 'table ...'` whose
// names differ from the field's (the ls columns'); any other field's title
// is its name in upper snake case (StorageDriver: STORAGE_DRIVER).
var lsHeaders = map[string]string{
	"DriverName": "DRIVER", "Error": "ERRORS", "DockerVersion": "DOCKER", "ResponseTime": "RESPONSE",
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
		b.WriteString(lsHeader(t.Tree.Root))
		b.WriteByte('\n')
	}
	var row bytes.Buffer
	for _, it := range items {
		row.Reset()
		if err := t.Execute(&row, it); err != nil {
			return "", fmt.Errorf("--format: %w", err)
		}
		// The row holds a host's text (.Error, .DockerVersion): no escapes.
		b.WriteString(ui.Clean(row.String()))
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// lsHeader is a table's header row, derived from the template's fields as
// docker's formatter does: the text between actions stays (so do the tabs
// that make the columns), an action becomes the titles of the fields it
// reads, and a conditional or loop becomes the titles of the fields in its
// body or, when the body reads none ({{if .ActiveHost}}*{{end}}), of those
// it tests. It is not executed, so neither a condition nor a nil nested
// value changes the header.
func lsHeader(list *parse.ListNode) string {
	var b strings.Builder
	if list == nil {
		return ""
	}
	for _, n := range list.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			b.Write(n.Text)
		case *parse.ActionNode:
			b.WriteString(strings.Join(fieldTitles(n.Pipe), " "))
		case *parse.IfNode:
			b.WriteString(branchHeader(&n.BranchNode))
		case *parse.WithNode:
			b.WriteString(branchHeader(&n.BranchNode))
		case *parse.RangeNode:
			b.WriteString(branchHeader(&n.BranchNode))
		}
	}
	return b.String()
}

func branchHeader(n *parse.BranchNode) string {
	if len(fieldTitles(n.List)) > 0 {
		return lsHeader(n.List)
	}
	return strings.Join(fieldTitles(n.Pipe), " ")
}

// fieldTitles returns the titles of the fields n reads, in order, each
// once; a nested field (.EngineOptions.StorageDriver) is titled by its
// last name.
func fieldTitles(n parse.Node) []string {
	t := titleCollector{seen: map[string]bool{}}
	t.walk(n)
	return t.out
}

// titleCollector gathers fieldTitles's titles.
type titleCollector struct {
	out  []string
	seen map[string]bool
}

// add titles a field by its names (.A.B is [A B]).
func (t *titleCollector) add(idents []string) {
	if len(idents) == 0 {
		return
	}
	title := upperSnake(idents[len(idents)-1])
	if h, ok := lsHeaders[idents[0]]; ok && len(idents) == 1 {
		title = h
	}
	if !t.seen[title] {
		t.seen[title] = true
		t.out = append(t.out, title)
	}
}

func (t *titleCollector) walk(n parse.Node) {
	switch n := n.(type) {
	case *parse.FieldNode:
		t.add(n.Ident)
	case *parse.VariableNode:
		t.add(n.Ident[1:])
	case *parse.ChainNode:
		t.walk(n.Node)
		t.add(n.Field)
	default:
		for _, c := range childNodes(n) {
			t.walk(c)
		}
	}
}

// childNodes are the nodes within n that can read fields: a branch's
// pipeline and body (not its else), a pipeline's commands, a command's
// arguments.
func childNodes(n parse.Node) []parse.Node {
	switch n := n.(type) {
	case *parse.PipeNode:
		return pipeCommands(n)
	case *parse.CommandNode:
		return n.Args
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		return n.Nodes
	case *parse.ActionNode:
		return []parse.Node{n.Pipe}
	case *parse.IfNode:
		return []parse.Node{n.Pipe, n.List}
	case *parse.WithNode:
		return []parse.Node{n.Pipe, n.List}
	case *parse.RangeNode:
		return []parse.Node{n.Pipe, n.List}
	}
	return nil
}

func pipeCommands(n *parse.PipeNode) []parse.Node {
	if n == nil {
		return nil
	}
	out := make([]parse.Node, len(n.Cmds))
	for i, c := range n.Cmds {
		out[i] = c
	}
	return out
}

// upperSnake is a Go field name as a column title: DriverName DRIVER_NAME,
// IPAddress IP_ADDRESS, URL URL.
func upperSnake(name string) string {
	r := []rune(name)
	var b strings.Builder
	for i, c := range r {
		if i > 0 && unicode.IsUpper(c) && (unicode.IsLower(r[i-1]) || i+1 < len(r) && unicode.IsLower(r[i+1]) && unicode.IsUpper(r[i-1])) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(c))
	}
	return b.String()
}

// activeRow says whether a row is the active machine: the one DOCKER_HOST
// points at (docker-machine's rule), else the one DOCKER_MACHINE_NAME names.
func activeRow(in machine.Info, dockerHost, machineName string) bool {
	if dockerHost != "" {
		return in.URL != "" && in.URL == dockerHost && in.State == "Running"
	}
	return machineName != "" && in.Name == machineName
}
