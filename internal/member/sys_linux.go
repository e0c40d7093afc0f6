package member

import (
	"bytes"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// sysCreate makes a sealable memfd of n bytes and maps it.
func sysCreate(n int) (int, []byte, error) {
	fd, err := unix.MemfdCreate("eventsync-record", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, nil, os.NewSyscallError("memfd_create", err)
	}
	if err := unix.Ftruncate(fd, int64(n)); err != nil {
		unix.Close(fd)
		return -1, nil, os.NewSyscallError("ftruncate", err)
	}
	mem, err := unix.Mmap(fd, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return -1, nil, os.NewSyscallError("mmap", err)
	}
	return fd, mem, nil
}

// seals fix a record's size, so that no holder can shrink it under the
// others' mappings (which would make their next access fault).
const seals = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL

func sysSeal(fd int) error {
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		return os.NewSyscallError("fcntl F_ADD_SEALS", err)
	}
	return nil
}

// sysMap maps a record made by another process after checking that it is
// a sealed memfd of the right size.
func sysMap(fd int, n int) ([]byte, error) {
	got, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if err != nil || got&seals != seals {
		return nil, fmt.Errorf("descriptor %d is not a sealed memfd: %w", fd, ErrBadRecord)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, os.NewSyscallError("fstat", err)
	}
	if st.Size != int64(n) {
		return nil, fmt.Errorf("descriptor %d has %d bytes, not %d: %w", fd, st.Size, n, ErrBadRecord)
	}
	mem, err := unix.Mmap(fd, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	return mem, nil
}

func sysUnmap(mem []byte) { _ = unix.Munmap(mem) }

func sysClose(fd int) { _ = unix.Close(fd) }

func sysDup(fd int) (int, error) {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", err)
	}
	return dup, nil
}

// sysSelf reads this process's identity.
func sysSelf() (identity, error) {
	pid := os.Getpid()
	start, err := startTime(pid)
	if err != nil {
		return identity{}, err
	}
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/pid", &st); err != nil {
		return identity{}, os.NewSyscallError("stat /proc/self/ns/pid", err)
	}
	return identity{pid: int64(pid), start: start, pidns: st.Ino}, nil
}

// startTime reads a process's start time, in clock ticks after boot, from
// the 22nd field of /proc/PID/stat.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold anything:
	// fields are counted after its last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := bytes.Fields(b[i+1:])
	const startField = 22 - 3 // fields[0] is field 3, the state
	if len(fields) <= startField {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields)+2)
	}
	return strconv.ParseUint(string(fields[startField]), 10, 64)
}
