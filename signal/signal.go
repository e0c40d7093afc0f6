// Package signal provides coalescing notifications on a Linux eventfd, for
// goroutines of one process and for many processes.
//
// A Signal counts notifications. Wait blocks until the count is above zero,
// then returns it and resets it to zero in one step: notifications that
// arrive while nobody waits are summed, never lost, and each one is
// delivered exactly once. This is an eventfd in counter mode; a C or Python
// process holding the descriptor notifies with write(2) of an 8-byte count
// and waits with poll(2) and read(2), and the kernel itself can notify
// through one (Linux AIO's IOCB_FLAG_RESFD, io_uring's registered eventfd,
// cgroup events).
//
// Waiting is done by the Go runtime's netpoller, so a blocked Wait holds no
// OS thread, and it honours its context.
//
// # Sharing with other processes
//
// PassTo hands a Signal to a child started with os/exec, which takes it with
// Inherited; Send and Receive hand it to an unrelated process over a Unix
// socket. A child learns what it inherits from the EVENTSYNC_FDS
// environment variable: a space-separated list of name:kind:fd[,fd...]
// entries, where kind is "semaphore", "signal" or "waitgroup" and the fds
// are its descriptor numbers, for example
//
//	EVENTSYNC_FDS=jobs:semaphore:3 done:waitgroup:4,5,6
//
// A program in another language finds its descriptor there. Descriptors are
// close-on-exec everywhere but in the child they are passed to, and
// non-blocking: such a program must poll(2) before it reads.
package signal

import (
	"context"
	"fmt"
	"os"

	"github.com/eventsync/eventsync/internal/eventfd"
)

// Errors returned when adopting a descriptor with FromFile. They are the same
// values in every eventsync package.
var (
	// ErrNotEventfd means the descriptor is not an eventfd.
	ErrNotEventfd = eventfd.ErrNotEventfd
	// ErrWrongMode means the eventfd is in semaphore mode, not counter mode.
	ErrWrongMode = eventfd.ErrWrongMode
)

// A Signal is a count of notifications, shared by goroutines and processes.
//
// In this process, goroutines blocked in Wait are served in the order they
// arrived: each wakeup gives the whole count to the first of them. Between
// processes, whichever process reads first takes the count.
type Signal struct {
	fd *eventfd.FD
	q  *eventfd.Queue
}

// New returns a Signal with nothing pending, in a new eventfd that is
// close-on-exec and non-blocking. On systems other than Linux it returns an
// error satisfying errors.Is(err, errors.ErrUnsupported).
func New() (*Signal, error) {
	fd, err := eventfd.New(0, eventfd.Counter)
	if err != nil {
		return nil, fmt.Errorf("signal: New: %w", err)
	}
	return newSignal(fd), nil
}

// FromFile returns a Signal on the eventfd that f holds, for example one
// made by a C program or one the kernel writes. f must be an eventfd in
// counter mode: otherwise FromFile returns an error wrapping ErrNotEventfd
// or ErrWrongMode. FromFile duplicates the descriptor, as net.FileConn does:
// the caller still closes f, and Close leaves f open.
//
// The mode is checked where the kernel shows it (Linux 6.5 and later). Older
// kernels do not, and it cannot be told without taking from the counter, so
// there FromFile takes it on trust: a semaphore-mode eventfd is accepted, and
// each Wait on it returns 1, leaving the rest pending.
//
// FromFile sets O_NONBLOCK on the descriptor. The flag belongs to the open
// file description, so every process holding it sees the change: a C peer
// must poll(2) before it reads (see the README).
func FromFile(f *os.File) (*Signal, error) {
	fd, err := eventfd.Adopt(f, eventfd.Counter)
	if err != nil {
		return nil, fmt.Errorf("signal: FromFile: %w", err)
	}
	return newSignal(fd), nil
}

func newSignal(fd *eventfd.FD) *Signal {
	s := &Signal{fd: fd}
	s.q = eventfd.NewQueue(fd, s.serve, s.giveBack)
	return s
}

func (s *Signal) serve(w *eventfd.Waiter) bool {
	if w.Peek {
		pending, err := s.fd.Pending()
		return pending || err != nil
	}
	v, err := s.fd.Read()
	if err != nil {
		w.Err = err
		return true
	}
	w.Got = v
	return v != 0
}

// giveBack puts back a count taken for a Wait whose context was done first.
func (s *Signal) giveBack(v uint64) {
	if v > 0 {
		_ = s.fd.Saturate(v)
	}
}

// Notify adds one notification. It panics if s is closed.
func (s *Signal) Notify() { s.NotifyN(1) }

// NotifyN adds n notifications. It never blocks: a count that would pass
// 0xfffffffffffffffe, the most an eventfd holds, stays at that limit (it is
// pending either way) — unless a process holding the descriptor has cleared
// O_NONBLOCK on it (see the README's limits). NotifyN(0) adds nothing. It
// panics if s is closed.
func (s *Signal) NotifyN(n uint64) {
	if n == 0 {
		if s.fd.Closed() {
			panic("signal: Notify on closed Signal")
		}
		return
	}
	err := s.fd.Write(n)
	if err == eventfd.ErrOverflow {
		err = s.fd.Saturate(n)
	}
	switch err {
	case nil:
	case os.ErrClosed:
		panic("signal: Notify on closed Signal")
	default:
		panic("signal: Notify: " + err.Error())
	}
}

// Wait blocks until notifications are pending, then returns their count and
// resets it to zero. It fails with ctx.Err() if ctx is done first (or
// already), and with an error wrapping os.ErrClosed if s is closed; a Wait
// that fails takes nothing.
func (s *Signal) Wait(ctx context.Context) (uint64, error) {
	done := ctx.Done()
	select {
	case <-done:
		return 0, ctx.Err()
	default:
	}
	if !s.q.Busy() || s.q.OnlyPeek() {
		v, err := s.fd.Read()
		if err != nil {
			return 0, fmt.Errorf("signal: Wait: %w", err)
		}
		if v != 0 {
			return v, nil
		}
	}
	v, err := s.q.Wait(ctx, 0)
	if err != nil {
		if err == ctx.Err() {
			return 0, err
		}
		return 0, fmt.Errorf("signal: Wait: %w", err)
	}
	return v, nil
}

// TryWait returns the pending count and resets it to zero, or reports false
// if nothing is pending, a goroutine of this process is already waiting
// (it is first in line), or s is closed.
func (s *Signal) TryWait() (uint64, bool) {
	if s.q.Busy() && !s.q.OnlyPeek() {
		return 0, false
	}
	v, err := s.fd.Read()
	return v, err == nil && v != 0
}

// Ready returns a channel that is closed when notifications are pending (or
// s is closed), for use in a select beside other channels; then call TryWait
// or Wait to take them. Ready takes nothing, so a caller that stops listening
// loses nothing; another goroutine or process may take the count between the
// channel closing and the TryWait. The channel is shared by every caller
// until it closes, and after Close nothing stays behind.
func (s *Signal) Ready() <-chan struct{} {
	return s.q.Watch()
}

// Value reports the pending count, as the kernel reports it in
// /proc/self/fdinfo, without taking it.
func (s *Signal) Value() (uint64, error) {
	v, err := s.fd.Value()
	if err != nil {
		return 0, fmt.Errorf("signal: Value: %w", err)
	}
	return v, nil
}

// File returns a new descriptor for the Signal's eventfd, for a process that
// does not use this package. The caller closes it; closing it does not affect
// s. It is close-on-exec: to hand it to a child, pass it in
// exec.Cmd.ExtraFiles.
func (s *Signal) File() (*os.File, error) {
	f, err := s.fd.Dup()
	if err != nil {
		return nil, fmt.Errorf("signal: File: %w", err)
	}
	return f, nil
}

// Close closes this process's handle. Goroutines blocked in Wait return an
// error wrapping os.ErrClosed, as do later calls; channels from Ready are
// closed; Notify panics. Other processes holding the eventfd are not
// affected. Close returns an error wrapping os.ErrClosed if s is already
// closed.
func (s *Signal) Close() error {
	if err := s.q.Close(); err != nil {
		return fmt.Errorf("signal: Close: %w", err)
	}
	return nil
}
