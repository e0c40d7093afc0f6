// Package signal provides coalescing notifications on a Linux eventfd, for
// goroutines of one process and for many processes.
//
// A Signal counts notifications. Wait blocks until the count is above zero,
// then returns it and resets it to zero in one step: notifications that
// arrive while nobody waits are summed, never lost, and each one is
// delivered exactly once. The count lives in the process until the Signal
// is first shared; then it is an eventfd in counter mode, and a C or Python
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

	"github.com/eventsync/eventsync/internal/counter"
	"github.com/eventsync/eventsync/internal/eventfd"
	"github.com/eventsync/eventsync/internal/race"
	"github.com/eventsync/eventsync/internal/share"
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
	c       *counter.Counter // see package counter
	cleanup runtime.Cleanup
}

// kind describes a Signal to the sharing protocols. Its ID is part of the
// wire format.
var kind = share.Kind{Name: "signal", Type: "Signal", ID: 2, Modes: []eventfd.Mode{eventfd.Counter}}

// New returns a Signal with nothing pending. On systems other than Linux it
// returns an error satisfying errors.Is(err, errors.ErrUnsupported).
//
// The count lives in this process, at the cost of a mutex, until the Signal
// is first shared with File, PassTo or Send, which moves it into a new
// eventfd (close-on-exec and non-blocking) that is the one truth from then
// on.
func New() (*Signal, error) {
	if err := eventfd.Supported(eventfd.Counter); err != nil {
		return nil, fmt.Errorf("signal: New: %w", err)
	}
	s := newSignal(nil)
	if shareAtNew {
		if _, err := s.c.Share(); err != nil {
			return nil, fmt.Errorf("signal: New: %w", err)
		}
	}
	return s, nil
}

// shareAtNew makes New move the count into an eventfd at once. The tests
// set it, from EVENTSYNC_TEST_SHARED, to run every test on both states.
var shareAtNew bool

// FromFile returns a Signal on the eventfd that f holds, for example one
// made by a C program or one the kernel writes. f must be an eventfd in
// counter mode: otherwise FromFile returns an error wrapping ErrNotEventfd
// or ErrWrongMode. FromFile duplicates the descriptor, as net.FileConn does:
// the caller still closes f, and Close leaves f open.
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

// newSignal returns a Signal on fd, or on a count in the process if fd is
// nil.
func newSignal(fd *eventfd.FD) *Signal {
	s := &Signal{c: counter.New(0, eventfd.Counter)}
	if fd != nil {
		s.c = counter.Shared(fd)
	}
	// Nobody can be waiting on a Signal that is collected.
	s.cleanup = runtime.AddCleanup(s, func(c *counter.Counter) { _ = c.Close() }, s.c)
	return s
}

// counter returns s's count, or panics if s was not made by a constructor.
func (s *Signal) counter() *counter.Counter {
	if s == nil || s.c == nil {
		panic("signal: use of a Signal not made by New, FromFile, Inherited or Receive")
	}
	return s.c
}

// Notify adds one notification. It panics if s is closed.
func (s *Signal) Notify() { s.NotifyN(1) }

// NotifyN adds n notifications. It never blocks: a count that would pass
// 0xfffffffffffffffe, the most an eventfd holds, stays at that limit (it is
// pending either way) — unless a process holding the descriptor has cleared
// O_NONBLOCK on it (see the README's limits). NotifyN(0) adds nothing. It
// panics if s is closed.
func (s *Signal) NotifyN(n uint64) {
	c := s.counter()
	if n == 0 {
		if c.Closed() {
			panic("signal: Notify on closed Signal")
		}
		return
	}
	race.ReleaseMerge(c.Race())
	switch err := c.Saturate(n); err {
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
	c := s.counter()
	done := ctx.Done()
	select {
	case <-done:
		return 0, ctx.Err()
	default:
	}
	for i := 0; i <= spinReads && !c.Queue().Busy(); i++ {
		if i > 0 {
			runtime.Gosched()
		}
		v, err := c.Read()
		if err != nil {
			return 0, opError("Wait", err)
		}
		if v != 0 {
			race.Acquire(c.Race())
			return v, nil
		}
	}
	v, err := c.Queue().Wait(ctx, 0)
	if err != nil {
		if err == ctx.Err() {
			return 0, err
		}
		return 0, opError("Wait", err)
	}
	race.Acquire(c.Race())
	return v, nil
}

// spinReads is how many more times a Wait that finds nothing pending looks
// again, yielding the processor between looks, before it queues: a
// notification that arrives within microseconds is then taken without
// parking and waking anybody. Looks stop as soon as a goroutine of this
// process is queued.
const spinReads = 20

// TryWait returns the pending count and resets it to zero, or reports false
// if nothing is pending, a goroutine of this process is already waiting
// (it is first in line), or s is closed.
func (s *Signal) TryWait() (uint64, bool) {
	c := s.counter()
	if c.Queue().Busy() {
		return 0, false
	}
	v, err := c.Read()
	if err != nil || v == 0 {
		return 0, false
	}
	race.Acquire(c.Race())
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
	return s.counter().Queue().Ready()
}

// Value reports the pending count, without taking it: once s is shared, as
// the kernel reports it in /proc/self/fdinfo.
func (s *Signal) Value() (uint64, error) {
	v, err := s.counter().Value()
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
	fd, err := s.counter().Share()
	if err != nil {
		return nil, opError("File", err)
	}
	f, err := fd.Dup()
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
	if err := s.counter().Close(); err != nil {
		return opError("Close", err)
	}
	s.cleanup.Stop()
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
