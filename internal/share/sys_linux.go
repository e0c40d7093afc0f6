package share

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// oobSpace has room for the descriptors of any kind (three at most) and one
// more, so that a message with too many is seen as such rather than cut to
// size, and for the credentials a socket with SO_PASSCRED receives beside
// them.
var oobSpace = unix.CmsgSpace(4*(maxKindFDs+1)) + unix.CmsgSpace(unix.SizeofUcred)

func sysClose(fd int) { unix.Close(fd) }

func sysCloseOnExec(fd int) error {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
	return err
}

func sendmsg(raw syscall.RawConn, p []byte, fds []int) (int, error) {
	oob := unix.UnixRights(fds...)
	var n int
	var serr error
	err := raw.Write(func(fd uintptr) bool {
		n, serr = unix.SendmsgN(int(fd), p, oob, nil, 0)
		return serr != unix.EAGAIN
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return n, os.NewSyscallError("sendmsg", err)
	}
	return n, nil
}

func recvmsg(raw syscall.RawConn, p []byte) (message, error) {
	oob := make([]byte, oobSpace)
	var n, oobn, flags int
	var rerr error
	err := raw.Read(func(fd uintptr) bool {
		n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), p, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return message{}, os.NewSyscallError("recvmsg", err)
	}
	m := message{n: n, ctrunc: flags&unix.MSG_CTRUNC != 0, trunc: flags&unix.MSG_TRUNC != 0}
	m.fds, m.err = parseRights(oob[:oobn])
	return m, nil
}

// parseRights returns every descriptor in the SCM_RIGHTS control messages of
// oob, even when it also reports an error, so that the caller can close
// them. Credentials (SCM_CREDENTIALS, sent by the kernel when the socket has
// SO_PASSCRED) are passed over.
func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("control message: %v: %w", err, ErrMalformed)
	}
	var fds []int
	var bad error
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_CREDENTIALS {
			continue
		}
		rights, err := unix.ParseUnixRights(&m)
		if err != nil {
			bad = fmt.Errorf("control message is not SCM_RIGHTS: %w", ErrMalformed)
			continue
		}
		fds = append(fds, rights...)
	}
	return fds, bad
}

// runtimeFDs returns the descriptors that an epoll instance of this process
// watches: the Go runtime's netpoller registers its own eventfd in one, and
// no inherited descriptor is ever registered before Inherited adopts it.
func runtimeFDs() map[int]bool {
	busy := make(map[int]bool)
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return busy
	}
	for _, e := range ents {
		if link, _ := os.Readlink("/proc/self/fd/" + e.Name()); link != "anon_inode:[eventpoll]" {
			continue
		}
		busy[mustAtoi(e.Name())] = true
		info, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err != nil {
			continue
		}
		// Lines of the form "tfd:        5 events:       19 data: ...".
		for _, line := range strings.Split(string(info), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "tfd:" {
				busy[mustAtoi(f[1])] = true
			}
		}
	}
	return busy
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}
