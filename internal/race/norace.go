//go:build !race

package race

import "unsafe"

// Enabled reports whether the race detector is on.
const Enabled = false

// ReleaseMerge does nothing outside race builds.
func ReleaseMerge(unsafe.Pointer) {}

// Acquire does nothing outside race builds.
func Acquire(unsafe.Pointer) {}
