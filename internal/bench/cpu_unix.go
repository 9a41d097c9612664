//go:build unix

package bench

import (
	"syscall"
	"time"
)

// CPUTime is the process's user + system CPU time so far. On a machine
// shared with other work it is steadier than wall time: compare it between
// variants when the wall times swing.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
