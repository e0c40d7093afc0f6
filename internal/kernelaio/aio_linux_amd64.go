//go:build linux && amd64

package kernelaio

import (
	"errors"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Constants from <linux/aio_abi.h>.
const (
	iocbCmdPread  = 0      // IOCB_CMD_PREAD
	iocbFlagResfd = 1 << 0 // IOCB_FLAG_RESFD: signal aio_resfd on completion
)

// iocb mirrors struct iocb from <linux/aio_abi.h> for 64-bit little-endian
// (amd64). On little-endian the PADDED(aio_key, aio_rw_flags) macro puts
// aio_key first. 64 bytes, no implicit padding.
type iocb struct {
	data      uint64 // aio_data: echoed back in io_event.data
	key       uint32 // aio_key: set by the kernel, must be 0
	rwFlags   uint32 // aio_rw_flags: RWF_* flags
	opcode    uint16 // aio_lio_opcode: IOCB_CMD_*
	reqprio   int16  // aio_reqprio
	fildes    uint32 // aio_fildes
	buf       uint64 // aio_buf: user buffer address
	nbytes    uint64 // aio_nbytes
	offset    int64  // aio_offset
	reserved2 uint64 // aio_reserved2: must be 0
	flags     uint32 // aio_flags: IOCB_FLAG_*
	resfd     uint32 // aio_resfd: eventfd signalled when IOCB_FLAG_RESFD is set
}

// ioEvent mirrors struct io_event (32 bytes).
type ioEvent struct {
	data uint64 // aio_data of the completed iocb
	obj  uint64 // user address of the completed iocb
	res  int64  // bytes transferred, or -errno
	res2 int64  // secondary result
}

// Compile-time layout checks.
var (
	_ [64]byte = [unsafe.Sizeof(iocb{})]byte{}
	_ [32]byte = [unsafe.Sizeof(ioEvent{})]byte{}
)

// Read reads up to len(buf) bytes from the start of the file at path using
// Linux native AIO, asking the kernel to add 1 to the eventfd efd when the
// read completes. It creates a one-slot AIO context, submits a single
// IOCB_CMD_PREAD with IOCB_FLAG_RESFD, reaps the completion with
// io_getevents and destroys the context. It returns the number of bytes
// read.
//
// After a successful return the kernel has added exactly 1 to the eventfd
// counter. efd must stay open until Read returns.
func Read(efd int, path string, buf []byte) (n int, err error) {
	if len(buf) == 0 {
		return 0, errors.New("kernelaio: empty buffer")
	}
	if efd < 0 {
		return 0, os.NewSyscallError("kernelaio: eventfd", unix.EBADF)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)

	// The kernel keeps the raw addresses of cb and buf after io_submit
	// returns (the read may complete asynchronously), so they must neither
	// move nor be freed until the completion is reaped. Pinning forces them
	// onto the (non-moving) heap and documents that requirement.
	cb := &iocb{
		data:   0xC0FFEE,
		opcode: iocbCmdPread,
		fildes: uint32(fd),
		buf:    uint64(uintptr(unsafe.Pointer(&buf[0]))),
		nbytes: uint64(len(buf)),
		offset: 0,
		flags:  iocbFlagResfd,
		resfd:  uint32(efd),
	}
	cbs := &[1]*iocb{cb} // io_submit takes struct iocb *iocbpp[]
	var pin runtime.Pinner
	pin.Pin(cb)
	pin.Pin(cbs)
	pin.Pin(&buf[0])
	defer pin.Unpin()

	// io_setup(nr_events, &ctx): ctx must be zero on entry.
	// Deferred after pin.Unpin so it runs first: io_destroy waits for any
	// in-flight request, so cb and buf stay pinned until the kernel is done.
	var ctx uint64
	if _, _, e := unix.Syscall(unix.SYS_IO_SETUP, 1, uintptr(unsafe.Pointer(&ctx)), 0); e != 0 {
		return 0, os.NewSyscallError("io_setup", e)
	}
	defer func() {
		if _, _, e := unix.Syscall(unix.SYS_IO_DESTROY, uintptr(ctx), 0, 0); e != 0 && err == nil {
			err = os.NewSyscallError("io_destroy", e)
		}
	}()

	// io_submit(ctx, nr, iocbpp) returns the number of iocbs accepted.
	r, _, e := unix.Syscall(unix.SYS_IO_SUBMIT, uintptr(ctx), 1, uintptr(unsafe.Pointer(cbs)))
	if e != 0 {
		return 0, os.NewSyscallError("io_submit", e)
	}
	if r != 1 {
		return 0, os.NewSyscallError("io_submit", unix.EAGAIN)
	}

	ev, err := getEvent(ctx)
	if err != nil {
		return 0, err
	}
	runtime.KeepAlive(cb)
	runtime.KeepAlive(cbs)
	runtime.KeepAlive(buf)

	if ev.obj != uint64(uintptr(unsafe.Pointer(cb))) || ev.data != cb.data {
		return 0, errors.New("kernelaio: io_getevents returned an unexpected event")
	}
	if ev.res < 0 { // negative result is -errno of the read
		return 0, os.NewSyscallError("pread (aio)", unix.Errno(-ev.res))
	}
	return int(ev.res), nil
}

// getEvent waits for the one completion of ctx. io_getevents(ctx, min_nr,
// nr, events, timeout=NULL) blocks until the request completes; Go's
// async-preemption signals (SIGURG) can interrupt it with EINTR, so it is
// retried.
func getEvent(ctx uint64) (ioEvent, error) {
	var ev ioEvent
	for {
		r, _, e := unix.Syscall6(unix.SYS_IO_GETEVENTS, uintptr(ctx), 1, 1,
			uintptr(unsafe.Pointer(&ev)), 0, 0)
		switch {
		case e == unix.EINTR:
		case e != 0:
			return ev, os.NewSyscallError("io_getevents", e)
		case r == 1:
			return ev, nil
		}
	}
}
