package shell

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/template/parse"
)

// reviewed lists operands the scan cannot prove safe that a person checked:
// "file: operand" -> why it cannot carry a user's value unquoted.
var reviewed = map[string]string{
	// Hints printed for the user to type, not run by shoal; the machine
	// command is the binary's own path and names are validated.
	"cmd/cluster/up.go: cli.MachineCommand()":     "hint for the user's own shell",
	"cmd/cluster/up.go: res.Leader":               "hint; a validated machine name",
	"cmd/machine/create.go: cli.MachineCommand()": "hint for the user's own shell",
	"cmd/machine/tunnel.go: cli.MachineCommand()": "hint for the user's own shell",
	// The probe table: constant commands, the docker user quoted (each
	// entry is itself scanned as a command).
	"provision/facts.go: p.cmd": "the facts probe's own command table",
	// A batch's op: a command its caller built (and the scan checked) as
	// a whole, or, for a file, makeDir and installScript, which quote
	// every path, mode and owner themselves (files.go).
	"internal/sshrun/batch.go: body": "a whole command, or scripts that quote their own values",
	// Quotes the daemon's id and version it puts in the probe itself.
	"provision/facts.go: pingLine(known)": "a function that quotes its own values",
}

// shellLike tells whether a string literal is a piece of a shell command.
var shellLike = regexp.MustCompile(`&&|\|\||\$\(|2>|>/dev/null|\| (cut|tail|head|grep|sort|awk|sed|wc)\b|^ --[a-z-]+=?$|^\s*(cat|rm|mkdir|install|sed|printf|echo|getent|id|useradd|usermod|groupadd|systemctl|curl|wget|hostnamectl|hostname|cp|mv|chmod|chown|test|docker|sha256sum|firewall-cmd|ufw|apt-get|yum|dnf|rpm|sh|sudo|touch|awk|mktemp|grep|cd|tail|ln|tee|dpkg|yum-config-manager)\s`)

// quoteFuncs are the calls whose result is a quoted shell word.
var quoteFuncs = map[string]bool{"shell.Quote": true, "shell.Join": true, "shell.Word": true, "shell.Words": true, "ShellQuote": true, "sshrun.ShellQuote": true}

// TestNoUnquotedValueInShellCommands scans every non-test Go file of the
// module for strings built into shell commands (fmt.Sprintf formats and +
// chains whose literal parts look like shell) and fails on every operand
// that is not a literal, a constant, a quoted word (Quote, Join, Word), a
// number, or a local variable built only from those.
func TestNoUnquotedValueInShellCommands(t *testing.T) {
	root := moduleRoot(t)
	fset := token.NewFileSet()
	var files []*ast.File
	var names []string
	consts := constIndex{}
	module := modulePath(t, root)
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") || rel == "test" || strings.HasSuffix(rel, "/fakevbox") || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		consts.add(pkgPath(module, filepath.Dir(rel)), f)
		files = append(files, f)
		names = append(names, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 50 {
		t.Fatalf("scanned only %d files from %s", len(files), root)
	}
	var problems []string
	used := map[string]bool{}
	for i, f := range files {
		for _, p := range scanFile(fset, f, pkgPath(module, filepath.Dir(names[i])), consts) {
			key := names[i] + ": " + p.operand
			if _, ok := reviewed[key]; ok {
				used[key] = true
				continue
			}
			problems = append(problems, p.String())
		}
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Errorf("unquoted value in a shell command (use shell.Quote): %s", p)
	}
	for k := range reviewed {
		if !used[k] {
			t.Errorf("reviewed entry %q matches nothing: remove it", k)
		}
	}
}

type problem struct {
	pos              token.Position
	operand, command string
}

func (p problem) String() string {
	return p.pos.String() + ": " + p.operand + " in " + shorten(p.command)
}

func scanFile(fset *token.FileSet, f *ast.File, pkg string, consts constIndex) []problem {
	var out []problem
	env := &fileEnv{pkg: pkg, imports: fileImports(f), consts: consts}
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		s := &scan{fset: fset, fn: fn.Body, params: fn.Type, env: env, busy: map[string]bool{}}
		for _, e := range s.commands() {
			for _, op := range s.unsafeOperands(e) {
				out = append(out, problem{fset.Position(op.Pos()), s.src(op), s.src(e)})
			}
		}
		out = append(out, s.templateProblems()...)
	}
	return out
}

// constIndex holds each package's top-level constants: import path ->
// name -> the constant's text when it is a string literal (or a + chain
// of them), else "".
type constIndex map[string]map[string]string

func (c constIndex) add(pkg string, f *ast.File) {
	if c[pkg] == nil {
		c[pkg] = map[string]string{}
	}
	for _, decl := range f.Decls {
		g, ok := decl.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, n := range vs.Names {
				text := ""
				if i < len(vs.Values) {
					text, _ = literal(vs.Values[i])
				}
				c[pkg][n.Name] = text
			}
		}
	}
}

// fileEnv is what a file's identifiers can refer to outside its functions.
type fileEnv struct {
	pkg     string            // the file's own import path
	imports map[string]string // the name a file uses for a package -> its import path
	consts  constIndex
}

func fileImports(f *ast.File) map[string]string {
	out := map[string]string{}
	for _, im := range f.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		name := p[strings.LastIndex(p, "/")+1:]
		if im.Name != nil {
			name = im.Name.Name
		}
		if name != "_" && name != "." {
			out[name] = p
		}
	}
	return out
}

func pkgPath(module, dir string) string {
	if dir == "." {
		return module
	}
	return module + "/" + filepath.ToSlash(dir)
}

func modulePath(t *testing.T, root string) string {
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if m, ok := strings.CutPrefix(l, "module "); ok {
			return strings.TrimSpace(m)
		}
	}
	t.Fatal("go.mod names no module")
	return ""
}

// The scan itself finds what it must: the bugs it was written for, and
// leaves quoted and constant parts alone.
func TestScanFindsUnquotedValues(t *testing.T) {
	const src = `package x
const dir = "/etc/docker"
func bad(u, cluster, p string, cmds []string) {
	_ = fmt.Sprintf("h=$(getent passwd %s | cut -d: -f6); rm -f $h/x", u)
	_ = "rm -f /home/" + cluster + "/.ssh"
	_ = append(cmds, "ufw allow "+p)
	add := "firewall-cmd --permanent"
	add += " --add-port=" + p
	home := fmt.Sprintf("$(getent passwd %s)", u)
	_ = "cat " + home
}
func good(u string, n int) {
	q := shell.Quote(u)
	_ = fmt.Sprintf("getent passwd %s && echo %d", q, n)
	_ = "rm -rf " + dir + " " + shell.Quote(u)
	home := fmt.Sprintf("$(getent passwd %s)", shell.Quote(u))
	_ = "cat " + home
	_ = fmt.Sprintf("user %s has no home; try again", u)
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range scanFile(fset, f, "x", constIndex{"x": {"dir": "/etc/docker"}}) {
		got = append(got, fmt.Sprintf("%d:%s", p.pos.Line, p.operand))
	}
	want := []string{"4:u", "5:cluster", "6:p", "8:p", "9:u", "10:home"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("scan found %v, want %v", got, want)
	}
}

// The scan sees the other ways a command gets built: a selector is a
// constant only when it names one of an imported package (mach.Name is a
// field, whatever constants are called Name), and a strings.Builder, a
// strings.Replacer or a text/template that builds a command adds values
// as Sprintf does.
func TestScanFindsBuiltCommands(t *testing.T) {
	const src = `package x
import (
	"strings"
	"text/template"
	vb "example.com/m/virtualbox"
	"example.com/m/shell"
)
const Name = "box"
const unitCmd = "systemctl restart {{.Unit}}"
func bad(mach *Machine, u, unit string, w io.Writer) {
	_ = "docker rm -f " + mach.Name
	Name := u
	_ = "rm -rf /srv/" + Name
	vb := mach
	_ = "rm -rf /srv/" + vb.Name
	var b strings.Builder
	b.WriteString("systemctl restart ")
	b.WriteString(unit)
	fmt.Fprintf(&b, " && echo %s", u)
	run(b.String())
	var c strings.Builder
	fmt.Fprintf(&c, "useradd %s", shell.Quote(u))
	c.WriteString(" -G " + u)
	_ = strings.NewReplacer("USER", u).Replace("id -nG USER")
	r := strings.NewReplacer("UNIT", unit, "X", "y")
	_ = r.Replace(unitCmd)
	t := template.Must(template.New("c").Parse(unitCmd))
	t2, _ := template.New("c").Funcs(template.FuncMap{"q": shell.Quote}).Parse("id -nG {{.User | q}} && getent passwd {{.User}}")
}
func good(mach *Machine, u, unit string) {
	_ = "VBoxManage showvminfo " + vb.Name
	_ = "rm -rf /srv/" + Name
	var b strings.Builder
	b.WriteString("systemctl restart ")
	b.WriteString(shell.Quote(unit))
	fmt.Fprintf(&b, " && echo %d", len(u))
	var msg strings.Builder
	msg.WriteString(u)
	msg.WriteString(" is not a user")
	_ = strings.NewReplacer("USER", shell.Quote(u)).Replace("id -nG USER")
	_ = strings.NewReplacer("<", "&lt;", "x", u).Replace(u)
	q := template.FuncMap{"q": shell.Quote}
	t, _ := template.New("c").Funcs(q).Parse("id -nG {{.User | q}} && getent passwd {{q .User}}")
	_ = template.Must(template.New("m").Parse("hello {{.User}}"))
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := constIndex{"x": {"Name": "box", "unitCmd": "systemctl restart {{.Unit}}"}, "example.com/m/virtualbox": {"Name": "virtualbox"}}
	var got []string
	for _, p := range scanFile(fset, f, "x", consts) {
		got = append(got, fmt.Sprintf("%d:%s", p.pos.Line, p.operand))
	}
	want := []string{"11:mach.Name", "13:Name", "15:vb.Name", "18:unit", "19:u", "23:u", "24:u", "25:unit", "27:{{.Unit}}", "28:{{.User}}"}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("scan found %v, want %v", got, want)
	}
}

func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}

func shorten(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

type scan struct {
	fset   *token.FileSet
	fn     *ast.BlockStmt
	params *ast.FuncType
	env    *fileEnv
	busy   map[string]bool // variables and builders being resolved (cycles count as safe)
}

func (s *scan) src(e ast.Node) string {
	var b strings.Builder
	_ = printer.Fprint(&b, s.fset, e)
	return b.String()
}

// commands returns the expressions of the function that build a shell
// command: Sprintf with a shell-like format, + chains with a shell-like
// literal part.
func (s *scan) commands() []ast.Expr {
	var out []ast.Expr
	seen := map[ast.Expr]bool{}
	for key, ws := range s.builders() {
		if !s.isBuffer(key) || !s.shellBuilder(ws) {
			continue
		}
		for _, w := range ws {
			seen[w] = true
			out = append(out, w)
		}
	}
	inner := map[ast.Node]bool{}
	ast.Inspect(s.fn, func(n ast.Node) bool {
		switch e := n.(type) {
		case *ast.CallExpr:
			if seen[e] {
				return true
			}
			if callName(e) == "strings.NewReplacer" && s.replacesShell(e) {
				out = append(out, e)
				return true
			}
			if name := callName(e); (name == "fmt.Sprintf" || name == "fmt.Fprintf") && len(e.Args) > 0 {
				fi := 0
				if name == "fmt.Fprintf" {
					fi = 1
				}
				if format, ok := literal(e.Args[fi]); ok && shellLike.MatchString(format) {
					out = append(out, e)
				}
			}
		case *ast.BinaryExpr:
			if e.Op != token.ADD || inner[e] {
				return true
			}
			ops := flatten(e, inner)
			for _, op := range ops {
				if lit, ok := op.(*ast.BasicLit); ok && lit.Kind == token.STRING && shellLike.MatchString(unquote(lit)) {
					out = append(out, e)
					break
				}
			}
		}
		return true
	})
	return out
}

func flatten(e ast.Expr, inner map[ast.Node]bool) []ast.Expr {
	switch x := e.(type) {
	case *ast.BinaryExpr:
		if x.Op == token.ADD {
			inner[x] = true
			return append(flatten(x.X, inner), flatten(x.Y, inner)...)
		}
	case *ast.ParenExpr:
		return flatten(x.X, inner)
	}
	return []ast.Expr{e}
}

// literal returns the text of a string literal or a + chain of them.
func literal(e ast.Expr) (string, bool) {
	var b strings.Builder
	for _, op := range flatten(e, map[ast.Node]bool{}) {
		lit, ok := op.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return "", false
		}
		b.WriteString(unquote(lit))
	}
	return b.String(), true
}

func unquote(lit *ast.BasicLit) string {
	if v, err := strconv.Unquote(lit.Value); err == nil {
		return v
	}
	return lit.Value
}

func callName(c *ast.CallExpr) string {
	switch f := c.Fun.(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		if x, ok := f.X.(*ast.Ident); ok {
			return x.Name + "." + f.Sel.Name
		}
		return "?." + f.Sel.Name
	}
	return ""
}

var verbRE = regexp.MustCompile(`%(\[\d+\])?[-+# 0]*\d*(\.\d+)?[a-zA-Z%]`)

// unsafeOperands returns the parts of a command expression that are not
// provably safe.
func (s *scan) unsafeOperands(e ast.Expr) []ast.Expr {
	var out []ast.Expr
	if c, ok := e.(*ast.CallExpr); ok {
		if args, ok := s.writeOperands(c); ok {
			for _, a := range args {
				for _, op := range flatten(a, map[ast.Node]bool{}) {
					if !s.safe(op) {
						out = append(out, op)
					}
				}
			}
			return out
		}
	}
	switch x := e.(type) {
	case *ast.CallExpr: // fmt.Sprintf / Fprintf
		fi := 0
		if callName(x) == "fmt.Fprintf" {
			fi = 1
		}
		format, _ := literal(x.Args[fi])
		verbs := verbRE.FindAllString(format, -1)
		argi := 0
		numeric := map[int]bool{}
		for _, v := range verbs {
			if v == "%%" {
				continue
			}
			if m := regexp.MustCompile(`^%\[(\d+)\]`).FindStringSubmatch(v); m != nil {
				n, _ := strconv.Atoi(m[1])
				argi = n - 1
			}
			switch v[len(v)-1] {
			case 'd', 'o', 'x', 'X', 'b', 'c':
				if !numeric[argi] {
					numeric[argi] = true
				}
			default:
				numeric[argi] = false
			}
			argi++
		}
		for i, a := range x.Args[fi+1:] {
			if n, ok := numeric[i]; ok && n {
				continue
			}
			if !s.safe(a) {
				out = append(out, a)
			}
		}
	default:
		for _, op := range flatten(e, map[ast.Node]bool{}) {
			if !s.safe(op) {
				out = append(out, op)
			}
		}
	}
	return out
}

// safe tells whether e can only hold literal text, constants, quoted words
// and numbers.
func (s *scan) safe(e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.BasicLit:
		return true
	case *ast.ParenExpr:
		return s.safe(x.X)
	case *ast.BinaryExpr:
		return x.Op == token.ADD && s.safe(x.X) && s.safe(x.Y)
	case *ast.SelectorExpr:
		_, ok := s.importedConst(x)
		return ok
	case *ast.Ident:
		if !s.local(x.Name) {
			if _, ok := s.env.consts[s.env.pkg][x.Name]; ok {
				return true
			}
		}
		return s.safeVar(x.Name)
	case *ast.CompositeLit:
		for _, el := range x.Elts {
			if !s.safe(el) {
				return false
			}
		}
		return true
	case *ast.CallExpr:
		name := callName(x)
		if quoteFuncs[name] || s.isQuoteAlias(name) {
			return true
		}
		if sel, ok := x.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "String" && len(x.Args) == 0 {
			return s.safeBuilder(s.src(sel.X))
		}
		switch name {
		case "strconv.Itoa", "len":
			return true
		case "fmt.Sprintf":
			return len(s.unsafeOperands(x)) == 0 && len(x.Args) > 0 && s.safe(x.Args[0])
		case "fmt.Sprint", "append":
			for _, a := range x.Args {
				if !s.safe(a) {
					return false
				}
			}
			return true
		case "strings.Join":
			return len(x.Args) == 2 && s.safe(x.Args[0]) && s.safe(x.Args[1])
		}
	}
	return false
}

// isQuoteAlias tells whether name is a local variable holding a quote
// function (q := shell.Quote).
func (s *scan) isQuoteAlias(name string) bool {
	found := false
	ast.Inspect(s.fn, func(n ast.Node) bool {
		if a, ok := n.(*ast.AssignStmt); ok {
			for i, l := range a.Lhs {
				if id, ok := l.(*ast.Ident); ok && id.Name == name && i < len(a.Rhs) {
					if sel, ok := a.Rhs[i].(*ast.SelectorExpr); ok {
						if x, ok := sel.X.(*ast.Ident); ok && quoteFuncs[x.Name+"."+sel.Sel.Name] {
							found = true
						}
					} else if id2, ok := a.Rhs[i].(*ast.Ident); ok && quoteFuncs[id2.Name] {
						found = true
					}
				}
			}
		}
		return true
	})
	return found
}

// safeVar tells whether every value the function gives a local variable is
// safe. Parameters, range variables and results of other calls are not.
func (s *scan) safeVar(name string) bool {
	if s.busy[name] {
		return true
	}
	s.busy[name] = true
	defer delete(s.busy, name)
	assigned, ok := false, true
	ast.Inspect(s.fn, func(n ast.Node) bool {
		switch a := n.(type) {
		case *ast.AssignStmt:
			for i, l := range a.Lhs {
				id, isID := l.(*ast.Ident)
				if !isID || id.Name != name {
					continue
				}
				assigned = true
				if len(a.Rhs) != len(a.Lhs) || !s.safe(a.Rhs[i]) {
					ok = false
				}
			}
		case *ast.ValueSpec:
			for i, id := range a.Names {
				if id.Name != name {
					continue
				}
				assigned = true
				if i < len(a.Values) && !s.safe(a.Values[i]) {
					ok = false
				}
			}
		case *ast.RangeStmt:
			for _, v := range []ast.Expr{a.Key, a.Value} {
				if id, isID := v.(*ast.Ident); isID && id.Name == name {
					assigned, ok = true, false
				}
			}
		}
		return true
	})
	return assigned && ok
}

// importedConst tells whether x is pkg.Name for a package the file
// imports (not a local variable of that name) and a constant of it, and
// returns the constant's text.
func (s *scan) importedConst(x *ast.SelectorExpr) (string, bool) {
	id, ok := x.X.(*ast.Ident)
	if !ok || s.local(id.Name) {
		return "", false
	}
	path, ok := s.env.imports[id.Name]
	if !ok {
		return "", false
	}
	text, ok := s.env.consts[path][x.Sel.Name]
	return text, ok
}

// local tells whether the function declares name: a parameter, a result,
// a variable, a constant or a range variable, in it or in a closure.
func (s *scan) local(name string) bool {
	found := false
	fields := func(fl *ast.FieldList) {
		if fl == nil {
			return
		}
		for _, f := range fl.List {
			for _, n := range f.Names {
				found = found || n.Name == name
			}
		}
	}
	if s.params != nil {
		fields(s.params.Params)
		fields(s.params.Results)
	}
	ast.Inspect(s.fn, func(n ast.Node) bool {
		switch a := n.(type) {
		case *ast.AssignStmt:
			if a.Tok == token.DEFINE {
				for _, l := range a.Lhs {
					if id, ok := l.(*ast.Ident); ok && id.Name == name {
						found = true
					}
				}
			}
		case *ast.ValueSpec:
			for _, id := range a.Names {
				found = found || id.Name == name
			}
		case *ast.RangeStmt:
			for _, v := range []ast.Expr{a.Key, a.Value} {
				if id, ok := v.(*ast.Ident); ok && id.Name == name {
					found = true
				}
			}
		case *ast.FuncLit:
			fields(a.Type.Params)
			fields(a.Type.Results)
		}
		return !found
	})
	return found
}

// shellText tells whether e is text that looks like a shell command: a
// literal, or a constant of this package or an imported one.
func (s *scan) shellText(e ast.Expr) bool {
	text, ok := literal(e)
	switch x := e.(type) {
	case *ast.Ident:
		if !s.local(x.Name) {
			text, ok = s.env.consts[s.env.pkg][x.Name]
		}
	case *ast.SelectorExpr:
		text, ok = s.importedConst(x)
	}
	return ok && shellLike.MatchString(text)
}

// builders returns the writes into each strings.Builder, bytes.Buffer or
// other writer of the function, by the writer's expression: its
// WriteString, WriteByte, WriteRune and Write calls, and fmt.Fprint*,
// io.WriteString calls with it as the writer.
func (s *scan) builders() map[string][]*ast.CallExpr {
	out := map[string][]*ast.CallExpr{}
	ast.Inspect(s.fn, func(n ast.Node) bool {
		c, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		if w := s.writer(c); w != "" {
			out[w] = append(out[w], c)
		}
		return true
	})
	return out
}

// writer returns the writer a call writes into ("" when it writes into
// none): b for b.WriteString(x), fmt.Fprintf(&b, ...), io.WriteString(b, x).
func (s *scan) writer(c *ast.CallExpr) string {
	target := func(e ast.Expr) string {
		if u, ok := e.(*ast.UnaryExpr); ok && u.Op == token.AND {
			e = u.X
		}
		return s.src(e)
	}
	switch callName(c) {
	case "fmt.Fprintf", "fmt.Fprint", "fmt.Fprintln", "io.WriteString":
		if len(c.Args) > 1 {
			return target(c.Args[0])
		}
		return ""
	}
	if sel, ok := c.Fun.(*ast.SelectorExpr); ok && len(c.Args) == 1 {
		switch sel.Sel.Name {
		case "WriteString", "WriteByte", "WriteRune", "Write":
			return target(sel.X)
		}
	}
	return ""
}

// writeOperands returns what a write into a writer adds (for
// fmt.Fprintf, ok is false: its format decides, as for Sprintf).
func (s *scan) writeOperands(c *ast.CallExpr) ([]ast.Expr, bool) {
	if s.writer(c) == "" {
		return nil, false
	}
	switch callName(c) {
	case "fmt.Fprintf":
		return nil, false
	case "fmt.Fprint", "fmt.Fprintln", "io.WriteString":
		return c.Args[1:], true
	}
	if conv, ok := c.Args[0].(*ast.CallExpr); ok && len(conv.Args) == 1 {
		if t, ok := conv.Fun.(*ast.ArrayType); ok && s.src(t) == "[]byte" {
			return conv.Args, true // b.Write([]byte(x))
		}
	}
	return c.Args, true
}

// isBuffer tells whether the writer named key is a strings.Builder or
// bytes.Buffer the function makes (a command being built), not a stream
// it was given (where it prints hints for the user).
func (s *scan) isBuffer(key string) bool {
	buffer := func(e ast.Expr) bool {
		t := strings.TrimPrefix(s.src(e), "&")
		t = strings.TrimSuffix(strings.TrimPrefix(t, "new("), ")")
		t = strings.TrimSuffix(t, "{}")
		return t == "strings.Builder" || t == "bytes.Buffer"
	}
	found := false
	ast.Inspect(s.fn, func(n ast.Node) bool {
		switch a := n.(type) {
		case *ast.ValueSpec:
			for i, id := range a.Names {
				if id.Name == key && (a.Type != nil && buffer(a.Type) || i < len(a.Values) && buffer(a.Values[i])) {
					found = true
				}
			}
		case *ast.AssignStmt:
			for i, l := range a.Lhs {
				if s.src(l) == key && len(a.Rhs) == len(a.Lhs) && buffer(a.Rhs[i]) {
					found = true
				}
			}
		}
		return true
	})
	return found
}

// shellBuilder tells whether a writer's writes build a shell command: one
// of them writes shell-like text.
func (s *scan) shellBuilder(writes []*ast.CallExpr) bool {
	for _, w := range writes {
		if callName(w) == "fmt.Fprintf" {
			if f, ok := literal(w.Args[1]); ok && shellLike.MatchString(f) {
				return true
			}
			continue
		}
		args, _ := s.writeOperands(w)
		for _, a := range args {
			for _, op := range flatten(a, map[ast.Node]bool{}) {
				if s.shellText(op) {
					return true
				}
			}
		}
	}
	return false
}

// safeBuilder tells whether every write into the writer named key is
// safe, so that its String() is.
func (s *scan) safeBuilder(key string) bool {
	writes := s.builders()[key]
	if len(writes) == 0 {
		return false // not built here: a value from elsewhere
	}
	if s.busy["builder "+key] {
		return true
	}
	s.busy["builder "+key] = true
	defer delete(s.busy, "builder "+key)
	for _, w := range writes {
		if len(s.unsafeOperands(w)) > 0 {
			return false
		}
	}
	return true
}

// replacesShell tells whether a strings.NewReplacer's Replace is applied
// to shell-like text, directly or through the variable that holds it.
func (s *scan) replacesShell(nr *ast.CallExpr) bool {
	holders := map[string]bool{}
	ast.Inspect(s.fn, func(n ast.Node) bool {
		if a, ok := n.(*ast.AssignStmt); ok && len(a.Lhs) == len(a.Rhs) {
			for i, r := range a.Rhs {
				if r == nr {
					holders[s.src(a.Lhs[i])] = true
				}
			}
		}
		return true
	})
	found := false
	ast.Inspect(s.fn, func(n ast.Node) bool {
		c, ok := n.(*ast.CallExpr)
		if !ok || len(c.Args) != 1 {
			return true
		}
		if sel, ok := c.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Replace" && (sel.X == nr || holders[s.src(sel.X)]) && s.shellText(c.Args[0]) {
			found = true
		}
		return true
	})
	return found
}

// templateProblems returns the actions of text/templates parsed from
// shell-like text that do not end in a quoting function of the
// template's FuncMap ({{.User | q}} with "q": shell.Quote).
func (s *scan) templateProblems() []problem {
	quoting := map[string]bool{}
	ast.Inspect(s.fn, func(n ast.Node) bool {
		if cl, ok := n.(*ast.CompositeLit); ok && strings.HasSuffix(s.src(cl.Type), "FuncMap") {
			for _, el := range cl.Elts {
				kv, ok := el.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				key, _ := literal(kv.Key)
				if sel, ok := kv.Value.(*ast.SelectorExpr); ok {
					if x, ok := sel.X.(*ast.Ident); ok && quoteFuncs[x.Name+"."+sel.Sel.Name] {
						quoting[key] = true
					}
				}
			}
		}
		return true
	})
	var out []problem
	ast.Inspect(s.fn, func(n ast.Node) bool {
		c, ok := n.(*ast.CallExpr)
		if !ok || len(c.Args) != 1 {
			return true
		}
		sel, ok := c.Fun.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "Parse" || !s.shellText(c.Args[0]) {
			return true
		}
		text, ok := literal(c.Args[0])
		if !ok {
			text = s.constText(c.Args[0])
		}
		for _, a := range unquotedActions(text, quoting) {
			out = append(out, problem{s.fset.Position(c.Args[0].Pos()), a, s.src(c)})
		}
		return true
	})
	return out
}

func (s *scan) constText(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return s.env.consts[s.env.pkg][x.Name]
	case *ast.SelectorExpr:
		t, _ := s.importedConst(x)
		return t
	}
	return ""
}

// unquotedActions returns the actions of a template that print a value
// not piped through one of the quoting functions last.
func unquotedActions(text string, quoting map[string]bool) []string {
	tr := parse.New("cmd")
	tr.Mode = parse.SkipFuncCheck
	if _, err := tr.Parse(text, "", "", map[string]*parse.Tree{}); err != nil {
		return []string{"(unparsable template: " + err.Error() + ")"}
	}
	var out []string
	var walk func(parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c)
			}
		case *parse.ActionNode:
			if len(n.Pipe.Decl) > 0 {
				return // {{$x := ...}} prints nothing
			}
			last := n.Pipe.Cmds[len(n.Pipe.Cmds)-1]
			id, ok := last.Args[0].(*parse.IdentifierNode)
			if !ok || !quoting[id.Ident] {
				out = append(out, n.String())
			}
		case *parse.IfNode:
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.List)
			walk(n.ElseList)
		}
	}
	walk(tr.Root)
	return out
}
