package signal

import (
	"os/exec"
	"syscall"

	"github.com/eventsync/eventsync/internal/share"
)

// Errors of Inherited and Receive. They are the same values in every
// eventsync package.
var (
	// ErrNotInherited means no primitive of that name was passed to this
	// process.
	ErrNotInherited = share.ErrNotInherited
	// ErrWrongKind means the primitive passed under that name, or received,
	// is not a Signal.
	ErrWrongKind = share.ErrWrongKind
	// ErrMalformed means the environment entry or the message was not
	// written by PassTo or Send.
	ErrMalformed = share.ErrMalformed
	// ErrTaken means Inherited was already called for that name.
	ErrTaken = share.ErrTaken
)

// PassTo makes s available, under name, to the process that cmd will start:
// there, Inherited(name) returns a Signal on the same count. Call it
// before cmd.Start; it may be called for several primitives on one command,
// and for one primitive on several commands. name is 1 to 255 ASCII letters,
// digits, '_', '-' or '.'.
//
// PassTo appends a duplicate descriptor to cmd.ExtraFiles and names it in
// cmd.Env, starting from os.Environ() if cmd.Env is nil. The duplicate stays
// open in this process until cmd is garbage collected; close the files in
// cmd.ExtraFiles after cmd.Start to release it at once.
func (s *Signal) PassTo(cmd *exec.Cmd, name string) error {
	fd, err := s.counter().Share()
	if err != nil {
		return opError("PassTo", err)
	}
	return share.PassTo(cmd, name, kind, fd)
}

// Inherited returns the Signal that the parent passed under name with
// PassTo. It checks what the environment claimed when this process started —
// that the name was passed, as a Signal, on an eventfd in counter mode
// that was open then — and fails with an error wrapping ErrNotInherited,
// ErrWrongKind, ErrMalformed, os.ErrClosed, ErrNotEventfd or ErrWrongMode
// otherwise, or ErrTaken if it was already called for name. The descriptor
// is made close-on-exec again.
func Inherited(name string) (*Signal, error) {
	p, err := share.Inherited(name, kind)
	if err != nil {
		return nil, err
	}
	return newSignal(p.FDs[0]), nil
}

// Send passes s over conn, a Unix socket such as a *net.UnixConn, with
// SCM_RIGHTS, to a process that calls Receive.
func (s *Signal) Send(conn syscall.Conn) error {
	fd, err := s.counter().Share()
	if err != nil {
		return opError("Send", err)
	}
	return share.Send(conn, kind, fd)
}

// Receive reads one Signal sent with Send from conn, a Unix socket. The
// descriptor arrives close-on-exec. A message that is not a Signal from
// Send is an error wrapping ErrWrongKind or ErrMalformed, and every
// descriptor that came with it is closed.
func Receive(conn syscall.Conn) (*Signal, error) {
	p, err := share.Receive(conn, kind)
	if err != nil {
		return nil, err
	}
	return newSignal(p.FDs[0]), nil
}
