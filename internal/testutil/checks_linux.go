package testutil

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// CheckClosedError fails the test unless err, returned by op on a closed
// primitive of type typ ("Semaphore"), wraps os.ErrClosed and says "use of
// closed typ", not that a file was closed.
func CheckClosedError(t testing.TB, typ, op string, err error) {
	t.Helper()
	want := "use of closed " + typ
	switch {
	case err == nil:
		t.Errorf("%s after Close: no error", op)
	case !errors.Is(err, os.ErrClosed):
		t.Errorf("%s after Close: %v, want an error wrapping os.ErrClosed", op, err)
	case !strings.Contains(err.Error(), want):
		t.Errorf("%s after Close: %q, want it to say %q", op, err, want)
	case strings.Contains(err.Error(), "file already closed"):
		t.Errorf("%s after Close: %q speaks of a file", op, err)
	}
}

// ForEachPassCredSocket runs f, as a subtest, on each kind of connected
// Unix socket pair (stream, datagram, seqpacket), both as *net.UnixConn and
// as plain *os.File, with SO_PASSCRED set on the receiving end, so that
// credentials arrive beside whatever descriptors are sent.
func ForEachPassCredSocket(t *testing.T, f func(t *testing.T, send, recv syscall.Conn)) {
	for _, typ := range []struct {
		name string
		typ  int
	}{{"stream", unix.SOCK_STREAM}, {"dgram", unix.SOCK_DGRAM}, {"seqpacket", unix.SOCK_SEQPACKET}} {
		for _, asConn := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/conn=%v", typ.name, asConn), func(t *testing.T) {
				fds, err := unix.Socketpair(unix.AF_UNIX, typ.typ|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					t.Fatal(err)
				}
				if err := unix.SetsockoptInt(fds[1], unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
					t.Fatal(err)
				}
				fa, fb := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
				defer fa.Close()
				defer fb.Close()
				var send, recv syscall.Conn = fa, fb
				if asConn {
					ca, err := net.FileConn(fa)
					if err != nil {
						t.Fatal(err)
					}
					defer ca.Close()
					cb, err := net.FileConn(fb)
					if err != nil {
						t.Fatal(err)
					}
					defer cb.Close()
					send, recv = ca.(*net.UnixConn), cb.(*net.UnixConn)
				}
				f(t, send, recv)
			})
		}
	}
}
