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
// socket. File and FromFile trade the bare eventfd with programs in other
// languages and with the kernel. The formats, for those programs, are in the
// README's "Sharing with other processes" section.
//
// # Importing it beside os/signal
//
// This package's name is that of os/signal. A file that needs both names
// one of them, for example:
//
//	import (
//		ossignal "os/signal"
//
//		"github.com/eventsync/eventsync/signal"
//	)
package signal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"github.com/eventsync/eventsync/internal/eventfd"
	"github.com/eventsync/eventsync/internal/race"
	"github.com/eventsync/eventsync/internal/share"
	"github.com/eventsync/eventsync/internal/waitq"
)

// Errors returned when adopting a descriptor with FromFile, Inherited or
// Receive. They are the same values in every eventsync package.
var (
	// ErrNotEventfd means the descriptor is not an eventfd.
	ErrNotEventfd = eventfd.ErrNotEventfd
	// ErrWrongMode means the eventfd is in semaphore mode, not counter mode.
	ErrWrongMode = eventfd.ErrWrongMode
)

// A Signal is a count of notifications, shared by goroutines and processes.
// Make one with New, FromFile, Inherited or Receive; the zero value is not
// usable, and its methods panic saying so.
//
// In this process, goroutines blocked in Wait are served in the order they
// arrived: each wakeup gives the whole count to the first of them. Between
// processes, whichever process reads first takes the count.
//
// A Notify synchronizes before the Wait or TryWait that returns the count it
// added to, and before the receive from a Ready channel that it closes, in
// the sense of the Go memory model.
//
// A Signal that becomes unreachable closes its descriptor; Close does it at
// once.
type Signal struct {
	count   *count
	q       *waitq.Queue
	cleanup runtime.Cleanup
}

// kind describes a Signal to the sharing protocols. Its ID is part of the
// wire format.
var kind = share.Kind{Name: "signal", Type: "Signal", ID: 2, Modes: []eventfd.Mode{eventfd.Counter}}

// count is the eventfd, and how its waiters are served. It is also the
// address at which the race detector is told of Notify's edges.
type count struct {
	fd *eventfd.FD
}

func (c *count) Take(uint64, func() bool) (uint64, error) { return c.fd.Read() }

// GiveBack puts back a count taken for a Wait whose context was done first.
func (c *count) GiveBack(v uint64) {
	if v > 0 {
		_ = c.fd.Saturate(v)
	}
}

func (c *count) Pending() (bool, error) {
	pending, err := c.fd.Pending()
	if pending {
		// The receive from Ready's channel sees the Notify.
		race.Acquire(c.race())
	}
	return pending, err
}

func (c *count) race() unsafe.Pointer { return unsafe.Pointer(c) }

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
	c := &count{fd: fd}
	s := &Signal{count: c, q: waitq.New(fd, c)}
	s.cleanup = runtime.AddCleanup(s, closeAll, s.q)
	return s
}

// closeAll gives the descriptor back when a Signal is collected unclosed.
func closeAll(q *waitq.Queue) {
	if q.Close() == nil {
		q.FD().Close()
	}
}

// fd returns s's eventfd, or panics if s was not made by a constructor.
func (s *Signal) fd() *eventfd.FD {
	if s == nil || s.count == nil {
		panic("signal: use of a Signal not made by New, FromFile, Inherited or Receive")
	}
	return s.count.fd
}

// Notify adds one notification. It panics if s is closed.
func (s *Signal) Notify() { s.NotifyN(1) }

// NotifyN adds n notifications. It never blocks: a count that would pass
// 0xfffffffffffffffe, the most an eventfd holds, stays at that limit (it is
// pending either way) — unless a process holding the descriptor has cleared
// O_NONBLOCK on it (see the README's limits). NotifyN(0) adds nothing. It
// panics if s is closed.
func (s *Signal) NotifyN(n uint64) {
	fd := s.fd()
	if n == 0 {
		if fd.Closed() {
			panic("signal: Notify on closed Signal")
		}
		return
	}
	race.ReleaseMerge(s.count.race())
	err := fd.Write(n)
	if err == eventfd.ErrOverflow {
		err = fd.Saturate(n)
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
	fd := s.fd()
	done := ctx.Done()
	select {
	case <-done:
		return 0, ctx.Err()
	default:
	}
	if !s.q.Busy() {
		v, err := fd.Read()
		if err != nil {
			return 0, opError("Wait", err)
		}
		if v != 0 {
			race.Acquire(s.count.race())
			return v, nil
		}
	}
	v, err := s.q.Wait(ctx, 0)
	if err != nil {
		if err == ctx.Err() {
			return 0, err
		}
		return 0, opError("Wait", err)
	}
	race.Acquire(s.count.race())
	return v, nil
}

// TryWait returns the pending count and resets it to zero, or reports false
// if nothing is pending, a goroutine of this process is already waiting
// (it is first in line), or s is closed.
func (s *Signal) TryWait() (uint64, bool) {
	fd := s.fd()
	if s.q.Busy() {
		return 0, false
	}
	v, err := fd.Read()
	if err != nil || v == 0 {
		return 0, false
	}
	race.Acquire(s.count.race())
	return v, true
}

// Ready returns a channel that is closed when notifications are pending (or
// s is closed), for use in a select beside other channels; then call TryWait
// or Wait to take them. Ready takes nothing, so a caller that stops listening
// loses nothing; another goroutine or process may take the count between the
// channel closing and the TryWait. The channel is shared by every caller
// until it closes. Until then, this process keeps one goroutine and one
// descriptor watching the eventfd, whether or not anybody still receives
// from the channel; the next notification or Close lets them go.
func (s *Signal) Ready() <-chan struct{} {
	s.fd()
	return s.q.Ready()
}

// Value reports the pending count, as the kernel reports it in
// /proc/self/fdinfo, without taking it.
func (s *Signal) Value() (uint64, error) {
	v, err := s.fd().Value()
	if err != nil {
		return 0, opError("Value", err)
	}
	return v, nil
}

// File returns a new descriptor for the Signal's eventfd, for a process that
// does not use this package. The caller closes it; closing it does not affect
// s. It is close-on-exec: to hand it to a child, pass it in
// exec.Cmd.ExtraFiles.
func (s *Signal) File() (*os.File, error) {
	f, err := s.fd().Dup()
	if err != nil {
		return nil, opError("File", err)
	}
	return f, nil
}

// Close closes this process's handle. Goroutines blocked in Wait return an
// error wrapping os.ErrClosed, as do later calls; channels from Ready are
// closed; Notify panics. Other processes holding the eventfd are not
// affected. Close returns an error wrapping os.ErrClosed if s is already
// closed.
func (s *Signal) Close() error {
	fd := s.fd()
	if err := s.q.Close(); err != nil {
		return opError("Close", err)
	}
	s.cleanup.Stop()
	if err := fd.Close(); err != nil {
		return opError("Close", err)
	}
	return nil
}

// opError names the operation that failed, and says "use of closed Signal"
// for a closed Signal.
func opError(op string, err error) error {
	if errors.Is(err, os.ErrClosed) {
		err = eventfd.Closed("Signal")
	}
	return fmt.Errorf("signal: %s: %w", op, err)
}
