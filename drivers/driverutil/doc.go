// Package driverutil holds what every driver that makes hosts needs the
// same way: waiting, with a bound, for a new host's sshd to greet, and the
// SSH host key shoal makes for a host so that its fingerprint is pinned
// before the first contact.
package driverutil
