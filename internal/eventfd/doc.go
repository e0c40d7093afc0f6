// Package eventfd is the one place where eventsync talks to the kernel.
//
// It owns three things that every public package builds on:
//
//   - FD, one Linux eventfd: created close-on-exec and non-blocking, or adopted
//     from a descriptor made elsewhere; read and written without blocking a
//     thread; closed without ever touching a descriptor number that the
//     kernel may already have given to someone else.
//   - Queue, the goroutines of this process that wait on an eventfd: one
//     poller sleeps in the Go runtime netpoller on their behalf, and each
//     waiter blocks on its own channel beside its own context.
//   - the sharing of descriptors with other processes (see share.go).
//
// On systems other than Linux the constructors return an error that
// satisfies errors.Is(err, errors.ErrUnsupported), and nothing else can be
// reached.
package eventfd

import "errors"

// MaxCount is the largest value an eventfd counter holds.
const MaxCount = 1<<64 - 2

// Errors shared by every public package, so that errors.Is works whichever
// package a caller names them through.
var (
	// ErrNotEventfd reports a descriptor that is not an eventfd.
	ErrNotEventfd = errors.New("descriptor is not an eventfd")
	// ErrWrongMode reports an eventfd in counter mode where semaphore mode
	// was expected, or the reverse.
	ErrWrongMode = errors.New("eventfd is in the wrong mode")
	// ErrOverflow reports a write that would take the counter past MaxCount.
	ErrOverflow = errors.New("eventfd counter would overflow")
)

// Mode is how a read of the eventfd takes from its counter.
type Mode uint8

const (
	// Counter: a read returns the whole counter and resets it to zero.
	Counter Mode = iota
	// Semaphore (EFD_SEMAPHORE): a read returns 1 and takes 1.
	Semaphore
)

func (m Mode) String() string {
	if m == Semaphore {
		return "semaphore"
	}
	return "counter"
}
