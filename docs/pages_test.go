package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// maxReadmeLines bounds README.md: it is for users, one screen and a
// little more; everything else lives in docs/.
const maxReadmeLines = 250

// page is one Markdown file of the repository's documentation: its path
// relative to the repository's root, and its text.
type page struct {
	path, text string
}

// readPages reads README.md and every docs/*.md of the repository at root.
func readPages(t *testing.T, root string) []page {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{filepath.Join(root, "README.md")}, files...)
	var out []page
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		out = append(out, page{path: filepath.ToSlash(rel), text: string(b)})
	}
	return out
}

func repoRoot(t *testing.T) string {
	t.Helper()
	return filepath.Dir(mustGetwd(t))
}

var (
	// mdLink is a Markdown link's target: [text](target) or [text](target "title").
	mdLink = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	// outsidePath is a path into what surrounds the repository on the
	// machines it is made on: the shared notes, the library, the work tree.
	outsidePath = regexp.MustCompile(`\.\./(?:\.\./)*(?:shared|\.library)\b|(?:^|[\s(\x60"'])/work/`)
)

// linkProblems says what is wrong with the links and paths of one page:
// a path outside the repository, or a relative link whose file does not
// exist (exists answers for a path relative to the repository's root).
func linkProblems(p page, exists func(string) bool) []string {
	var out []string
	for _, loc := range outsidePath.FindAllStringIndex(p.text, -1) {
		out = append(out, p.path+": points outside the repository: "+strings.TrimSpace(p.text[loc[0]:loc[1]]))
	}
	for _, m := range mdLink.FindAllStringSubmatch(p.text, -1) {
		target := m[1]
		if i := strings.IndexByte(target, '#'); i >= 0 {
			target = target[:i]
		}
		if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
			continue
		}
		if strings.HasPrefix(target, "/") {
			out = append(out, p.path+": absolute link "+m[1])
			continue
		}
		rel := filepath.ToSlash(filepath.Join(filepath.Dir(p.path), target))
		switch {
		case rel == ".." || strings.HasPrefix(rel, "../"):
			out = append(out, p.path+": link outside the repository: "+m[1])
		case !exists(rel):
			out = append(out, p.path+": link to a missing file: "+m[1])
		}
	}
	return out
}

// unlinkedPages lists the docs/*.md pages the README does not link to.
func unlinkedPages(readme string, pages []page) []string {
	linked := map[string]bool{}
	for _, m := range mdLink.FindAllStringSubmatch(readme, -1) {
		linked[strings.SplitN(m[1], "#", 2)[0]] = true
	}
	var out []string
	for _, p := range pages {
		if strings.HasPrefix(p.path, "docs/") && !linked[p.path] {
			out = append(out, p.path)
		}
	}
	return out
}

func lineCount(s string) int {
	return strings.Count(strings.TrimSuffix(s, "\n"), "\n") + 1
}

// The pages stay within the repository and link only to what exists.
func TestPagesLinkWithinTheRepository(t *testing.T) {
	root := repoRoot(t)
	exists := func(rel string) bool {
		_, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel)))
		return err == nil
	}
	for _, p := range readPages(t, root) {
		for _, problem := range linkProblems(p, exists) {
			t.Error(problem)
		}
	}
}

// A user finds every page from the README, and the README stays short.
func TestReadmeLinksEveryPageAndStaysShort(t *testing.T) {
	pages := readPages(t, repoRoot(t))
	readme := pages[0]
	if readme.path != "README.md" {
		t.Fatalf("first page is %s", readme.path)
	}
	for _, p := range unlinkedPages(readme.text, pages) {
		t.Errorf("README.md does not link %s", p)
	}
	if n := lineCount(readme.text); n > maxReadmeLines {
		t.Errorf("README.md has %d lines, at most %d: move the detail into docs/", n, maxReadmeLines)
	}
}

// The checks above fail on pages that break them.
func TestPageChecksCatchViolations(t *testing.T) {
	exists := func(rel string) bool { return rel == "docs/a.md" || rel == "README.md" }
	// The outside folder's name is built, so that this file itself points
	// nowhere outside the repository.
	shared := "sha" + "red"
	bad := []page{
		{"docs/b.md", "see [notes](../../" + shared + "/notes.md)"},
		{"docs/b.md", "see ../" + shared + "/notes.md"},
		{"docs/b.md", "the list in ../.library/duplicates"},
		{"docs/b.md", "run `/work/main/bin/machine`"},
		{"docs/b.md", "[x](/etc/passwd)"},
		{"docs/b.md", "[x](../../outside.md)"},
		{"docs/b.md", "[x](missing.md#part)"},
		{"README.md", "[x](docs/missing.md)"},
	}
	for _, p := range bad {
		if len(linkProblems(p, exists)) == 0 {
			t.Errorf("%q passed the link check", p.text)
		}
	}
	good := []page{
		{"docs/b.md", "[a](a.md#x), [r](../README.md), [w](https://example.com/work/x), [s](#here)"},
		{"README.md", "[a](docs/a.md \"title\")"},
	}
	for _, p := range good {
		if got := linkProblems(p, exists); len(got) != 0 {
			t.Errorf("%q: %v", p.text, got)
		}
	}
	pages := []page{{"README.md", ""}, {"docs/a.md", ""}, {"docs/b.md", ""}}
	if got := unlinkedPages("[a](docs/a.md)", pages); len(got) != 1 || got[0] != "docs/b.md" {
		t.Errorf("unlinked pages: %v, want docs/b.md", got)
	}
	if n := lineCount(strings.Repeat("x\n", maxReadmeLines+1)); n <= maxReadmeLines {
		t.Errorf("line count %d", n)
	}
}
