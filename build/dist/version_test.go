package main

import (
	"testing"
	"time"
)

func TestPkgVersion(t *testing.T) {
	at := time.Date(2026, 12, 7, 13, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		describe string
		dirty    bool
		want     string
	}{
		{"v0.3.0-0-gabc123", false, "0.3.0"},
		{"v0.3.0-rc1-0-gabc123", false, "0.3.0~rc1"},
		{"v0.3.0-5-gabc123", false, "0.3.0+git5.abc123"},
		{"", false, "0.0.0~git20261207.abc123"},
		{"", true, "0.0.0~git20261207.abc123.dirty"},
		{"v0.3.0-0-gabc123", true, "0.3.0.dirty"},
		{"vnext-0-gabc123", false, "0.0.0~git20261207.abc123"},
		{"v1 2-0-gabc123", false, "0.0.0~git20261207.abc123"},
		{"v0- -gabc123", false, "0.0.0~git20261207.abc123"},
	} {
		if got := pkgVersion(tc.describe, "abc123", at, tc.dirty); got != tc.want {
			t.Errorf("pkgVersion(%q, dirty %v) = %q, want %q", tc.describe, tc.dirty, got, tc.want)
		}
	}
}

func FuzzPkgVersion(f *testing.F) {
	f.Add("v0.3.0-5-gabc")
	f.Fuzz(func(t *testing.T, describe string) {
		v := pkgVersion(describe, "abc", time.Unix(0, 0), false)
		if !validBase(v) {
			t.Fatalf("pkgVersion(%q) = %q: not a valid version", describe, v)
		}
	})
}
