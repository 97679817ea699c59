package e2e

import (
	"testing"
	"time"
)

// TestSpread: the benchmark's median, minimum and maximum (a pure helper:
// no lab needed).
func TestSpread(t *testing.T) {
	s := time.Second
	for _, c := range []struct {
		in          []time.Duration
		med, lo, hi time.Duration
	}{
		{[]time.Duration{3 * s}, 3 * s, 3 * s, 3 * s},
		{[]time.Duration{5 * s, 1 * s, 3 * s}, 3 * s, 1 * s, 5 * s},
		{[]time.Duration{4 * s, 1 * s, 2 * s, 9 * s}, 3 * s, 1 * s, 9 * s},
	} {
		med, lo, hi := spread(c.in)
		if med != c.med || lo != c.lo || hi != c.hi {
			t.Errorf("spread(%v) = %v, %v, %v; want %v, %v, %v", c.in, med, lo, hi, c.med, c.lo, c.hi)
		}
	}
}
