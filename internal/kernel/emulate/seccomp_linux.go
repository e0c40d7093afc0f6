package emulate

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"github.com/eventsync/eventsync/internal/kernel"
	"golang.org/x/sys/unix"
)

// auditArch is the AUDIT_ARCH_* value seccomp reports for this GOARCH.
var auditArch = map[string]uint32{
	"amd64": unix.AUDIT_ARCH_X86_64,
	"arm64": unix.AUDIT_ARCH_AARCH64,
}

// Offsets into struct seccomp_data: the call's number, its architecture, and
// the low 32 bits of argument i (both architectures are little-endian).
const (
	offNr   = 0
	offArch = 4
)

func offArg(i int) uint32 { return 16 + 8*uint32(i) }

func stmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }

func jump(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
}

const (
	ldW  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	jeq  = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	jge  = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	jset = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
	ret  = unix.BPF_RET | unix.BPF_K
)

func fail(errno unix.Errno) unix.SockFilter {
	return stmt(ret, unix.SECCOMP_RET_ERRNO|uint32(errno)&unix.SECCOMP_RET_DATA)
}

// failIfArg makes call nr fail with errno when argument arg has any of the
// bits of mask set. It expects the call's number in the accumulator, and
// leaves it there.
func failIfArg(nr uint32, arg int, mask uint32, errno unix.Errno) []unix.SockFilter {
	return []unix.SockFilter{
		jump(jeq, nr, 0, 4),
		stmt(ldW, offArg(arg)),
		jump(jset, mask, 0, 1),
		fail(errno),
		stmt(ldW, offNr),
	}
}

// Filter returns p's seccomp program for this machine.
func (p *Profile) Filter() ([]unix.SockFilter, error) {
	arch, ok := auditArch[runtime.GOARCH]
	first, ok2 := p.firstMissing[runtime.GOARCH]
	if !ok || !ok2 {
		return nil, fmt.Errorf("kernel profile %s: no system call table for %s", p.Name, runtime.GOARCH)
	}
	prog := []unix.SockFilter{
		stmt(ldW, offArch),
		jump(jeq, arch, 1, 0),
		stmt(ret, unix.SECCOMP_RET_ALLOW), // another ABI: not ours to judge
		stmt(ldW, offNr),
	}
	if !p.NoWaitRead {
		// Before 5.8, eventfd had no read_iter, and preadv2 refused every
		// RWF_ flag on it with EOPNOTSUPP. (Regular files took RWF_NOWAIT
		// from 4.14 on; eventsync reads nothing else with it.)
		prog = append(prog, failIfArg(unix.SYS_PREADV2, 5, unix.RWF_NOWAIT, unix.EOPNOTSUPP)...)
	}
	switch {
	case !p.Eventfd2:
		prog = append(prog, jump(jeq, unix.SYS_EVENTFD2, 0, 1), fail(unix.ENOSYS))
	case !p.EFDSemaphore:
		prog = append(prog, failIfArg(unix.SYS_EVENTFD2, 1, unix.EFD_SEMAPHORE, unix.EINVAL)...)
	}
	prog = append(prog,
		jump(jge, uint32(first), 0, 1),
		fail(unix.ENOSYS),
		stmt(ret, unix.SECCOMP_RET_ALLOW),
	)
	return prog, nil
}

// Install makes this process, every thread of it, and every process it
// starts from now on, see the system calls of p's kernel. It cannot be
// undone. A profile without the fdinfo mode line also makes
// kernel.ModeInFdinfo report false (/proc cannot be filtered).
func Install(p *Profile) error {
	prog, err := p.Filter()
	if err != nil {
		return err
	}
	if !p.Eventfd2 {
		// Start the netpoller first: the runtime makes an eventfd of its
		// own as it does, and must not meet a profile without eventfd2.
		// (Only here: that eventfd would show up in tests that count them.)
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		r.Close()
		w.Close()
	}

	// no_new_privs lets an unprivileged process install a filter; it is
	// set on this thread, and TSYNC copies it, with the filter, to every
	// other thread of the process.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_SET_NO_NEW_PRIVS)", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	tid, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if e != 0 {
		return os.NewSyscallError("seccomp", e)
	}
	if tid != 0 {
		return fmt.Errorf("seccomp: thread %d could not take the filter", tid)
	}
	if !p.ModeLine {
		kernel.WithoutModeLine()
	}
	return nil
}

// FromEnv installs the profile that EVENTSYNC_KERNEL_PROFILE names, if it
// names one, and returns it (nil for none).
func FromEnv() (*Profile, error) {
	name := os.Getenv(Env)
	if name == "" {
		return nil, nil
	}
	p, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	return p, Install(p)
}
