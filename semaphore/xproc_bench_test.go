//go:build linux

package semaphore

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"unsafe"

	"github.com/eventsync/eventsync/internal/testutil"
	"golang.org/x/sys/unix"
)

// The cross-process ping-pong: this process releases "ping" and acquires
// "pong"; a child acquires "ping" and releases "pong". One iteration is one
// round trip, two hand-offs between processes.
//
// impl=raw-blocking is the floor: two blocking eventfds, this process
// reading and writing them with raw system calls, the child a C program
// built with gcc that does the same. impl=eventsync is two Semaphores
// passed to a child that is this test binary again.

// pingPongC is the C peer: it takes from descriptor 3 and gives to 4, until
// it is killed.
const pingPongC = `#include <stdint.h>
#include <unistd.h>
int main(void) {
	uint64_t v;
	for (;;) {
		if (read(3, &v, 8) != 8) return 1;
		v = 1;
		if (write(4, &v, 8) != 8) return 1;
	}
}
`

func init() {
	// pingpong: the child side of BenchmarkCrossProcess.
	childRoles["pingpong"] = func([]string) error {
		ping, err := Inherited("ping")
		if err != nil {
			return err
		}
		pong, err := Inherited("pong")
		if err != nil {
			return err
		}
		ctx := context.Background()
		for ping.Acquire(ctx, 1) == nil {
			pong.Release(1)
		}
		return nil
	}
}

func BenchmarkCrossProcess(b *testing.B) {
	b.Run("impl=raw-blocking", func(b *testing.B) {
		bin := testutil.BuildC(b, "pingpong", pingPongC)
		var fds [2]int
		for i := range fds {
			fd, err := unix.Eventfd(0, unix.EFD_SEMAPHORE|unix.EFD_CLOEXEC)
			if err != nil {
				b.Fatal(err)
			}
			fds[i] = fd
		}
		defer unix.Close(fds[0])
		defer unix.Close(fds[1])
		cmd := exec.Command(bin)
		for i, fd := range fds { // the child's copies, closed here once it has started
			dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(dup), []string{"ping", "pong"}[i]))
		}
		startPeer(b, cmd)
		one := uint64(1)
		var v uint64
		roundTrip := func() {
			if _, _, e := unix.Syscall(unix.SYS_WRITE, uintptr(fds[0]), uintptr(unsafe.Pointer(&one)), 8); e != 0 {
				b.Fatal(e)
			}
			if _, _, e := unix.Syscall(unix.SYS_READ, uintptr(fds[1]), uintptr(unsafe.Pointer(&v)), 8); e != 0 {
				b.Fatal(e)
			}
		}
		pingPong(b, roundTrip)
	})
	b.Run("impl=eventsync", func(b *testing.B) {
		ping, pong := newSem(b, 0), newSem(b, 0)
		cmd := testutil.Child(b, "pingpong")
		if err := ping.PassTo(cmd, "ping"); err != nil {
			b.Fatal(err)
		}
		if err := pong.PassTo(cmd, "pong"); err != nil {
			b.Fatal(err)
		}
		startPeer(b, cmd)
		ctx := context.Background()
		pingPong(b, func() {
			ping.Release(1)
			if err := pong.Acquire(ctx, 1); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// startPeer starts the child side, closes this process's copies of what it
// inherits, and kills it at the end of the benchmark.
func startPeer(b *testing.B, cmd *exec.Cmd) {
	b.Helper()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}
	b.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

// pingPong warms up, then times b.N round trips.
func pingPong(b *testing.B, roundTrip func()) {
	for range 100 {
		roundTrip()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		roundTrip()
	}
}
