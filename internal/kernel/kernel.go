// Package kernel knows which Linux facilities eventsync relies on, the
// version that brought each, and which of them the running kernel has.
//
// Each facility is probed once per process, on first use, and the answer is
// kept: a caller on a fast path pays for a call that returns a cached bool,
// never for a system call. The floor eventsync supports is Linux 4.18;
// everything newer that it uses is detected here and has a fallback, which
// the README's table of kernels describes.
package kernel

import (
	"bytes"
	"errors"
	"sync/atomic"
)

// Floor is the oldest kernel eventsync supports and tests (by emulation).
const Floor = "4.18"

// Versions that brought the facilities eventsync uses.
const (
	// SinceEventfd2 brought eventfd2(2) with EFD_CLOEXEC and EFD_NONBLOCK.
	SinceEventfd2 = "2.6.27"
	// SinceEFDSemaphore brought EFD_SEMAPHORE.
	SinceEFDSemaphore = "2.6.30"
	// SinceNoWaitRead made eventfd a read_iter file that takes
	// preadv2(RWF_NOWAIT) (commit 12aceb89b0bc, "eventfd: convert to
	// f_op->read_iter()", merged for 5.8).
	SinceNoWaitRead = "5.8"
	// SinceModeInFdinfo brought the "eventfd-semaphore:" line of
	// /proc/PID/fdinfo.
	SinceModeInFdinfo = "6.5"
	// SincePidfd brought pidfd_open(2).
	SincePidfd = "5.3"
	// SincePidfdGetfd brought pidfd_getfd(2).
	SincePidfdGetfd = "5.6"
)

// MissingError reports a kernel facility that eventsync cannot do without.
// It satisfies errors.Is(err, errors.ErrUnsupported), and errors.Is with
// the kernel's own error (syscall.ENOSYS, syscall.EINVAL).
type MissingError struct {
	Facility string // what is missing: "eventfd2 with EFD_SEMAPHORE"
	Since    string // the first Linux version that has it
	Err      error  // what the kernel answered
}

func (e *MissingError) Error() string {
	return e.Facility + " needs Linux " + e.Since + " or later: " + e.Err.Error()
}

func (e *MissingError) Unwrap() []error { return []error{e.Err, errors.ErrUnsupported} }

// hideModeLine makes ModeInFdinfo report false; see WithoutModeLine.
var hideModeLine atomic.Bool

// WithoutModeLine makes ModeInFdinfo report false for the rest of the
// process, as it does on kernels before 6.5, whose fdinfo has no
// "eventfd-semaphore:" line. It is for tests that emulate an older kernel:
// a seccomp filter can make system calls fail as they did, but cannot
// change what /proc shows. Call it before anything asks ModeInFdinfo.
func WithoutModeLine() { hideModeLine.Store(true) }

// NoWaitRead reports whether preadv2(2) with RWF_NOWAIT works on an eventfd
// (Linux 5.8): such a read never blocks, even on a descriptor whose
// O_NONBLOCK another process has cleared.
func NoWaitRead() bool { return noWaitRead() }

// ModeInFdinfo reports whether /proc/self/fdinfo shows an eventfd's mode in
// an "eventfd-semaphore:" line (Linux 6.5). Without it the mode of an
// eventfd made elsewhere cannot be told without taking from its counter.
func ModeInFdinfo() bool { return modeInFdinfo() }

// Pidfd reports whether pidfd_open(2) works (Linux 5.3).
func Pidfd() bool { return pidfd() }

// PidfdGetfd reports whether pidfd_getfd(2) works (Linux 5.6).
func PidfdGetfd() bool { return pidfdGetfd() }

// HasModeLine reports whether an fdinfo text has an "eventfd-semaphore:"
// line.
func HasModeLine(info []byte) bool {
	return bytes.HasPrefix(info, []byte("eventfd-semaphore:")) ||
		bytes.Contains(info, []byte("\neventfd-semaphore:"))
}
