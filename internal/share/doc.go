// Package share hands eventfds to other processes and takes them from
// other processes: to a child started with os/exec through its environment
// (PassTo, Inherited), and to an unrelated process over a Unix socket
// (Send, Receive).
//
// Both protocols are written down once, in the README's "Sharing with other
// processes" section, for programs in other languages; env.go and message.go
// implement them. A public package describes what it is made of with a Kind,
// and the protocols carry the kind's name and ID, never its Go type.
package share

import (
	"errors"
	"strconv"

	"github.com/eventsync/eventsync/internal/eventfd"
)

// A Kind is one public type as the sharing protocols see it.
type Kind struct {
	// Name is the type's name in EVENTSYNC_FDS and in error messages, and
	// the package name that prefixes them: "semaphore".
	Name string
	// Type is the type's name, for the error of a closed primitive: "use
	// of closed Semaphore".
	Type string
	// ID stands for the kind in a Send message. It is part of the wire
	// format: never change or reuse one.
	ID byte
	// Modes lists the eventfds the type is made of, in order.
	Modes []eventfd.Mode
	// Record says that a membership record (a memfd, see package member)
	// follows the eventfds. Three descriptors at most in all.
	Record bool
	// Optional counts the trailing Modes that only some holders are
	// given: PassTo may leave them out, Inherited accepts an entry with or
	// without them, and Send and Receive never carry them (a WaitGroup's
	// share token, which only a process started with waitgroup's Start
	// holds). A kind with Optional has no Record.
	Optional int
}

// count is how many descriptors the kind is made of, at most.
func (k Kind) count() int {
	if k.Record {
		return len(k.Modes) + 1
	}
	return len(k.Modes)
}

// sent is how many descriptors a Send message carries: all but the
// optional ones.
func (k Kind) sent() int { return k.count() - k.Optional }

// fits reports whether n descriptors make a whole primitive of the kind, with
// or without its optional ones.
func (k Kind) fits(n int) bool { return k.sent() <= n && n <= k.count() }

// want says how many descriptors a kind is made of, for error messages.
func (k Kind) want() string {
	if k.Optional == 0 {
		return strconv.Itoa(k.count())
	}
	return strconv.Itoa(k.sent()) + " to " + strconv.Itoa(k.count())
}

// An Exporter hands out a duplicate of its descriptor, which the caller
// then owns: an *eventfd.FD, or a record.
type Exporter interface {
	Export() (int, error)
}

// Parts are the descriptors of a primitive that arrived: its eventfds, and
// its record's descriptor (-1 if the kind has none), for the caller to own.
type Parts struct {
	FDs    []*eventfd.FD
	Record int
}

// Errors of sharing, the same values in every public package.
var (
	// ErrNotInherited: no primitive of that name was passed to this process.
	ErrNotInherited = errors.New("no primitive of that name was inherited")
	// ErrWrongKind: the primitive passed under that name is of another type.
	ErrWrongKind = errors.New("primitive is of another type")
	// ErrMalformed: the environment entry or the message is not one that
	// PassTo or Send writes.
	ErrMalformed = errors.New("malformed description of a shared primitive")
	// ErrTaken: Inherited was already called for that name.
	ErrTaken = errors.New("inherited primitive already taken")
	// ErrStarted: PassTo was called after the command started.
	ErrStarted = errors.New("command already started")
	// ErrPassed: PassTo was already called with that name on the command.
	ErrPassed = errors.New("name already passed to this command")
)
