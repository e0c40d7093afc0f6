package waitgroup

import (
	"fmt"
	"net"
	"os/exec"

	"github.com/eventsync/eventsync/internal/eventfd"
)

// Errors of Inherited and Receive. They are the same values in every
// eventsync package.
var (
	// ErrNotInherited means no primitive of that name was passed to this
	// process.
	ErrNotInherited = eventfd.ErrNotInherited
	// ErrWrongKind means the primitive passed under that name, or received,
	// is not a WaitGroup.
	ErrWrongKind = eventfd.ErrWrongKind
	// ErrMalformed means the environment entry or the message was not
	// written by PassTo or Send.
	ErrMalformed = eventfd.ErrMalformed
	// ErrTaken means Inherited was already called for that name.
	ErrTaken = eventfd.ErrTaken
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
// and for one primitive on several commands.
//
// PassTo appends duplicates of its three descriptors to cmd.ExtraFiles and describes them in
// cmd.Env, starting from os.Environ() if cmd.Env is nil (the format, in the
// EVENTSYNC_FDS variable, is documented in the README so that other languages
// can read it). The descriptors are close-on-exec everywhere else: a child
// sees only what is passed to it. The duplicates stay open in this process
// until cmd is garbage collected; close the files in cmd.ExtraFiles after
// cmd.Start to release them at once. name is 1 to 255 ASCII letters, digits,
// '_', '-' or '.'.
func (wg *WaitGroup) PassTo(cmd *exec.Cmd, name string) error {
	if err := eventfd.PassTo(cmd, name, eventfd.KindWaitGroup, wg.fds()); err != nil {
		return fmt.Errorf("waitgroup: PassTo: %w", err)
	}
	return nil
}

// Inherited returns the WaitGroup that the parent passed under name with
// PassTo. It checks what the environment claims — that the name was passed,
// as a WaitGroup, on three open eventfds in the right modes — and fails with an
// error wrapping ErrNotInherited, ErrWrongKind, ErrMalformed, os.ErrClosed,
// ErrNotEventfd or ErrWrongMode otherwise, or ErrTaken if it was already
// called for name. The descriptors are made close-on-exec again.
func Inherited(name string) (*WaitGroup, error) {
	fds, err := eventfd.Inherited(name, eventfd.KindWaitGroup)
	if err != nil {
		return nil, fmt.Errorf("waitgroup: Inherited: %w", err)
	}
	return newWaitGroup(fds), nil
}

// Send passes wg over conn, with SCM_RIGHTS, to a process that calls Receive.
func (wg *WaitGroup) Send(conn *net.UnixConn) error {
	if err := eventfd.Send(conn, eventfd.KindWaitGroup, wg.fds()); err != nil {
		return fmt.Errorf("waitgroup: Send: %w", err)
	}
	return nil
}

// Receive reads one WaitGroup sent with Send from conn. The descriptors
// arrive close-on-exec. A message that is not a WaitGroup from Send is an
// error wrapping ErrWrongKind or ErrMalformed, and every descriptor that came
// with it is closed.
func Receive(conn *net.UnixConn) (*WaitGroup, error) {
	fds, err := eventfd.Receive(conn, eventfd.KindWaitGroup)
	if err != nil {
		return nil, fmt.Errorf("waitgroup: Receive: %w", err)
	}
	return newWaitGroup(fds), nil
}
