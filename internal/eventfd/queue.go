package eventfd

import (
	"container/list"
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A Waiter is one goroutine's request, served by a Queue.
type Waiter struct {
	Want uint64 // what the waiter asks for: permits, or 0 for "anything"
	Peek bool   // the waiter wants to know that something is there, and takes nothing
	Got  uint64 // what Serve gave it
	Err  error  // set by Serve to fail the waiter instead

	ready chan struct{} // closed once the waiter is served or failed
}

// Queue parks goroutines of this process until an eventfd can serve them.
//
// Only one goroutine at a time can usefully sleep on a descriptor in the
// netpoller: an *os.File serialises its readers behind a lock that no context
// can interrupt, and a read deadline, the netpoller's only way to cancel,
// applies to every reader at once. One descriptor per waiter would make each
// cancellable on its own, but every write would then wake every descriptor:
// quadratic in the number of waiters.
//
// So the waiters queue here, each on its own channel beside its own context,
// and one poller goroutine sleeps in the netpoller for all of them. The
// poller is started by the first waiter and leaves with the last; it sleeps
// on a duplicate of the descriptor that it registers with the netpoller when
// it starts and closes when it leaves, so that nobody pays for wakeups while
// nobody waits. Whenever the descriptor signals, the poller serves waiters in
// order. The queue is FIFO, as in golang.org/x/sync/semaphore: a large
// request at the front is not starved by a stream of small ones from this
// process.
type Queue struct {
	watch *FD
	// serve tries to satisfy w and reports whether it did. It runs with mu
	// held, on the front waiter, until it reports false.
	serve func(w *Waiter) bool
	// undo gives back what a served waiter got when its context was done
	// first.
	undo func(got uint64)
	// started and stopped, if set, run as a poller starts (before it first
	// looks at the descriptor) and once it has stopped.
	started, stopped func()

	mu      sync.Mutex
	waiters list.List // of *Waiter
	peek    *Waiter   // the queued Peek waiter, if any: Watch shares it
	polling bool
	pollFD  *os.File       // the poller's registered duplicate of watch
	pollers sync.WaitGroup // pollers not yet returned: one, or a leaving one and its successor
	closed  bool
	queued  atomic.Int32 // waiters.Len(), for fast paths that must not jump the queue

	active sync.WaitGroup // Wait calls under way; Close lets them finish before the descriptor goes
}

// NewQueue returns a queue whose poller wakes when watch signals, and which
// serves its waiters with serve. The queue owns watch: Close closes it.
func NewQueue(watch *FD, serve func(w *Waiter) bool, undo func(got uint64)) *Queue {
	return &Queue{watch: watch, serve: serve, undo: undo}
}

// OnPoll sets functions to run as a poller starts, before it first looks at
// the descriptor, and once it has stopped: between the two, this process has
// goroutines waiting. It must be called before the queue is used.
func (q *Queue) OnPoll(started, stopped func()) {
	q.started, q.stopped = started, stopped
}

// Busy reports whether goroutines are queued. A fast path that finds the
// queue busy must queue too, or it would overtake them.
func (q *Queue) Busy() bool { return q.queued.Load() != 0 }

// Wait queues a request for want and blocks until it is served, ctx is done
// or the queue is closed. A request that fails has taken nothing: if it was
// served while its context became done, what it got is given back.
func (q *Queue) Wait(ctx context.Context, want uint64) (uint64, error) {
	w := &Waiter{Want: want, ready: make(chan struct{})}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0, os.ErrClosed
	}
	q.active.Add(1)
	defer q.active.Done()
	elem := q.pushLocked(w)
	q.mu.Unlock()

	done := ctx.Done()
	select {
	case <-w.ready:
		if w.Err != nil {
			return 0, w.Err
		}
		select {
		case <-done:
			// Served, but the context is done too: fail, as x/sync does,
			// and give back what was taken.
			q.undo(w.Got)
			return 0, ctx.Err()
		default:
			return w.Got, nil
		}
	case <-done:
		q.mu.Lock()
		select {
		case <-w.ready:
			// Served (or failed by Close) after the context was done.
			if w.Err == nil {
				q.undo(w.Got)
			}
		default:
			front := q.waiters.Front() == elem
			q.removeLocked(elem)
			if front {
				// Those behind may be servable now.
				q.serveLocked()
			}
			q.idleLocked()
		}
		q.mu.Unlock()
		return 0, ctx.Err()
	}
}

// Watch returns a channel that is closed once the descriptor has something
// for a Peek waiter, or the queue is closed. Callers share one waiter, so a
// caller that stops listening leaves nothing behind.
func (q *Queue) Watch() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.peek != nil {
		return q.peek.ready
	}
	w := &Waiter{Peek: true, ready: make(chan struct{})}
	if q.closed {
		close(w.ready)
		return w.ready
	}
	q.peek = w
	q.pushLocked(w)
	return w.ready
}

// pushLocked queues w, serves what can be served at once, and makes sure a
// poller is running for whatever is left.
func (q *Queue) pushLocked(w *Waiter) *list.Element {
	elem := q.waiters.PushBack(w)
	q.queued.Add(1)
	q.serveLocked()
	if q.waiters.Len() > 0 && !q.polling {
		if err := q.startPollerLocked(); err != nil {
			// Nobody else is queued: a poller would be running.
			q.failLocked(err)
		}
	}
	return elem
}

func (q *Queue) startPollerLocked() error {
	f, err := q.watch.pollable()
	if err != nil {
		return err
	}
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return err
	}
	if q.started != nil {
		q.started()
	}
	q.polling = true
	q.pollFD = f
	q.pollers.Add(1)
	go q.poll(f, raw)
	return nil
}

func (q *Queue) removeLocked(elem *list.Element) {
	w := q.waiters.Remove(elem).(*Waiter)
	q.queued.Add(-1)
	if w == q.peek {
		q.peek = nil
	}
}

// serveLocked serves waiters from the front until one cannot be served.
func (q *Queue) serveLocked() {
	for e := q.waiters.Front(); e != nil; e = q.waiters.Front() {
		w := e.Value.(*Waiter)
		if !q.serve(w) {
			return
		}
		q.removeLocked(e)
		close(w.ready)
	}
}

// idleLocked tells a poller with nobody left to serve to go: a read
// deadline interrupts its sleep, and only the poller reads its descriptor,
// so nobody else is disturbed.
func (q *Queue) idleLocked() {
	if q.waiters.Len() == 0 && q.polling {
		q.wakeLocked()
	}
}

func (q *Queue) wakeLocked() {
	q.pollFD.SetReadDeadline(time.Unix(1, 0))
}

// poll sleeps in the netpoller until the descriptor signals, serves waiters,
// and returns when none are left. The callback runs before every sleep, so a
// signal that arrives while it runs is never lost: the netpoller keeps it
// and the next sleep returns at once.
func (q *Queue) poll(f *os.File, raw syscall.RawConn) {
	defer q.pollers.Done()
	defer f.Close()
	if q.stopped != nil {
		defer q.stopped()
	}
	for {
		err := raw.Read(func(uintptr) bool {
			q.mu.Lock()
			defer q.mu.Unlock()
			if !q.closed {
				q.serveLocked()
			}
			if q.closed || q.waiters.Len() == 0 {
				q.polling = false
				q.pollFD = nil
				return true
			}
			return false
		})
		if err == nil {
			return
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// wakeLocked woke us; look again.
			f.SetReadDeadline(time.Time{})
			continue
		}
		// Not expected: the netpoller failed. Nobody can be served.
		q.mu.Lock()
		q.failLocked(err)
		q.polling = false
		q.pollFD = nil
		q.mu.Unlock()
		return
	}
}

func (q *Queue) failLocked(err error) {
	for e := q.waiters.Front(); e != nil; e = q.waiters.Front() {
		w := e.Value.(*Waiter)
		q.removeLocked(e)
		w.Err = err
		close(w.ready)
	}
}

// Close fails every queued waiter with os.ErrClosed, lets Wait calls under way
// finish (one served as its context was done may still need the descriptor to
// give back what it got), waits for the poller to leave, and closes the
// descriptor.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return os.ErrClosed
	}
	q.closed = true
	q.failLocked(os.ErrClosed)
	if q.polling {
		q.wakeLocked()
	}
	q.mu.Unlock()

	q.active.Wait()
	// A poller that has let go of the queue may still be closing its
	// descriptor: wait for every one, polling or not.
	q.pollers.Wait()
	return q.watch.Close()
}

// Len reports how many waiters are queued. Tests use it to know that
// goroutines are blocked before they act on them.
func (q *Queue) Len() int { return int(q.queued.Load()) }

// Polling reports whether a poller goroutine is running. Tests use it to
// know that the poller left with the last waiter.
func (q *Queue) Polling() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.polling
}

// OnlyPeek reports whether the only queued waiter is the shared Peek waiter,
// which takes nothing and so need not hold up a fast path.
func (q *Queue) OnlyPeek() bool {
	if q.queued.Load() != 1 {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.peek != nil && q.waiters.Len() == 1
}
