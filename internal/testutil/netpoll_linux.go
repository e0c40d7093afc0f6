package testutil

import (
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A PolledEventfd is the baseline of a blocked wait: a non-blocking
// eventfd held by one *os.File, which its readers wait on in the Go
// netpoller through RawConn.Read, with no queue of their own and no way to
// cancel one reader alone.
type PolledEventfd struct {
	FD int
	f  *os.File
}

// NewPolledEventfd makes a semaphore-mode eventfd holding init, registered
// with the netpoller, closed when the test ends.
func NewPolledEventfd(t testing.TB, init uint) *PolledEventfd {
	t.Helper()
	fd, err := unix.Eventfd(init, unix.EFD_SEMAPHORE|unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	// The number is kept, not asked of f: Fd() would make it blocking.
	p := &PolledEventfd{FD: fd, f: os.NewFile(uintptr(fd), "eventfd")}
	t.Cleanup(func() { p.f.Close() })
	return p
}

// Take blocks in the netpoller until it has read 1 from the counter.
func (p *PolledEventfd) Take() error {
	raw, err := p.f.SyscallConn()
	if err != nil {
		return err
	}
	var v uint64
	var rerr error
	if err := raw.Read(func(fd uintptr) bool {
		_, _, e := unix.Syscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&v)), 8)
		if e == unix.EAGAIN {
			return false
		}
		if e != 0 {
			rerr = e
		}
		return true
	}); err != nil {
		return err
	}
	return rerr
}

// Give adds n to the counter with one write(2).
func (p *PolledEventfd) Give(n uint64) error {
	_, err := unix.Write(p.FD, (*[8]byte)(unsafe.Pointer(&n))[:])
	return err
}
