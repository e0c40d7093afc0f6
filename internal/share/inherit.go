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
func Inherited(name string, kind Kind) (Parts, error) {
	p, err := inherited(name, kind)
	if err != nil {
		return Parts{}, fmt.Errorf("%s: Inherited: %w", kind.Name, err)
	}
	return p, nil
}

func inherited(name string, kind Kind) (Parts, error) {
	inheritance.Lock()
	defer inheritance.Unlock()
	if !inheritance.ok {
		return Parts{}, fmt.Errorf("%q: %s was not set when this process started: %w", name, EnvVar, ErrNotInherited)
	}
	entries, err := parseEnv(inheritance.value)
	if err != nil {
		return Parts{}, err
	}
	i := slices.IndexFunc(entries, func(e entry) bool { return e.name == name })
	if i < 0 {
		return Parts{}, fmt.Errorf("%q: %w", name, ErrNotInherited)
	}
	e := entries[i]
	switch {
	case e.kind != kind.Name:
		return Parts{}, fmt.Errorf("%q is a %s, not a %s: %w", name, e.kind, kind.Name, ErrWrongKind)
	case !kind.fits(len(e.fds)):
		return Parts{}, fmt.Errorf("%q: a %s has %s descriptors, not %d: %w", name, kind.Name, kind.want(), len(e.fds), ErrMalformed)
	case inheritance.taken[name]:
		return Parts{}, fmt.Errorf("%q: %w", name, ErrTaken)
	}
	for _, fd := range e.fds {
		if !inheritance.open[fd] || inheritance.claimed[fd] {
			return Parts{}, fmt.Errorf("%q: descriptor %d was not open when this process started: %w", name, fd, os.ErrClosed)
		}
	}
	// Those optional descriptors that the entry leaves out are not there.
	modes := kind.Modes[:len(kind.Modes)-(kind.count()-len(e.fds))]
	p := Parts{FDs: make([]*eventfd.FD, 0, len(modes)), Record: -1}
	for j, mode := range modes {
		num := e.fds[j]
		fd, err := eventfd.Own(num, mode)
		if err != nil {
			// Those already owned are made FDs, not closed: the numbers
			// stay this process's, as they were before the call.
			return Parts{}, fmt.Errorf("%q: descriptor %d: %w", name, num, err)
		}
		p.FDs = append(p.FDs, fd)
	}
	if kind.Record {
		p.Record = e.fds[len(kind.Modes)]
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
	return p, nil
}
