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

import (
	"errors"
	"sync"
)

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

// Supported returns nil if this system makes eventfds in mode, and
// otherwise the error New would return for the missing facility. A
// constructor that makes its descriptor only later (when the primitive is
// first shared) calls it, so that a kernel without eventfd is refused at
// construction, never in the middle of a wait. The answer is found once per
// process.
func Supported(mode Mode) error { return support[mode]() }

var support = [...]func() error{
	Counter:   sync.OnceValue(func() error { return probe(Counter) }),
	Semaphore: sync.OnceValue(func() error { return probe(Semaphore) }),
}

// probe makes and closes an eventfd in mode, and returns the error of a
// missing facility; any other failure (no descriptor to spare, say) is for
// the real creation to report.
func probe(mode Mode) error {
	fd, err := sysCreate(0, mode)
	if err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			return err
		}
		return nil
	}
	sysClose(fd)
	return nil
}
