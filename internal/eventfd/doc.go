// Package eventfd is the one place where eventsync makes eventfd system
// calls.
//
// An FD is one Linux eventfd: created close-on-exec and non-blocking, or
// adopted from a descriptor made elsewhere; read and written without ever
// blocking a thread; closed without ever touching a descriptor number that
// the kernel may already have given to someone else. Everything that waits
// (package waitq) and everything that shares descriptors with other
// processes (package share) is built on it.
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
	// ErrInterrupted reports a Take given up between two chunks of reads,
	// having given back what it took.
	ErrInterrupted = errors.New("take interrupted")
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

// Supported returns nil where eventfds can be made, and otherwise the error
// New would return, for constructors that make their descriptor later.
func Supported() error { return supported }
