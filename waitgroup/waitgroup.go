// Package waitgroup provides a sync.WaitGroup whose counter can be shared
// with other processes: members in child processes call Done, and waiters in
// any process return when the counter reaches zero.
//
// A WaitGroup has sync.WaitGroup's method set (Add, Done, Go, Wait), plus
// WaitContext, Value and Close. Waiting is done by the Go runtime's
// netpoller, so a blocked Wait holds no OS thread.
//
// # How it works across processes
//
// An eventfd becomes readable when its counter is above zero, never when it
// reaches zero, so one eventfd cannot make waiters wake at zero. A WaitGroup
// is three:
//
//   - the counter, in semaphore mode: Add(n) writes n, Done reads 1. A read
//     that finds it at zero is a Done too many, and panics;
//   - a "reached zero" eventfd: whoever brings the counter to zero writes it,
//     if anybody waits, which wakes every waiting process to look at the
//     counter again;
//   - the number of processes with goroutines waiting, so that Done can skip
//     that write when nobody waits.
//
// Every step is a single system call on a kernel counter, so a process that
// crashes cannot leave the WaitGroup corrupted: at worst it is a member that
// never called Done (and waiters wait for it), or a waiter that never left
// (and later Done calls write "reached zero" for nobody).
//
// # Sharing with other processes
//
// PassTo hands a WaitGroup to a child started with os/exec, which takes it with
// Inherited; Send and Receive hand it to an unrelated process over a Unix
// socket. A child learns what it inherits from the EVENTSYNC_FDS
// environment variable: a space-separated list of name:kind:fd[,fd...]
// entries, where kind is "semaphore", "signal" or "waitgroup" and the fds
// are its descriptor numbers, for example
//
//	EVENTSYNC_FDS=jobs:semaphore:3 done:waitgroup:4,5,6
//
// A program in another language finds its descriptor there. A WaitGroup
// is three descriptors, and its protocol is this package's alone.
package waitgroup

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/eventsync/eventsync/internal/eventfd"
)

// A WaitGroup waits for a collection of goroutines and processes to finish.
//
// The rules of sync.WaitGroup apply, across processes: calls with a positive
// delta that start the counter from zero must happen before a Wait; a
// WaitGroup may be reused once every Wait of the previous round has
// returned; a counter made negative panics, in the process that made it so,
// and leaves the counter as it was.
type WaitGroup struct {
	// mu is held for reading by each Add, which is several system calls on
	// several descriptors, and for writing by Close: an Add that brings the
	// counter to zero always gets to wake the waiters.
	mu     sync.RWMutex
	closed bool

	count   *eventfd.FD // the counter, semaphore mode
	zero    *eventfd.FD // written when the counter reaches zero while somebody waits
	waiting *eventfd.FD // goroutines waiting, in every process; semaphore mode
	q       *eventfd.Queue
}

// New returns a WaitGroup with a zero counter. On systems other than Linux
// it returns an error satisfying errors.Is(err, errors.ErrUnsupported).
func New() (*WaitGroup, error) {
	fds := make([]*eventfd.FD, 0, 3)
	for _, m := range eventfd.KindWaitGroup.Modes {
		fd, err := eventfd.New(0, m)
		if err != nil {
			for _, fd := range fds {
				fd.Close()
			}
			return nil, fmt.Errorf("waitgroup: New: %w", err)
		}
		fds = append(fds, fd)
	}
	return newWaitGroup(fds), nil
}

func newWaitGroup(fds []*eventfd.FD) *WaitGroup {
	wg := &WaitGroup{count: fds[0], zero: fds[1], waiting: fds[2]}
	wg.q = eventfd.NewQueue(wg.zero, wg.serve, func(uint64) {})
	// While this process has waiters it counts itself in, before its
	// poller first looks at the counter: a Done that brings the counter to
	// zero after that look then knows to wake it.
	wg.q.OnPoll(
		func() { _ = wg.waiting.Write(1) },
		func() { _, _ = wg.waiting.Take(1) },
	)
	return wg
}

func (wg *WaitGroup) fds() []*eventfd.FD {
	return []*eventfd.FD{wg.count, wg.zero, wg.waiting}
}

// serve releases a waiter once the counter is zero.
func (wg *WaitGroup) serve(w *eventfd.Waiter) bool {
	pending, err := wg.count.Pending()
	if err != nil {
		w.Err = err
		return true
	}
	return !pending
}

// Add adds delta, which may be negative, to the counter. If the counter
// becomes zero, every Wait in every process returns. If it would become
// negative, Add panics and leaves it unchanged; it also panics if wg is
// closed.
func (wg *WaitGroup) Add(delta int) {
	wg.mu.RLock()
	defer wg.mu.RUnlock()
	if wg.closed {
		panic("waitgroup: Add on closed WaitGroup")
	}
	switch {
	case delta > 0:
		switch err := wg.count.Write(uint64(delta)); err {
		case nil:
		case os.ErrClosed:
			panic("waitgroup: Add on closed WaitGroup")
		case eventfd.ErrOverflow:
			panic("waitgroup: WaitGroup counter overflow")
		default:
			panic("waitgroup: Add: " + err.Error())
		}
	case delta < 0:
		ok, err := wg.count.Take(uint64(-delta))
		switch {
		case err == os.ErrClosed:
			panic("waitgroup: Add on closed WaitGroup")
		case err != nil:
			panic("waitgroup: Add: " + err.Error())
		case !ok:
			panic("sync: negative WaitGroup counter")
		}
		wg.reachedZero()
	}
}

// Done decrements the counter by one. It panics if the counter is already
// zero, or if wg is closed.
func (wg *WaitGroup) Done() {
	wg.Add(-1)
}

// reachedZero wakes the waiters of every process if the counter is zero and
// anybody waits. Waiters look at the counter again when woken, so a wakeup
// for a counter that has since gone up again is harmless.
func (wg *WaitGroup) reachedZero() {
	above, waiting, err := eventfd.PendingPair(wg.count, wg.waiting)
	if err == nil && !above && waiting {
		_ = wg.zero.Saturate(1)
	}
}

// Go calls f in a new goroutine and adds that task to the WaitGroup. When f
// returns, the task is removed from the WaitGroup.
//
// As with sync.WaitGroup.Go, if f panics the task is not removed: the panic
// is fatal to the process, and Wait must not return first and race it.
func (wg *WaitGroup) Go(f func()) {
	wg.Add(1)
	go func() {
		defer func() {
			if x := recover(); x != nil {
				// Calling Done would let Wait return and race the fatal
				// panic, possibly exiting the process before it reports.
				panic(x)
			}
			// f returned, normally or through runtime.Goexit.
			wg.Done()
		}()
		f()
	}()
}

// Wait blocks until the counter is zero. It also returns if wg is closed
// meanwhile; WaitContext tells the two apart.
func (wg *WaitGroup) Wait() {
	_ = wg.WaitContext(context.Background())
}

// WaitContext blocks until the counter is zero, ctx is done, or wg is
// closed. It returns nil when the counter reached zero, ctx.Err() if ctx was
// done first (or already), and an error wrapping os.ErrClosed if wg is
// closed. A WaitContext that fails changes nothing.
func (wg *WaitGroup) WaitContext(ctx context.Context) error {
	done := ctx.Done()
	select {
	case <-done:
		return ctx.Err()
	default:
	}
	if !wg.q.Busy() {
		pending, err := wg.count.Pending()
		if err != nil {
			return fmt.Errorf("waitgroup: Wait: %w", err)
		}
		if !pending {
			return nil
		}
	}
	if _, err := wg.q.Wait(ctx, 0); err != nil {
		if err == ctx.Err() {
			return err
		}
		return fmt.Errorf("waitgroup: Wait: %w", err)
	}
	return nil
}

// Value reports the counter, as the kernel reports it in /proc/self/fdinfo.
func (wg *WaitGroup) Value() (uint64, error) {
	v, err := wg.count.Value()
	if err != nil {
		return 0, fmt.Errorf("waitgroup: Value: %w", err)
	}
	return v, nil
}

// Close closes this process's handle. Goroutines blocked in WaitContext
// return an error wrapping os.ErrClosed (Wait simply returns), as do later
// calls; Add and Done panic. Other processes are not affected. Close returns
// an error wrapping os.ErrClosed if wg is already closed.
func (wg *WaitGroup) Close() error {
	wg.mu.Lock()
	closed := wg.closed
	wg.closed = true
	wg.mu.Unlock()
	if closed {
		return fmt.Errorf("waitgroup: Close: %w", os.ErrClosed)
	}
	if err := wg.q.Close(); err != nil {
		return fmt.Errorf("waitgroup: Close: %w", err)
	}
	wg.count.Close()
	wg.waiting.Close()
	return nil
}
