package waitgroup

import (
	"os/exec"
	"syscall"

	"github.com/eventsync/eventsync/internal/eventfd"
	"github.com/eventsync/eventsync/internal/share"
)

// Errors of Inherited and Receive. They are the same values in every
// eventsync package.
var (
	// ErrNotInherited means no primitive of that name was passed to this
	// process.
	ErrNotInherited = share.ErrNotInherited
	// ErrWrongKind means the primitive passed under that name, or received,
	// is not a WaitGroup.
	ErrWrongKind = share.ErrWrongKind
	// ErrMalformed means the environment entry or the message was not
	// written by PassTo or Send.
	ErrMalformed = share.ErrMalformed
	// ErrTaken means Inherited was already called for that name.
	ErrTaken = share.ErrTaken
	// ErrNotEventfd means a descriptor named as part of the WaitGroup is not
	// an eventfd.
	ErrNotEventfd = eventfd.ErrNotEventfd
	// ErrWrongMode means one of the WaitGroup's eventfds is in the wrong
	// mode.
	ErrWrongMode = eventfd.ErrWrongMode
)

// PassTo makes wg available, under name, to the process that cmd will start:
// there, Inherited(name) returns a WaitGroup on the same counter. Call it
// before cmd.Start; it may be called for several primitives on one command,
// and for one primitive on several commands. name is 1 to 255 ASCII letters,
// digits, '_', '-' or '.'.
//
// PassTo appends duplicates of the WaitGroup's three descriptors to
// cmd.ExtraFiles and names them in cmd.Env, starting from os.Environ() if
// cmd.Env is nil. The duplicates stay open in this process until cmd is
// garbage collected; close the files in cmd.ExtraFiles after cmd.Start to
// release them at once.
func (wg *WaitGroup) PassTo(cmd *exec.Cmd, name string) error {
	f, err := wg.group().share()
	if err != nil {
		return opError("PassTo", err)
	}
	return share.PassTo(cmd, name, kind, f.list()...)
}

// Inherited returns the WaitGroup that the parent passed under name with
// PassTo. It checks what the environment claimed when this process started —
// that the name was passed, as a WaitGroup, on three eventfds in the right
// modes that were open then — and fails with an error wrapping
// ErrNotInherited, ErrWrongKind, ErrMalformed, os.ErrClosed, ErrNotEventfd or
// ErrWrongMode otherwise, or ErrTaken if it was already called for name. The
// descriptors are made close-on-exec again.
//
// In a process started with Start, the entry has a fourth eventfd, the
// share token: the returned WaitGroup's first decrement (Done, usually)
// does the share that Start added, and the parent does it if this process
// exits without one. A WaitGroup passed with PassTo has no token: if this
// process dies before Done, nothing does it in its place.
func Inherited(name string) (*WaitGroup, error) {
	p, err := share.Inherited(name, kind)
	if err != nil {
		return nil, err
	}
	return fromFDs(p.FDs), nil
}

// Send passes wg over conn, a Unix socket such as a *net.UnixConn, with
// SCM_RIGHTS, to a process that calls Receive.
func (wg *WaitGroup) Send(conn syscall.Conn) error {
	f, err := wg.group().share()
	if err != nil {
		return opError("Send", err)
	}
	return share.Send(conn, kind, f.list()...)
}

// Receive reads one WaitGroup sent with Send from conn, a Unix socket. The
// descriptors arrive close-on-exec. A message that is not a WaitGroup from
// Send is an error wrapping ErrWrongKind or ErrMalformed, and every
// descriptor that came with it is closed.
func Receive(conn syscall.Conn) (*WaitGroup, error) {
	p, err := share.Receive(conn, kind)
	if err != nil {
		return nil, err
	}
	return fromFDs(p.FDs), nil
}

// fromFDs makes a WaitGroup on a shared WaitGroup's descriptors, and its
// share token if the list has one.
func fromFDs(list []*eventfd.FD) *WaitGroup {
	wg := new(WaitGroup)
	g := newGroup(&fds{count: list[0], zero: list[1], waiting: list[2]})
	if len(list) > 3 {
		g.token.Store(list[3])
	}
	wg.adopt(g)
	return wg
}
