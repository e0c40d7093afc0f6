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
//     counter again; the last waiting process to leave drains it, so that it
//     is not left readable;
//   - the number of processes with goroutines waiting, so that Done can skip
//     that write when nobody waits.
//
// Add(n) and Done are one system call on the counter each, so a process
// that crashes cannot leave the counter half-changed by them; Add(-n) for
// n > 1 is n reads, and a process killed among them leaves the counter
// lowered by the reads it made. Otherwise a crash leaves at worst a member
// that never called Done (waiters wait for it), or a waiter that never left
// (later Done calls write "reached zero" for nobody, and waiters drain it).
//
// # Sharing with other processes
//
// PassTo hands a WaitGroup to a child started with os/exec, which takes it
// with Inherited; Send and Receive hand it to an unrelated process over a
// Unix socket. The formats are in the README's "Sharing with other
// processes" section; a WaitGroup is three descriptors, and its protocol is
// this package's alone.
//
// # Switching from sync
//
// Change the import path: a waitgroup.WaitGroup's zero value is ready to
// use, like a sync.WaitGroup's, and has its methods and their rules.
package waitgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/eventsync/eventsync/internal/eventfd"
	"github.com/eventsync/eventsync/internal/race"
	"github.com/eventsync/eventsync/internal/share"
	"github.com/eventsync/eventsync/internal/waitq"
)

// A WaitGroup waits for a collection of goroutines and processes to finish.
//
// The zero value is ready to use: its eventfds are made on first use. New
// makes them at once and returns the error a first use would panic with.
// A WaitGroup must not be copied after first use.
//
// The rules of sync.WaitGroup apply, across processes: calls with a positive
// delta that start the counter from zero must happen before a Wait; a
// WaitGroup may be reused once every Wait of the previous round has
// returned; a counter made negative panics, in the process that made it so,
// and leaves the counter as it was.
//
// In the terminology of the Go memory model, a call to Done synchronizes
// before the return of any Wait call that it unblocks, in this process.
//
// A WaitGroup that becomes unreachable closes its descriptors; Close does it
// at once.
type WaitGroup struct {
	init sync.Mutex
	g    atomic.Pointer[group]
}

// group is what a WaitGroup is made of once used.
type group struct {
	// mu is held for reading by each Add, which is several system calls on
	// several descriptors, and for writing by Close: an Add that brings the
	// counter to zero always gets to wake the waiters.
	mu     sync.RWMutex
	closed bool

	count   *eventfd.FD // the counter, semaphore mode
	zero    *eventfd.FD // written when the counter reaches zero while somebody waits
	waiting *eventfd.FD // processes with goroutines waiting; semaphore mode
	q       *waitq.Queue
	cleanup runtime.Cleanup
}

// kind describes a WaitGroup to the sharing protocols: its counter, its
// "reached zero" eventfd and its count of waiting processes, in that order.
// Its ID is part of the wire format.
var kind = share.Kind{Name: "waitgroup", Type: "WaitGroup", ID: 3, Modes: []eventfd.Mode{eventfd.Semaphore, eventfd.Counter, eventfd.Semaphore}}

// New returns a WaitGroup with a zero counter, its eventfds made. On systems
// other than Linux it returns an error satisfying
// errors.Is(err, errors.ErrUnsupported).
func New() (*WaitGroup, error) {
	g, err := newGroup()
	if err != nil {
		return nil, fmt.Errorf("waitgroup: New: %w", err)
	}
	wg := new(WaitGroup)
	wg.adopt(g)
	return wg, nil
}

func newGroup() (*group, error) {
	fds := make([]*eventfd.FD, 0, len(kind.Modes))
	for _, m := range kind.Modes {
		fd, err := eventfd.New(0, m)
		if err != nil {
			for _, fd := range fds {
				fd.Close()
			}
			return nil, err
		}
		fds = append(fds, fd)
	}
	return groupOf(fds), nil
}

func groupOf(fds []*eventfd.FD) *group {
	g := &group{count: fds[0], zero: fds[1], waiting: fds[2]}
	g.q = waitq.New(g.zero, (*zeroPolicy)(g))
	return g
}

// adopt makes g wg's group, to be closed when wg is collected.
func (wg *WaitGroup) adopt(g *group) {
	g.cleanup = runtime.AddCleanup(wg, func(g *group) { _ = g.close() }, g)
	wg.g.Store(g)
}

// group returns wg's group, making it on first use.
func (wg *WaitGroup) group() *group {
	if g := wg.g.Load(); g != nil {
		return g
	}
	wg.init.Lock()
	defer wg.init.Unlock()
	if g := wg.g.Load(); g != nil {
		return g
	}
	g, err := newGroup()
	if err != nil {
		panic("waitgroup: making the WaitGroup's eventfds: " + err.Error())
	}
	wg.adopt(g)
	return g
}

func (g *group) race() unsafe.Pointer { return unsafe.Pointer(g) }

// zeroPolicy serves a waiter once the counter is zero. While this process
// has waiters it counts itself in the waiting count, before its poller first
// looks at the counter: a Done that brings the counter to zero after that
// look then knows to wake it.
type zeroPolicy group

func (p *zeroPolicy) Take(uint64, func() bool) (uint64, error) {
	zero, err := p.Pending()
	if !zero || err != nil {
		return 0, err
	}
	return 1, nil
}

func (p *zeroPolicy) GiveBack(uint64) {}

// Pending reports whether the counter is zero.
func (p *zeroPolicy) Pending() (bool, error) {
	above, err := p.count.Pending()
	return !above, err
}

func (p *zeroPolicy) StartWatch() { _ = p.waiting.Write(1) }

// StopWatch counts this process out, and the last process to stop drains
// "reached zero", so that it is not left readable for nobody. A process
// asleep on it must not lose its wakeup to that drain (epoll drops an event
// whose descriptor is no longer readable when it is collected), so the
// drain is followed by the look a Done makes: if anybody started waiting
// meanwhile and the counter is zero, they are woken again.
func (p *zeroPolicy) StopWatch() {
	_, _ = p.waiting.Take(1, nil)
	g := (*group)(p)
	if _, waiting, err := eventfd.PendingPair(g.count, g.waiting); err != nil || waiting {
		return
	}
	_, _ = g.zero.Read()
	g.reachedZero()
}

// Add adds delta, which may be negative, to the counter. If the counter
// becomes zero, every Wait in every process returns. If it would become
// negative, Add panics and leaves it unchanged; it also panics if wg is
// closed.
func (wg *WaitGroup) Add(delta int) {
	wg.group().add(delta, true)
}

func (g *group) add(delta int, panicIfClosed bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		if panicIfClosed {
			panic("waitgroup: Add on closed WaitGroup")
		}
		return
	}
	switch {
	case delta > 0:
		switch err := g.count.Write(uint64(delta)); err {
		case nil:
		case eventfd.ErrOverflow:
			panic("waitgroup: WaitGroup counter overflow")
		default:
			panic("waitgroup: Add: " + err.Error())
		}
	case delta < 0:
		race.ReleaseMerge(g.race())
		ok, err := g.count.Take(uint64(-delta), nil)
		switch {
		case err != nil:
			panic("waitgroup: Add: " + err.Error())
		case !ok:
			panic("sync: negative WaitGroup counter")
		}
		g.reachedZero()
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
func (g *group) reachedZero() {
	above, waiting, err := eventfd.PendingPair(g.count, g.waiting)
	if err == nil && !above && waiting {
		_ = g.zero.Saturate(1)
	}
}

// Go calls f in a new goroutine and adds that task to the WaitGroup. When f
// returns, the task is removed from the WaitGroup; if wg was closed
// meanwhile, that does nothing.
//
// As with sync.WaitGroup.Go, if f panics the task is not removed: the panic
// is fatal to the process, and Wait must not return first and race it.
func (wg *WaitGroup) Go(f func()) {
	g := wg.group()
	g.add(1, true)
	go func() {
		defer func() {
			if x := recover(); x != nil {
				// Calling Done would let Wait return and race the fatal
				// panic, possibly exiting the process before it reports.
				panic(x)
			}
			// f returned, normally or through runtime.Goexit.
			g.add(-1, false)
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
	g := wg.g.Load()
	if g == nil {
		// Never used: the counter is zero.
		return nil
	}
	if !g.q.Busy() {
		pending, err := g.count.Pending()
		if err != nil {
			return opError("Wait", err)
		}
		if !pending {
			race.Acquire(g.race())
			return nil
		}
	}
	if _, err := g.q.Wait(ctx, 0); err != nil {
		if err == ctx.Err() {
			return err
		}
		return opError("Wait", err)
	}
	race.Acquire(g.race())
	return nil
}

// Value reports the counter, as the kernel reports it in /proc/self/fdinfo.
func (wg *WaitGroup) Value() (uint64, error) {
	g := wg.g.Load()
	if g == nil {
		return 0, nil
	}
	v, err := g.count.Value()
	if err != nil {
		return 0, opError("Value", err)
	}
	return v, nil
}

// Close closes this process's handle. Goroutines blocked in WaitContext
// return an error wrapping os.ErrClosed (Wait simply returns), as do later
// calls; Add and Done panic; tasks started by Go that are still running
// finish without effect. Other processes are not affected. Close returns an
// error wrapping os.ErrClosed if wg is already closed.
func (wg *WaitGroup) Close() error {
	g := wg.group()
	g.cleanup.Stop()
	if err := g.close(); err != nil {
		return opError("Close", err)
	}
	return nil
}

func (g *group) close() error {
	g.mu.Lock()
	closed := g.closed
	g.closed = true
	g.mu.Unlock()
	if closed {
		return os.ErrClosed
	}
	return errors.Join(g.q.Close(), g.count.Close(), g.zero.Close(), g.waiting.Close())
}

func (g *group) fds() []*eventfd.FD {
	return []*eventfd.FD{g.count, g.zero, g.waiting}
}

// opError names the operation that failed, and says "use of closed
// WaitGroup" for a closed WaitGroup.
func opError(op string, err error) error {
	if errors.Is(err, os.ErrClosed) {
		err = eventfd.Closed("WaitGroup")
	}
	return fmt.Errorf("waitgroup: %s: %w", op, err)
}
