package e2e

import (
	"slices"
	"testing"
)

// TestSpreadOf needs no lab: the benchmark's median, min and max.
func TestSpreadOf(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []float64
		want spread
	}{
		{"none", nil, spread{}},
		{"one", []float64{2.5}, spread{2.5, 2.5, 2.5}},
		{"odd, unsorted", []float64{3, 1, 2}, spread{2, 1, 3}},
		{"even: the mean of the middle two", []float64{4, 1, 3, 2}, spread{2.5, 1, 4}},
		{"ties", []float64{5, 5, 1, 5, 9}, spread{5, 1, 9}},
		{"an outlier moves min and max, not the median", []float64{3.1, 3.3, 27, 3.2, 3.0}, spread{3.2, 3.0, 27}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := slices.Clone(c.in)
			if got := spreadOf(in); got != c.want {
				t.Errorf("spreadOf(%v) = %+v, want %+v", c.in, got, c.want)
			}
			if !slices.Equal(in, c.in) {
				t.Errorf("spreadOf reordered its input: %v", in)
			}
		})
	}
}

func TestSpreadSecs(t *testing.T) {
	if got, want := (spread{3.256, 3.1, 27}).secs(), "3.26 s (3.10-27.00)"; got != want {
		t.Errorf("secs() = %q, want %q", got, want)
	}
}
