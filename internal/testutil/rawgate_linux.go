package testutil

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A RawGate lets one goroutine wait for another without the race detector
// seeing any synchronisation between them: it is a blocking eventfd written
// and read with raw system calls, which the detector does not model. Tests
// of the memory model use it to order two goroutines in time while leaving
// the primitive under test as the only happens-before edge the detector can
// see. The waiting goroutine holds an OS thread while it waits.
type RawGate struct {
	fd int
}

// NewRawGate returns a closed gate, released when the test ends.
func NewRawGate(t testing.TB) *RawGate {
	t.Helper()
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_SEMAPHORE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return &RawGate{fd: fd}
}

// Open lets one Wait through. It must not call into the testing package:
// that would synchronise.
func (g *RawGate) Open() {
	one := uint64(1)
	for {
		_, _, e := unix.Syscall(unix.SYS_WRITE, uintptr(g.fd), uintptr(unsafe.Pointer(&one)), 8)
		if e != unix.EINTR {
			if e != 0 {
				panic("RawGate.Open: " + e.Error())
			}
			return
		}
	}
}

// Wait blocks until Open has been called once more than Wait has
// returned: each Open lets exactly one Wait through.
func (g *RawGate) Wait() {
	var v uint64
	for {
		_, _, e := unix.Syscall(unix.SYS_READ, uintptr(g.fd), uintptr(unsafe.Pointer(&v)), 8)
		if e != unix.EINTR {
			if e != 0 {
				panic("RawGate.Wait: " + e.Error())
			}
			return
		}
	}
}
