package share

import (
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/eventsync/eventsync/internal/eventfd"
)

// inheritance is EnvVar as this process started with it, and the
// descriptors it names that were open then. EnvVar is removed from the
// environment at once, and every descriptor number it names made
// close-on-exec again, whether or not Inherited is ever called: a child
// passes on only what it passes with PassTo, and a grandchild started with
// os.Environ() is not told of descriptors it does not have.
var inheritance struct {
	sync.Mutex
	value string
	ok    bool
	// open holds the descriptors named in value that were open at start-up
	// and that the Go runtime does not use: Inherited accepts no other, so
	// that an entry naming, say, the runtime's own netpoller descriptor
	// cannot make this process close it.
	open map[int]bool
	// taken records the names and descriptors Inherited has handed out.
	taken   map[string]bool
	claimed map[int]bool
}

func init() {
	v, ok := os.LookupEnv(EnvVar)
	if !ok {
		return
	}
	os.Unsetenv(EnvVar)
	start(v)
}

// start records v as this process's inheritance.
func start(v string) {
	inheritance.Lock()
	defer inheritance.Unlock()
	inheritance.value, inheritance.ok = v, true
	inheritance.open = make(map[int]bool)
	busy := runtimeFDs()
	for _, fd := range namedFDs(v) {
		if fd <= 2 || busy[fd] {
			continue
		}
		if sysCloseOnExec(fd) == nil {
			inheritance.open[fd] = true
		}
	}
}

// Inherited returns the eventfds passed to this process under name, checked
// against kind: each must have been open when the process started, be
// claimed by no other name, and be an eventfd in the mode the kind says. It
// makes them close-on-exec and non-blocking. A name can be taken once.
func Inherited(name string, kind Kind) ([]*eventfd.FD, error) {
	fds, err := inherited(name, kind)
	if err != nil {
		return nil, fmt.Errorf("%s: Inherited: %w", kind.Name, err)
	}
	return fds, nil
}

func inherited(name string, kind Kind) ([]*eventfd.FD, error) {
	inheritance.Lock()
	defer inheritance.Unlock()
	if !inheritance.ok {
		return nil, fmt.Errorf("%q: %s was not set when this process started: %w", name, EnvVar, ErrNotInherited)
	}
	entries, err := parseEnv(inheritance.value)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(entries, func(e entry) bool { return e.name == name })
	if i < 0 {
		return nil, fmt.Errorf("%q: %w", name, ErrNotInherited)
	}
	e := entries[i]
	switch {
	case e.kind != kind.Name:
		return nil, fmt.Errorf("%q is a %s, not a %s: %w", name, e.kind, kind.Name, ErrWrongKind)
	case len(e.fds) != len(kind.Modes):
		return nil, fmt.Errorf("%q: a %s has %d descriptors, not %d: %w", name, kind.Name, len(kind.Modes), len(e.fds), ErrMalformed)
	case inheritance.taken[name]:
		return nil, fmt.Errorf("%q: %w", name, ErrTaken)
	}
	for _, fd := range e.fds {
		if !inheritance.open[fd] || inheritance.claimed[fd] {
			return nil, fmt.Errorf("%q: descriptor %d was not open when this process started: %w", name, fd, os.ErrClosed)
		}
	}
	fds := make([]*eventfd.FD, 0, len(e.fds))
	for j, num := range e.fds {
		fd, err := eventfd.Own(num, kind.Modes[j])
		if err != nil {
			// Those already owned are made FDs, not closed: the numbers
			// stay this process's, as they were before the call.
			return nil, fmt.Errorf("%q: descriptor %d: %w", name, num, err)
		}
		fds = append(fds, fd)
	}
	if inheritance.taken == nil {
		inheritance.taken = make(map[string]bool)
	}
	if inheritance.claimed == nil {
		inheritance.claimed = make(map[int]bool)
	}
	inheritance.taken[name] = true
	for _, fd := range e.fds {
		inheritance.claimed[fd] = true
	}
	return fds, nil
}
