package kernel

import (
	"os"
	"strconv"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

var (
	noWaitRead   = sync.OnceValue(probeNoWaitRead)
	modeInFdinfo = sync.OnceValue(probeModeInFdinfo)
	pidfd        = sync.OnceValue(probePidfd)
	pidfdGetfd   = sync.OnceValue(probePidfdGetfd)
)

// probeNoWaitRead reads a new, empty eventfd with preadv2(RWF_NOWAIT):
// EAGAIN means the kernel took the flag. Kernels before 5.8 answer
// EOPNOTSUPP (eventfd had no read_iter), before 4.6 ENOSYS (no preadv2).
func probeNoWaitRead() bool {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var v uint64
	iov := unix.Iovec{Base: (*byte)(unsafe.Pointer(&v))}
	iov.SetLen(8)
	for {
		_, _, e := unix.Syscall6(unix.SYS_PREADV2, uintptr(fd), uintptr(unsafe.Pointer(&iov)), 1, ^uintptr(0), ^uintptr(0), unix.RWF_NOWAIT)
		if e == unix.EINTR {
			continue
		}
		return e == unix.EAGAIN
	}
}

// probeModeInFdinfo looks for the mode line in the fdinfo of a new
// semaphore-mode eventfd.
func probeModeInFdinfo() bool {
	if hideModeLine.Load() {
		return false
	}
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK|unix.EFD_SEMAPHORE)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	info, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return false
	}
	return HasModeLine(info)
}

func probePidfd() bool {
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// probePidfdGetfd takes a copy of one of this process's own descriptors
// through its own pidfd.
func probePidfdGetfd() bool {
	pfd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return false
	}
	defer unix.Close(pfd)
	fd, err := unix.PidfdGetfd(pfd, pfd, 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// EventfdError turns what eventfd2(2) answered into the error to return
// from a constructor: where the kernel lacks eventfd2 (ENOSYS: before
// 2.6.27, or built without CONFIG_EVENTFD) or a flag eventsync passes
// (EINVAL: EFD_SEMAPHORE before 2.6.30), a MissingError that names the
// facility and the version that brought it.
func EventfdError(err error, semaphore bool) error {
	if err != unix.ENOSYS && err != unix.EINVAL {
		return os.NewSyscallError("eventfd", err)
	}
	if semaphore {
		return &MissingError{Facility: "eventfd2 with EFD_SEMAPHORE", Since: SinceEFDSemaphore, Err: err}
	}
	return &MissingError{Facility: "eventfd2 with EFD_CLOEXEC and EFD_NONBLOCK", Since: SinceEventfd2, Err: err}
}
