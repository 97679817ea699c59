package dataplane

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/shoal-dev/shoal/internal/ui"
)

// cellWord is a cell as one word: ok, mesh (the overlay carries, the
// routing mesh at To does not answer), mtu (small packets cross, full-size
// ones do not), fail (nothing crosses).
func cellWord(c Cell) string {
	switch {
	case c.Small == OK && c.Big == OK && c.Mesh == Failed:
		return "mesh"
	case c.Small == OK && c.Big == OK:
		return "ok"
	case c.Small == OK:
		return "mtu"
	}
	return "fail"
}

// WriteMatrix writes the node x node matrix (rows: from, columns: to).
func WriteMatrix(w io.Writer, r *Report) {
	if len(r.Cells) == 0 {
		return
	}
	at := map[[2]string]string{}
	for _, c := range r.Cells {
		at[[2]string{c.From, c.To}] = cellWord(c)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	ui.TableRow(tw, append([]string{"FROM \\ TO"}, r.Nodes...)...)
	for _, from := range r.Nodes {
		row := []string{from}
		for _, to := range r.Nodes {
			switch v, ok := at[[2]string{from, to}]; {
			case from == to:
				row = append(row, "-")
			case ok:
				row = append(row, v)
			default:
				row = append(row, "?")
			}
		}
		ui.TableRow(tw, row...)
	}
	tw.Flush()
}

// WriteLines writes the cells as plain lines, for a pipe.
func WriteLines(w io.Writer, r *Report) {
	for _, c := range r.Cells {
		mesh := ""
		if c.Mesh != Skipped {
			mesh = ", routing mesh " + c.Mesh
		}
		fmt.Fprintf(w, "pair %s %s %s (small %s, full-size %s%s)\n", ui.CleanLine(c.From), ui.CleanLine(c.To), cellWord(c), c.Small, c.Big, mesh)
	}
}

// WriteFindings writes each finding with its fix, where each probe run's
// time went, then the verdict line.
func WriteFindings(w io.Writer, r *Report) {
	for _, f := range r.Findings {
		fmt.Fprintf(w, "%s: %s\n", strings.ToUpper(f.Kind), ui.CleanLine(f.Cause))
		if f.Fix != "" {
			fmt.Fprintf(w, "  fix: %s\n", ui.CleanLine(f.Fix))
		}
	}
	for i, t := range r.Runs {
		fmt.Fprintf(w, "Probe run %d: made in %.1fs, its tasks started in %.1fs, probed in %.1fs, removed in %.1fs.\n", i+1, t.Make, t.Start, t.Probe, t.Cleanup)
	}
	fmt.Fprintln(w, Summary(r))
}

// Summary is the verdict in one line.
func Summary(r *Report) string {
	faults, limits, warnings := r.Counts()
	var extra []string
	if limits > 0 {
		extra = append(extra, plural(limits, "limit")+" of these hosts")
	}
	if warnings > 0 {
		extra = append(extra, plural(warnings, "warning"))
	}
	tail := ""
	if len(extra) > 0 {
		tail = " (" + strings.Join(extra, ", ") + ")"
	}
	if faults > 0 {
		return fmt.Sprintf("Data plane: %s%s.", plural(faults, "fault"), tail)
	}
	also := ""
	if r.MeshPort > 0 {
		also = ", service VIPs and the routing mesh too"
	}
	return fmt.Sprintf("Data plane: works between all %d nodes%s%s.", len(r.Nodes), also, tail)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
