//go:build unix

package cluster

import "golang.org/x/sys/unix"

// freeSpace is the room left in dir for an unprivileged writer, -1 when
// it cannot be read.
func freeSpace(dir string) int64 {
	var s unix.Statfs_t
	if err := unix.Statfs(dir, &s); err != nil {
		return -1
	}
	return int64(s.Bavail) * int64(s.Bsize)
}
