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
)

// reviewed lists operands the scan cannot prove safe that a person checked:
// "file: operand" -> why it cannot carry a user's value unquoted.
var reviewed = map[string]string{
	// Hints printed for the user to type, not run by shoal; the machine
	// command is the binary's own path and names are validated.
	"cmd/cluster/root.go: cli.MachineCommand()":   "hint for the user's own shell",
	"cmd/cluster/root.go: res.Leader":             "hint; a validated machine name",
	"cmd/machine/create.go: cli.MachineCommand()": "hint for the user's own shell",
	// The probe table: constant commands, the docker user quoted (each
	// entry is itself scanned as a command).
	"provision/facts.go: p.cmd": "the facts probe's own command table",
	// A batch's op: a command its caller built (and the scan checked) as
	// a whole, or, for a file, makeDir and installScript, which quote
	// every path, mode and owner themselves (files.go).
	"internal/sshrun/batch.go: body": "a whole command, or scripts that quote their own values",
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
	consts := map[string]bool{}
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
		for _, decl := range f.Decls {
			if g, ok := decl.(*ast.GenDecl); ok && g.Tok == token.CONST {
				for _, s := range g.Specs {
					for _, n := range s.(*ast.ValueSpec).Names {
						consts[n.Name] = true
					}
				}
			}
		}
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
		for _, p := range scanFile(fset, f, consts) {
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

func scanFile(fset *token.FileSet, f *ast.File, consts map[string]bool) []problem {
	var out []problem
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		s := &scan{fset: fset, fn: fn.Body, consts: consts, busy: map[string]bool{}}
		for _, e := range s.commands() {
			for _, op := range s.unsafeOperands(e) {
				out = append(out, problem{fset.Position(op.Pos()), s.src(op), s.src(e)})
			}
		}
	}
	return out
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
	for _, p := range scanFile(fset, f, map[string]bool{"dir": true}) {
		got = append(got, fmt.Sprintf("%d:%s", p.pos.Line, p.operand))
	}
	want := []string{"4:u", "5:cluster", "6:p", "8:p", "9:u", "10:home"}
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
	consts map[string]bool
	busy   map[string]bool // variables being resolved (cycles count as safe)
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
	inner := map[ast.Node]bool{}
	ast.Inspect(s.fn, func(n ast.Node) bool {
		switch e := n.(type) {
		case *ast.CallExpr:
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
		return s.consts[x.Sel.Name]
	case *ast.Ident:
		if s.consts[x.Name] {
			return true
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
