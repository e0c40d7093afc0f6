package share

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/eventsync/eventsync/internal/eventfd"
)

// A Send message is an 8-byte header with the descriptors as SCM_RIGHTS:
// the magic "evsy", the format version (1), the kind's ID, the number of
// descriptors, and a zero byte.
const (
	headerLen = 8
	version   = 1
	// maxKindFDs is the most descriptors a message carries: what a kind is
	// made of, less its optional descriptors, which never travel in one.
	maxKindFDs = 3
)

var magic = [4]byte{'e', 'v', 's', 'y'}

// Send passes fds to the process at the other end of conn, a Unix socket,
// with SCM_RIGHTS.
func Send(conn syscall.Conn, kind Kind, fds ...Exporter) error {
	if err := send(conn, kind, fds); err != nil {
		return fmt.Errorf("%s: Send: %w", kind.Name, err)
	}
	return nil
}

func send(conn syscall.Conn, kind Kind, fds []Exporter) error {
	raw, err := rawConn(conn)
	if err != nil {
		return err
	}
	nums := make([]int, 0, len(fds))
	defer func() {
		for _, n := range nums {
			sysClose(n)
		}
	}()
	for _, fd := range fds {
		dup, err := kind.export(fd)
		if err != nil {
			return err
		}
		nums = append(nums, dup)
	}
	if len(fds) != kind.sent() {
		return fmt.Errorf("a %s sends %d descriptors, not %d: %w", kind.Name, kind.sent(), len(fds), os.ErrInvalid)
	}
	hdr := [headerLen]byte{magic[0], magic[1], magic[2], magic[3], version, kind.ID, byte(len(fds))}
	n, err := sendmsg(raw, hdr[:], nums)
	if err != nil {
		return err
	}
	if n != len(hdr) {
		return io.ErrShortWrite
	}
	return nil
}

// export is fd.Export, whose failure on a closed descriptor says which
// primitive is closed rather than "file already closed".
func (k Kind) export(fd Exporter) (int, error) {
	dup, err := fd.Export()
	if err != nil && errors.Is(err, os.ErrClosed) && k.Type != "" {
		err = eventfd.Closed(k.Type)
	}
	return dup, err
}

// Receive reads one message written by Send from conn, a Unix socket, and
// returns its eventfds, checked against kind. Descriptors arrive
// close-on-exec (MSG_CMSG_CLOEXEC), and on any error every descriptor that
// arrived is closed.
func Receive(conn syscall.Conn, kind Kind) (Parts, error) {
	p, err := receive(conn, kind)
	if err != nil {
		return Parts{}, fmt.Errorf("%s: Receive: %w", kind.Name, err)
	}
	return p, nil
}

func receive(conn syscall.Conn, kind Kind) (Parts, error) {
	raw, err := rawConn(conn)
	if err != nil {
		return Parts{}, err
	}
	var hdr [headerLen]byte
	m, err := recvmsg(raw, hdr[:])
	if err != nil {
		return Parts{}, err
	}
	fail := func(err error) (Parts, error) {
		for _, fd := range m.fds {
			sysClose(fd)
		}
		return Parts{}, err
	}
	if err := checkMessage(hdr, m, kind); err != nil {
		return fail(err)
	}
	modes := kind.Modes[:len(kind.Modes)-kind.Optional]
	p := Parts{FDs: make([]*eventfd.FD, 0, len(modes)), Record: -1}
	for j, mode := range modes {
		fd, err := eventfd.Own(m.fds[j], mode)
		if err != nil {
			return fail(err)
		}
		p.FDs = append(p.FDs, fd)
	}
	if kind.Record {
		p.Record = m.fds[len(kind.Modes)]
	}
	return p, nil
}

// checkMessage checks a received message against what Send writes for kind.
func checkMessage(hdr [headerLen]byte, m message, kind Kind) error {
	switch {
	case m.err != nil:
		return m.err
	case m.ctrunc && int(hdr[6]) <= kind.sent() && m.n == headerLen:
		// Send sent no more than fit: the kernel could not install them.
		return fmt.Errorf("descriptors did not arrive, this process is at its descriptor limit: %w", syscall.EMFILE)
	case m.ctrunc:
		return fmt.Errorf("too many descriptors in one message: %w", ErrMalformed)
	case m.trunc:
		return fmt.Errorf("message is longer than Send writes: %w", ErrMalformed)
	case m.n != headerLen || [4]byte(hdr[:4]) != magic || hdr[4] != version:
		return fmt.Errorf("message is not from Send: %w", ErrMalformed)
	case len(m.fds) > maxKindFDs:
		return fmt.Errorf("too many descriptors in one message: %w", ErrMalformed)
	case hdr[5] != kind.ID:
		return fmt.Errorf("received a primitive of kind %d, not a %s: %w", hdr[5], kind.Name, ErrWrongKind)
	case int(hdr[6]) != kind.sent() || len(m.fds) != kind.sent():
		return fmt.Errorf("a %s has %d descriptors, message has %d: %w", kind.Name, kind.sent(), len(m.fds), ErrMalformed)
	}
	return nil
}

// message is what recvmsg read besides the header.
type message struct {
	n      int   // bytes of payload
	fds    []int // every descriptor that arrived, to own or close
	ctrunc bool  // MSG_CTRUNC: descriptors were dropped
	trunc  bool  // MSG_TRUNC: payload was cut
	err    error // a control message that is not SCM_RIGHTS or SCM_CREDENTIALS
}

func rawConn(conn syscall.Conn) (syscall.RawConn, error) {
	if conn == nil {
		return nil, fmt.Errorf("nil connection: %w", os.ErrInvalid)
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	return raw, nil
}
