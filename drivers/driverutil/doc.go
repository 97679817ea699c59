// Package driverutil holds what the drivers do the same way: wait, with a
// bound, for a new host's sshd to greet (WaitSSH); make the SSH host key a
// host is given, so that its fingerprint is pinned before the first contact
// (NewHostKey, LoadOrCreateHostKey); keep a versioned state file of what a
// driver made (LoadState, SaveState); check a VM's size settings
// (CheckMinimums).
package driverutil
