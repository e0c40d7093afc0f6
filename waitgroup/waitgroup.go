// Package waitgroup provides a sync.WaitGroup whose counter can be shared
// with other processes: members in child processes call Done, and waiters in
// any process return when the counter reaches zero.
//
// A WaitGroup has sync.WaitGroup's method set (Add, Done, Go, Wait), plus
// WaitContext, Value, Close, and Start, which starts a process as a member
// whose share completes when it exits. Waiting is done by the Go runtime's
// netpoller, so a blocked Wait holds no OS thread.
//
// # How it works
//
// Until a WaitGroup is shared (PassTo, Send), nobody outside this process
// can see its counter, so it is an atomic integer in the process, as in
// sync.WaitGroup, and Wait parks goroutines in a queue that the Done which
// reaches zero serves. Sharing moves the counter into eventfds once; from
// then on they are the one truth.
//
// An eventfd becomes readable when its counter is above zero, never when it
// reaches zero, so one eventfd cannot make waiters wake at zero. A shared
// WaitGroup is three:
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
// lowered by the reads it made. A waiter that never left costs later Done
// calls a write of "reached zero" for nobody, which waiters drain. What a
// member that dies before Done leaves behind is the next section's subject.
//
// # When a process dies
//
// A process started with Start is a member whose share completes when it
// exits, whether or not it called Done, and never twice. Start adds one to
// the counter for it and hands it, beside the WaitGroup, a share token: an
// eventfd holding 1, made for that process alone. The process's first
// decrement (Done, Add with a negative delta, the end of a task started
// with Go) takes the token, then reads the counter. This process watches
// the child's exit in the netpoller (a pidfd in one epoll instance for all
// of them, no thread each) and, when it exits, takes the token if it is
// still there and does the Done for it; the next WaitContext to return
// reports the process in an *ExitError. Exactly one of the two gets the
// token. The one window is a process killed between its two reads, one
// system call apart: that Done is lost, and waiters wait as below. Start
// needs pidfds (Linux 5.3); without them it refuses, before starting
// anything. Once the WaitGroup that started a process is closed (or
// collected), that process is no longer watched.
//
// Members that joined any other way — PassTo and Inherited, Send and
// Receive, or a process started with Start passing the WaitGroup on, which
// passes it without its token — are not watched: their Adds and Dones stand
// as made, and nothing is completed for one that dies before Done. Waiters
// wait for it; whoever learns of the death (a parent, from cmd.Wait) may
// call Done in its place, which is what Start does for the processes it
// starts.
//
// # Sharing with other processes
//
// PassTo hands a WaitGroup to a child started with os/exec, which takes it
// with Inherited; Start does too, and watches the child's exit; Send and
// Receive hand it to an unrelated process over a Unix socket. The formats
// are in the README's "Sharing with other processes" section; a WaitGroup
// is three descriptors (four for a process started with Start, the fourth
// its share token), and its protocol is this package's alone.
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
	"math"
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
// The zero value is ready to use, and so is the WaitGroup New returns. A
// WaitGroup must not be copied after first use.
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
	// local is the counter while it lives in the process, or one of the
	// marks below.
	local atomic.Int64

	// mu is held for reading by each Add to a shared counter, which is
	// several system calls on several descriptors, and for writing by
	// Close and by the move to eventfds: an Add that brings the counter to
	// zero always gets to wake the waiters.
	mu     sync.RWMutex
	closed bool

	fds     atomic.Pointer[fds] // nil until shared
	q       *waitq.Queue
	cleanup runtime.Cleanup

	// token is, in a process started with Start, the share token its
	// parent passed, until the first decrement takes it.
	token atomic.Pointer[eventfd.FD]
	// starts are the processes this WaitGroup started with Start.
	starts starts
}

// Marks in group.local.
const (
	moved       = math.MinInt64     // the counter is in the eventfds
	closedLocal = math.MinInt64 + 1 // closed before it was ever shared
)

// fds are a shared WaitGroup's eventfds.
type fds struct {
	count   *eventfd.FD // the counter, semaphore mode
	zero    *eventfd.FD // written when the counter reaches zero while somebody waits
	waiting *eventfd.FD // processes with goroutines waiting; semaphore mode
}

func (f *fds) list() []share.Exporter { return []share.Exporter{f.count, f.zero, f.waiting} }

// kind describes a WaitGroup to the sharing protocols: its counter, its
// "reached zero" eventfd and its count of waiting processes, in that order,
// and, only for a process started with Start, its share token. Its ID is
// part of the wire format.
var kind = share.Kind{
	Name: "waitgroup", Type: "WaitGroup", ID: 3,
	Modes:    []eventfd.Mode{eventfd.Semaphore, eventfd.Counter, eventfd.Semaphore, eventfd.Semaphore},
	Optional: 1,
}

// New returns a WaitGroup with a zero counter, like a zero WaitGroup. On
// systems other than Linux it returns an error satisfying
// errors.Is(err, errors.ErrUnsupported).
func New() (*WaitGroup, error) {
	for _, m := range kind.Modes[:2] {
		if err := eventfd.Supported(m); err != nil {
			return nil, fmt.Errorf("waitgroup: New: %w", err)
		}
	}
	wg := new(WaitGroup)
	g := wg.group()
	if shareAtNew {
		if _, err := g.share(); err != nil {
			return nil, fmt.Errorf("waitgroup: New: %w", err)
		}
	}
	return wg, nil
}

// shareAtNew makes New move the counter into eventfds at once. The tests
// set it, from EVENTSYNC_TEST_SHARED, to run every test on both states.
var shareAtNew bool

// newGroup returns a group on f, or with its counter in the process if f is
// nil.
func newGroup(f *fds) *group {
	g := &group{}
	var zero *eventfd.FD
	if f != nil {
		g.local.Store(moved)
		g.fds.Store(f)
		zero = f.zero
	}
	g.q = waitq.New(zero, (*zeroPolicy)(g))
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
	g := newGroup(nil)
	wg.adopt(g)
	return g
}

func (g *group) race() unsafe.Pointer { return unsafe.Pointer(g) }

// share moves the counter into eventfds, if it is not in them yet, and
// returns them. Waiters queued before the move keep their place.
func (g *group) share() (*fds, error) {
	if f := g.fds.Load(); f != nil {
		return f, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if f := g.fds.Load(); f != nil {
		return f, nil
	}
	if g.closed {
		return nil, os.ErrClosed
	}
	var made []*eventfd.FD
	fail := func(err error) (*fds, error) {
		for _, fd := range made {
			fd.Close()
		}
		return nil, err
	}
	for _, m := range kind.Modes[1:3] {
		fd, err := eventfd.New(0, m)
		if err != nil {
			return fail(err)
		}
		made = append(made, fd)
	}
	// Stop the Adds to the counter in the process; those that come now
	// wait for mu, and find the eventfds.
	c := g.local.Swap(moved)
	count, err := eventfd.New(uint64(c), kind.Modes[0])
	if err != nil {
		g.local.Store(c)
		return fail(err)
	}
	f := &fds{count: count, zero: made[0], waiting: made[1]}
	g.fds.Store(f)
	g.q.Share(f.zero)
	return f, nil
}

// zeroPolicy serves a waiter once the counter is zero. While this process
// has waiters on a shared counter, it counts itself in the waiting count,
// before its poller first looks at the counter: a Done that brings the
// counter to zero after that look then knows to wake it.
type zeroPolicy group

func (p *zeroPolicy) Take(uint64, waitq.Stopper) (uint64, error) {
	zero, err := p.Pending()
	if !zero || err != nil {
		return 0, err
	}
	return 1, nil
}

func (p *zeroPolicy) GiveBack(uint64) {}

// Pending reports whether the counter is zero.
func (p *zeroPolicy) Pending() (bool, error) {
	switch c := p.local.Load(); c {
	case moved:
		f := p.fds.Load()
		if f == nil { // being moved: the poller looks once it is
			return false, nil
		}
		above, err := f.count.Pending()
		return !above, err
	case closedLocal:
		return false, os.ErrClosed
	default:
		return c == 0, nil
	}
}

func (p *zeroPolicy) StartWatch() { _ = p.fds.Load().waiting.Write(1) }

// StopWatch counts this process out, and the last process to stop drains
// "reached zero", so that it is not left readable for nobody. A process
// asleep on it must not lose its wakeup to that drain (epoll drops an event
// whose descriptor is no longer readable when it is collected), so the
// drain is followed by the look a Done makes: if anybody started waiting
// meanwhile and the counter is zero, they are woken again.
func (p *zeroPolicy) StopWatch() {
	f := p.fds.Load()
	_, _ = f.waiting.Take(1, nil)
	if _, waiting, err := eventfd.PendingPair(f.count, f.waiting); err != nil || waiting {
		return
	}
	_, _ = f.zero.Read()
	f.reachedZero()
}

// Add adds delta, which may be negative, to the counter. If the counter
// becomes zero, every Wait in every process returns. If it would become
// negative, Add panics and leaves it unchanged; it also panics if wg is
// closed.
func (wg *WaitGroup) Add(delta int) {
	wg.group().add(delta, true)
}

func (g *group) add(delta int, panicIfClosed bool) {
	if delta < 0 {
		race.ReleaseMerge(g.race())
	}
	for {
		c := g.local.Load()
		switch {
		case c == moved:
			if g.addShared(delta, panicIfClosed) {
				return
			}
			continue // the move failed: the counter is in the process again
		case c == closedLocal:
			if panicIfClosed {
				panic("waitgroup: Add on closed WaitGroup")
			}
			return
		}
		n := c + int64(delta)
		switch {
		case n < 0:
			panic("sync: negative WaitGroup counter")
		case delta > 0 && (n < c || uint64(n) > eventfd.MaxCount):
			panic("waitgroup: WaitGroup counter overflow")
		}
		if g.local.CompareAndSwap(c, n) {
			if n == 0 {
				g.q.Serve()
			}
			return
		}
	}
}

// addShared adds delta to the counter in the eventfds. It reports false if
// there are none after all (a move that failed).
func (g *group) addShared(delta int, panicIfClosed bool) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		if panicIfClosed {
			panic("waitgroup: Add on closed WaitGroup")
		}
		return true
	}
	f := g.fds.Load()
	if f == nil {
		return false
	}
	switch {
	case delta > 0:
		switch err := f.count.Write(uint64(delta)); err {
		case nil:
		case eventfd.ErrOverflow:
			panic("waitgroup: WaitGroup counter overflow")
		default:
			panic("waitgroup: Add: " + err.Error())
		}
	case delta < 0:
		// The first decrement in a process started with Start takes the
		// share token first: from then on its parent will not do the
		// share's Done when it exits.
		token, took := g.takeToken()
		ok, err := f.count.Take(uint64(-delta), nil)
		if err != nil || !ok {
			g.putToken(token, took)
		}
		switch {
		case err != nil:
			panic("waitgroup: Add: " + err.Error())
		case !ok:
			panic("sync: negative WaitGroup counter")
		}
		if token != nil {
			_ = token.Close()
		}
		f.reachedZero()
	}
	return true
}

// Done decrements the counter by one. It panics if the counter is already
// zero, or if wg is closed.
func (wg *WaitGroup) Done() {
	wg.Add(-1)
}

// reachedZero wakes the waiters of every process if the counter is zero and
// anybody waits. Waiters look at the counter again when woken, so a wakeup
// for a counter that has since gone up again is harmless.
func (f *fds) reachedZero() {
	above, waiting, err := eventfd.PendingPair(f.count, f.waiting)
	if err == nil && !above && waiting {
		_ = f.zero.Saturate(1)
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
// meanwhile; WaitContext tells the two apart. Wait leaves the processes
// that exited without Done (see WaitContext) for WaitContext to report.
func (wg *WaitGroup) Wait() {
	_ = wg.wait(context.Background())
}

// WaitContext blocks until the counter is zero, ctx is done, or wg is
// closed. It returns ctx.Err() if ctx was done first (or already), and an
// error wrapping os.ErrClosed if wg is closed; a WaitContext that fails
// changes nothing.
//
// When the counter reached zero, it returns nil, or an *ExitError if
// processes that this WaitGroup started with Start exited without their
// share's Done since the last WaitContext that reported any: the WaitGroup
// did it for them. Each such process is reported once, to the first
// WaitContext that returns after its exit was seen; other goroutines
// waiting at the same time get nil.
func (wg *WaitGroup) WaitContext(ctx context.Context) error {
	if err := wg.wait(ctx); err != nil {
		return err
	}
	if g := wg.g.Load(); g != nil {
		return g.starts.report()
	}
	return nil
}

// wait is WaitContext without the report of processes that exited.
func (wg *WaitGroup) wait(ctx context.Context) error {
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
		zero, err := (*zeroPolicy)(g).Pending()
		if err != nil {
			return opError("Wait", err)
		}
		if zero {
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

// Value reports the counter: once wg is shared, as the kernel reports it in
// /proc/self/fdinfo.
func (wg *WaitGroup) Value() (uint64, error) {
	g := wg.g.Load()
	if g == nil {
		return 0, nil
	}
	switch c := g.local.Load(); c {
	case closedLocal:
		return 0, opError("Value", os.ErrClosed)
	case moved:
	default:
		return uint64(c), nil
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return 0, opError("Value", os.ErrClosed)
	}
	v, err := g.fds.Load().count.Value()
	if err != nil {
		return 0, opError("Value", err)
	}
	return v, nil
}

// Close closes this process's handle. Goroutines blocked in WaitContext
// return an error wrapping os.ErrClosed (Wait simply returns), as do later
// calls; Add and Done panic; tasks started by Go that are still running
// finish without effect. Processes started with Start are no longer
// watched: from then on their shares are completed by their own Done only,
// as if they had been passed with PassTo. Other processes are not affected.
// Close returns an error wrapping os.ErrClosed if wg is already closed.
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
	if g.closed {
		g.mu.Unlock()
		return os.ErrClosed
	}
	g.closed = true
	for {
		c := g.local.Load()
		if c == moved || g.local.CompareAndSwap(c, closedLocal) {
			break
		}
	}
	g.mu.Unlock()
	g.starts.close()
	err := g.q.Close()
	if f := g.fds.Load(); f != nil {
		err = errors.Join(err, f.count.Close(), f.zero.Close(), f.waiting.Close())
	}
	if token := g.token.Swap(nil); token != nil {
		err = errors.Join(err, token.Close())
	}
	return err
}

// opError names the operation that failed, and says "use of closed
// WaitGroup" for a closed WaitGroup.
func opError(op string, err error) error {
	if errors.Is(err, os.ErrClosed) {
		err = eventfd.Closed("WaitGroup")
	}
	return fmt.Errorf("waitgroup: %s: %w", op, err)
}
