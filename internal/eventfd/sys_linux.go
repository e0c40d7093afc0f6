package eventfd

import (
	"fmt"
	"math"
	"math/bits"
	"os"
	"strconv"
	"unsafe"

	"github.com/eventsync/eventsync/internal/kernel"
	"golang.org/x/sys/unix"
)

func sysCreate(init uint64, mode Mode) (int, error) {
	flags := unix.EFD_CLOEXEC | unix.EFD_NONBLOCK
	if mode == Semaphore {
		flags |= unix.EFD_SEMAPHORE
	}
	// eventfd(2) takes a 32-bit initial value and unix.Eventfd silently
	// truncates a larger one (0x100000005 would become 5): write those.
	initval := uint(0)
	if init <= math.MaxUint32 {
		initval = uint(init)
	}
	fd, err := unix.Eventfd(initval, flags)
	if err != nil {
		return -1, kernel.EventfdError(err, mode == Semaphore)
	}
	if init > math.MaxUint32 {
		if err := sysWrite(fd, init); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}

// sysAdopt duplicates fd, checks it, and makes the duplicate non-blocking.
func sysAdopt(fd int, mode Mode) (int, error) {
	dup, err := sysDup(fd)
	if err != nil {
		return -1, err
	}
	if err := check(dup, mode); err != nil {
		unix.Close(dup)
		return -1, err
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return -1, os.NewSyscallError("fcntl", err)
	}
	return dup, nil
}

// check tells whether fd is an eventfd in the given mode. The kernel names
// the inode "anon_inode:[eventfd]"; since Linux 6.5 it also shows
// "eventfd-semaphore:" in fdinfo, and where it does not, the mode cannot be
// told and is taken on trust (see modeIn).
func check(fd int, mode Mode) error {
	var buf [64]byte
	n, err := unix.Readlink("/proc/self/fd/"+strconv.Itoa(fd), buf[:])
	if err != nil {
		return os.NewSyscallError("readlink", err)
	}
	if string(buf[:n]) != "anon_inode:[eventfd]" {
		return fmt.Errorf("descriptor %d is %q: %w", fd, buf[:n], ErrNotEventfd)
	}
	info, err := fdinfo(fd)
	if err != nil {
		return err
	}
	if found, ok := modeIn(info); ok && found != mode {
		return fmt.Errorf("eventfd is in %v mode, want %v mode: %w", found, mode, ErrWrongMode)
	}
	return nil
}

// offLo and offHi encode the offset -1 ("the current position") for
// preadv2's split 64-bit argument, on 32- and 64-bit machines alike.
const (
	offLo = ^uintptr(0)
	offHi = uintptr(uint64(math.MaxUint64) >> (bits.UintSize - 1) >> 1)
)

// sysRead reads the counter without blocking. Both ways cannot block, so
// both are made as raw system calls, without telling the scheduler.
//
// A shared descriptor is read with preadv2(RWF_NOWAIT), which fails with
// EAGAIN on an empty eventfd even when another process has cleared
// O_NONBLOCK on the shared file description: no peer can make this read
// block a thread. Kernels before 5.8 refuse the flag on an eventfd: there a
// shared descriptor is read as readPolled says. A private one, whose
// O_NONBLOCK only this package sets, is read with read(2), which the kernel
// serves faster.
func sysRead(fd int, shared bool) (uint64, error) {
	var v uint64
	err := sysReadInto(fd, shared, &v)
	return v, err
}

// sysReadInto is sysRead that has the kernel copy what it takes to *dst,
// and leaves *dst as it was when it takes nothing. A member's record gives
// dst in memory its survivors can see: the copy is part of the system call,
// so a process killed at any moment leaves the permit either in the counter
// or in its record, never in neither.
func sysReadInto(fd int, shared bool, dst *uint64) error {
	switch {
	case !shared:
		return readRetrying(fd, readRaw, dst)
	case kernel.NoWaitRead():
		return readRetrying(fd, readNoWait, dst)
	}
	return readPolled(fd, dst)
}

// The ways a read is made.
const (
	readRaw      = iota // read(2) as a raw system call: it cannot block
	readNoWait          // preadv2(RWF_NOWAIT) as a raw system call: it cannot block
	readBlocking        // read(2) that might block, made so that the scheduler knows
)

// readRetrying reads the counter the given way, again after EINTR; EAGAIN
// is an empty counter.
func readRetrying(fd int, how int, dst *uint64) error {
	iov := unix.Iovec{Base: (*byte)(unsafe.Pointer(dst))}
	iov.SetLen(8)
	for {
		var e unix.Errno
		switch how {
		case readRaw:
			_, _, e = unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(dst)), 8)
		case readNoWait:
			_, _, e = unix.RawSyscall6(unix.SYS_PREADV2, uintptr(fd), uintptr(unsafe.Pointer(&iov)), 1, offLo, offHi, unix.RWF_NOWAIT)
		default:
			_, _, e = unix.Syscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(dst)), 8)
		}
		switch e {
		case 0, unix.EAGAIN:
			return nil
		case unix.EINTR:
			continue
		}
		return os.NewSyscallError("read", e)
	}
}

func sysWrite(fd int, v uint64) error {
	for {
		_, err := unix.Write(fd, (*[8]byte)(unsafe.Pointer(&v))[:])
		switch err {
		case nil:
			return nil
		case unix.EAGAIN:
			return ErrOverflow
		case unix.EINTR:
			continue
		case unix.EINVAL:
			// Only the value 2^64-1 is refused this way.
			return ErrOverflow
		}
		return os.NewSyscallError("write", err)
	}
}

// sysWriteRaw is sysWrite as a raw system call: nothing runs between the
// caller's last instruction and the kernel's, which keeps a recorded give's
// window (holdings struck, write not yet made) to a few instructions. It
// can block only where sysWrite can (a peer cleared O_NONBLOCK and the
// counter is full), and would then hold its P as well as its thread.
func sysWriteRaw(fd int, v uint64) error {
	for {
		_, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&v)), 8)
		switch e {
		case 0:
			return nil
		case unix.EAGAIN, unix.EINVAL:
			return ErrOverflow
		case unix.EINTR:
			continue
		}
		return os.NewSyscallError("write", e)
	}
}

func sysClose(fd int) error {
	if err := unix.Close(fd); err != nil {
		return os.NewSyscallError("close", err)
	}
	return nil
}

func sysPending(fd int) (bool, error) {
	fds := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if err := pollNow(fds[:]); err != nil {
		return false, err
	}
	return fds[0].Revents&unix.POLLIN != 0, nil
}

func sysPendingPair(a, b int) (bool, bool, error) {
	fds := [2]unix.PollFd{{Fd: int32(a), Events: unix.POLLIN}, {Fd: int32(b), Events: unix.POLLIN}}
	if err := pollNow(fds[:]); err != nil {
		return false, false, err
	}
	return fds[0].Revents&unix.POLLIN != 0, fds[1].Revents&unix.POLLIN != 0, nil
}

// pollNow asks poll(2) which descriptors are readable, without waiting.
func pollNow(fds []unix.PollFd) error {
	for {
		_, err := unix.Poll(fds, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("poll", err)
		}
		return nil
	}
}

func sysDup(fd int) (int, error) {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		if err == unix.EBADF {
			return -1, fmt.Errorf("descriptor %d: %w", fd, os.ErrClosed)
		}
		return -1, os.NewSyscallError("fcntl", err)
	}
	return dup, nil
}

func sysSetNonblock(fd int) error {
	if err := unix.SetNonblock(fd, true); err != nil {
		return os.NewSyscallError("fcntl", err)
	}
	return nil
}

// sysOwn checks a descriptor number that another process handed us, then
// makes it close-on-exec and non-blocking.
func sysOwn(fd int, mode Mode) error {
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		if err == unix.EBADF {
			return fmt.Errorf("descriptor %d is not open: %w", fd, os.ErrClosed)
		}
		return os.NewSyscallError("fcntl", err)
	}
	if err := check(fd, mode); err != nil {
		return err
	}
	unix.CloseOnExec(fd)
	return sysSetNonblock(fd)
}

func sysCount(fd int) (uint64, error) {
	info, err := fdinfo(fd)
	if err != nil {
		return 0, err
	}
	count, err := parseCount(info)
	if err != nil {
		return 0, fmt.Errorf("/proc/self/fdinfo/%d: %w", fd, err)
	}
	return count, nil
}

// fdinfo returns the text of /proc/self/fdinfo/fd.
func fdinfo(fd int) ([]byte, error) {
	f, err := unix.Open("/proc/self/fdinfo/"+strconv.Itoa(fd), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("open fdinfo", err)
	}
	defer unix.Close(f)
	var buf [512]byte
	n, err := unix.Read(f, buf[:])
	if err != nil {
		return nil, os.NewSyscallError("read fdinfo", err)
	}
	return buf[:n], nil
}
