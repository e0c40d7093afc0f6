//go:build race

// Package race tells the race detector about the happens-before edges that
// eventsync's system calls create.
//
// A write to an eventfd and the read that sees it are a real barrier, but
// the race detector cannot see into the kernel: without these annotations,
// code that is race-free with sync and golang.org/x/sync would be reported
// as racy with eventsync. The sync package annotates its own edges the same
// way. Outside race builds every function is empty and inlined away.
package race

import (
	"runtime"
	"unsafe"
)

// Enabled reports whether the race detector is on.
const Enabled = true

// ReleaseMerge records that everything done before it happens before
// whatever follows a later Acquire on addr, together with every earlier
// ReleaseMerge on addr.
func ReleaseMerge(addr unsafe.Pointer) { runtime.RaceReleaseMerge(addr) }

// Acquire records that what preceded every ReleaseMerge on addr happens
// before what follows.
func Acquire(addr unsafe.Pointer) { runtime.RaceAcquire(addr) }
