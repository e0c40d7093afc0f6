package eventfd

import (
	"github.com/eventsync/eventsync/internal/kernel"
	"golang.org/x/sys/unix"
)

// What eventsync does on kernels that lack a facility it prefers (see
// internal/kernel, and the README's table of kernels).

// readPolled reads a shared descriptor where preadv2(RWF_NOWAIT) is refused
// (eventfd takes it since Linux 5.8). It asks poll(2) first and reads only
// a counter that is above zero, with read(2), which the O_NONBLOCK that
// eventsync keeps set makes fail with EAGAIN rather than wait.
//
// What weakens: if a peer has cleared O_NONBLOCK on the shared description
// and another process takes the last unit between the poll and the read,
// the read waits until the counter is written again. It is made as a system
// call the scheduler knows about, so it holds one thread, never a P: the
// other goroutines run on. Without the poll, every read of an empty counter
// would wait (a failing TryAcquire is the common case), so the poll narrows
// the hazard to that race for one more system call, which costs about what
// RWF_NOWAIT does. Setting O_NONBLOCK again before each read would race the
// same way, cost the same, and overrule a peer on the shared description.
func readPolled(fd int, dst *uint64) error {
	fds := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if err := pollNow(fds[:]); err != nil {
		return err
	}
	if fds[0].Revents&(unix.POLLIN|unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) == 0 {
		return nil
	}
	return readRetrying(fd, readBlocking, dst)
}

// modeIn returns the mode that an fdinfo text shows, and whether it shows
// one: kernels before 6.5 have no "eventfd-semaphore:" line, and there the
// mode cannot be told without taking from the counter (a read of a counter
// of 0 or 1 looks the same in both modes, and any read takes), so it is
// taken on trust.
func modeIn(info []byte) (Mode, bool) {
	if !kernel.ModeInFdinfo() {
		return 0, false
	}
	return parseMode(info)
}
