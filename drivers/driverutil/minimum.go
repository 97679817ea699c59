package driverutil

import "fmt"

// Minimum is a numeric setting's least value, in its flag's words.
type Minimum struct {
	Flag  string
	Value int
	Least int
	// Unit is said after the least value ("MiB"); empty for a count.
	Unit string
}

// CheckMinimums returns an error for each setting below its least value,
// in order, so that every bad value is said at once.
func CheckMinimums(ms ...Minimum) []error {
	var errs []error
	for _, m := range ms {
		if m.Value >= m.Least {
			continue
		}
		if m.Unit == "" {
			errs = append(errs, fmt.Errorf("%s %d: at least %d", m.Flag, m.Value, m.Least))
		} else {
			errs = append(errs, fmt.Errorf("%s %d: at least %d (%s)", m.Flag, m.Value, m.Least, m.Unit))
		}
	}
	return errs
}
