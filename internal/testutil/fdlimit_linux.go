package testutil

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// A FullTable holds descriptors opened to fill this process's descriptor
// table, so that the next descriptor anybody asks for fails with EMFILE.
// It is for child processes: it lowers the process's descriptor limit.
type FullTable struct {
	fds []int
}

// FillDescriptorTable lowers the soft RLIMIT_NOFILE to a little above the
// descriptors open now, then opens /dev/null until open(2) fails with
// EMFILE. Call it in a child started by Child, never in the test process.
func FillDescriptorTable() (*FullTable, error) {
	// The runtime makes its netpoller on first need (a timer, a pipe) and
	// cannot run without it: make it now, while a descriptor is free.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	r.Close()
	w.Close()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	highest := 0
	for _, e := range ents {
		var n int
		if _, err := fmt.Sscan(e.Name(), &n); err == nil && n > highest {
			highest = n
		}
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return nil, err
	}
	lim.Cur = uint64(highest) + 64
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return nil, err
	}
	ft := &FullTable{}
	for {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == unix.EMFILE {
			return ft, nil
		}
		if err != nil {
			ft.Free()
			return nil, err
		}
		ft.fds = append(ft.fds, fd)
	}
}

// Free closes every descriptor the table was filled with.
func (ft *FullTable) Free() {
	for _, fd := range ft.fds {
		unix.Close(fd)
	}
	ft.fds = nil
}

// Full reports whether the table is still full: a descriptor cannot be
// made.
func (ft *FullTable) Full() bool {
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
		return false
	}
	return err == unix.EMFILE
}
