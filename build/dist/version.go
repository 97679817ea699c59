package main

import (
	"strings"
	"time"
)

// pkgVersion makes a version that deb and rpm both order rightly, from
// `git describe --tags --long` (empty when there is no tag), the commit and
// its time: on tag v0.3.0 itself 0.3.0; v0.3.0-rc1 is 0.3.0~rc1 (before
// 0.3.0); 5 commits past it 0.3.0+git5.SHA; no tag at all
// 0.0.0~gitYYYYMMDD.SHA. A tree with changes gets .dirty.
func pkgVersion(describe, sha string, at time.Time, dirty bool) string {
	v := "0.0.0~git" + at.UTC().Format("20060102") + "." + sha
	// TAG-N-gSHA; the tag itself may hold dashes.
	if i := strings.LastIndex(describe, "-g"); i > 0 {
		rest := describe[:i]
		if j := strings.LastIndex(rest, "-"); j > 0 {
			tag, n := rest[:j], rest[j+1:]
			base := strings.ReplaceAll(strings.TrimPrefix(tag, "v"), "-", "~")
			if validBase(base) && digits(n) {
				v = base
				if n != "0" {
					v += "+git" + n + "." + sha
				}
			}
		}
	}
	if dirty {
		v += ".dirty"
	}
	return v
}

// validBase: a tag's version must start with a digit and hold only what
// both formats take (no dash left, no space, no slash).
func validBase(s string) bool {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return false
	}
	return !strings.ContainsFunc(s, func(c rune) bool { return !versionChar(c) })
}

// versionChar: an ASCII letter or digit, '.', '~' or '+'.
func versionChar(c rune) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.ContainsRune(".~+", c)
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
