package driverutil

import (
	"errors"
	"testing"
)

func TestCheckMinimums(t *testing.T) {
	errs := CheckMinimums(
		Minimum{Flag: "--x-cpus", Value: 0, Least: 1},
		Minimum{Flag: "--x-memory", Value: 256, Least: 256, Unit: "MiB"},
		Minimum{Flag: "--x-disk", Value: 10, Least: 1024, Unit: "MiB"},
	)
	got := errors.Join(errs...)
	want := "--x-cpus 0: at least 1\n--x-disk 10: at least 1024 (MiB)"
	if len(errs) != 2 || got.Error() != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if errs := CheckMinimums(Minimum{Flag: "--x-cpus", Value: 2, Least: 1}); errs != nil {
		t.Fatalf("a value above the least: %v", errs)
	}
}
