package testutil

import (
	"math"
	"math/bits"
	"net"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Eventfd makes an eventfd with unix.Eventfd(init, flags), closed when the
// test ends.
func Eventfd(t testing.TB, init uint, flags int) int {
	t.Helper()
	fd, err := unix.Eventfd(init, flags)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// EventfdFile makes an eventfd with unix.Eventfd(init, flags), as a peer
// (a C program) would, and returns its number and an *os.File named name
// that holds it; the file is closed when the test ends. Use the number, not
// f.Fd(), which would make a non-blocking descriptor blocking.
func EventfdFile(t testing.TB, init uint, flags int, name string) (fd int, f *os.File) {
	t.Helper()
	fd, err := unix.Eventfd(init, flags)
	if err != nil {
		t.Fatal(err)
	}
	f = os.NewFile(uintptr(fd), name)
	t.Cleanup(func() { f.Close() })
	return fd, f
}

// RawWriteRead is the floor of the benchmarks, on the raw eventfd fd (from
// Eventfd): for each b.Loop, a write(2) of 1 and a read(2) that takes it.
// It reports allocations.
func RawWriteRead(b *testing.B, fd int) {
	one := uint64(1)
	w := (*[8]byte)(unsafe.Pointer(&one))[:]
	var r [8]byte
	b.ReportAllocs()
	for b.Loop() {
		if _, err := unix.Write(fd, w); err != nil {
			b.Fatal(err)
		}
		if _, err := unix.Read(fd, r[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// RawWriteReadNoWait is the floor for a descriptor that other holders
// share, on the raw eventfd fd: for each b.Loop, a write(2) of 1 and a
// preadv2(RWF_NOWAIT) that takes it, the read a shared Semaphore must make
// because any holder may clear O_NONBLOCK. It reports allocations.
func RawWriteReadNoWait(b *testing.B, fd int) {
	// preadv2's offset -1 ("the file position"), split in two words.
	const (
		offLo = ^uintptr(0)
		offHi = uintptr(uint64(math.MaxUint64) >> (bits.UintSize - 1) >> 1)
	)
	one := uint64(1)
	w := (*[8]byte)(unsafe.Pointer(&one))[:]
	var r uint64
	iov := unix.Iovec{Base: (*byte)(unsafe.Pointer(&r))}
	iov.SetLen(8)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := unix.Write(fd, w); err != nil {
			b.Fatal(err)
		}
		if _, _, e := unix.Syscall6(unix.SYS_PREADV2, uintptr(fd), uintptr(unsafe.Pointer(&iov)), 1, offLo, offHi, unix.RWF_NOWAIT); e != 0 {
			b.Fatal(e)
		}
	}
}

// RawReadEmpty is the floor of a failed try, on the raw eventfd fd, which
// must be empty and non-blocking: for each b.Loop, a read(2) that fails
// with EAGAIN. It reports allocations.
func RawReadEmpty(b *testing.B, fd int) {
	var r [8]byte
	b.ReportAllocs()
	for b.Loop() {
		if _, err := unix.Read(fd, r[:]); err != unix.EAGAIN {
			b.Fatal(err)
		}
	}
}

// SocketPair makes a connected pair of Unix stream sockets: mine for this
// process, theirs to hand to a child in cmd.ExtraFiles (Start closes it
// here once the child runs). Both are closed when the test ends.
func SocketPair(t testing.TB) (mine *net.UnixConn, theirs *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := os.NewFile(uintptr(fds[0]), "mine")
	theirs = os.NewFile(uintptr(fds[1]), "theirs")
	t.Cleanup(func() { theirs.Close() })
	c, err := net.FileConn(m)
	m.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UnixConn), theirs
}
