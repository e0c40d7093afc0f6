package signal

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
	// is not a Signal.
	ErrWrongKind = eventfd.ErrWrongKind
	// ErrMalformed means the environment entry or the message was not
	// written by PassTo or Send.
	ErrMalformed = eventfd.ErrMalformed
	// ErrTaken means Inherited was already called for that name.
	ErrTaken = eventfd.ErrTaken
)

// PassTo makes s available, under name, to the process that cmd will start:
// there, Inherited(name) returns a Signal on the same permits. Call it
// before cmd.Start; it may be called for several primitives on one command,
// and for one primitive on several commands.
//
// PassTo appends a duplicate descriptor to cmd.ExtraFiles and describes it in
// cmd.Env, starting from os.Environ() if cmd.Env is nil (the format, in the
// EVENTSYNC_FDS variable, is documented in the README so that other languages
// can read it). The descriptor is close-on-exec everywhere else: a child
// sees only what is passed to it. The duplicate stays open in this process
// until cmd is garbage collected; close the files in cmd.ExtraFiles after
// cmd.Start to release it at once. name is 1 to 255 ASCII letters, digits,
// '_', '-' or '.'.
func (s *Signal) PassTo(cmd *exec.Cmd, name string) error {
	if err := eventfd.PassTo(cmd, name, eventfd.KindSignal, []*eventfd.FD{s.fd}); err != nil {
		return fmt.Errorf("signal: PassTo: %w", err)
	}
	return nil
}

// Inherited returns the Signal that the parent passed under name with
// PassTo. It checks what the environment claims — that the name was passed,
// as a Signal, on an open eventfd in counter mode — and fails with an
// error wrapping ErrNotInherited, ErrWrongKind, ErrMalformed, os.ErrClosed,
// ErrNotEventfd or ErrWrongMode otherwise, or ErrTaken if it was already
// called for name. The descriptor is made close-on-exec again.
func Inherited(name string) (*Signal, error) {
	fds, err := eventfd.Inherited(name, eventfd.KindSignal)
	if err != nil {
		return nil, fmt.Errorf("signal: Inherited: %w", err)
	}
	return newSignal(fds[0]), nil
}

// Send passes s over conn, with SCM_RIGHTS, to a process that calls Receive.
func (s *Signal) Send(conn *net.UnixConn) error {
	if err := eventfd.Send(conn, eventfd.KindSignal, []*eventfd.FD{s.fd}); err != nil {
		return fmt.Errorf("signal: Send: %w", err)
	}
	return nil
}

// Receive reads one Signal sent with Send from conn. The descriptor
// arrives close-on-exec. A message that is not a Signal from Send is an
// error wrapping ErrWrongKind or ErrMalformed, and every descriptor that came
// with it is closed.
func Receive(conn *net.UnixConn) (*Signal, error) {
	fds, err := eventfd.Receive(conn, eventfd.KindSignal)
	if err != nil {
		return nil, fmt.Errorf("signal: Receive: %w", err)
	}
	return newSignal(fds[0]), nil
}
