//go:build linux

package agent

import (
	"syscall"
	"time"
)

// threadCPU is the calling thread's user + system CPU time
// (getrusage RUSAGE_THREAD); the caller locks its OS thread.
func threadCPU() time.Duration {
	const rusageThread = 1 // RUSAGE_THREAD, Linux
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
