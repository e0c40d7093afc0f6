// Package waitq parks the goroutines of this process that wait on an
// eventfd, and wakes them through the Go runtime netpoller.
//
// A Queue knows nothing of what its waiters ask for: a Policy, given once at
// construction, says how a request is served and how what was served is
// given back. While a primitive has no descriptor (it has never been shared,
// and its state lives in the process), the queue has nothing to watch: the
// goroutines that post call Serve, which hands what they posted to the
// waiters directly. Once it is given a descriptor with Share, a poller
// watches it.
package waitq

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventsync/eventsync/internal/eventfd"
)

// A Policy says how a Queue serves its waiters.
type Policy interface {
	// Take serves a request for want without blocking. It returns what it
	// took, or 0 if it cannot serve the request now; want is 0 for
	// "whatever is there". A long take asks stop between chunks and, if it
	// reports true, gives back what it took and returns an error.
	Take(want uint64, stop Stopper) (uint64, error)
	// GiveBack returns what a waiter took but could not keep, because its
	// context was done first.
	GiveBack(got uint64)
	// Pending reports whether Take could serve something now, without
	// taking it.
	Pending() (bool, error)
}

// A Watcher is a Policy that must know while this process sleeps on the
// descriptor: StartWatch runs before the poller first looks at the
// descriptor, StopWatch once it has stopped.
type Watcher interface {
	Policy
	StartWatch()
	StopWatch()
}

// An Announcer is a Policy that tells others whether this process has
// goroutines queued: Waiting(true) when the first queues, Waiting(false)
// when the last leaves, under the queue's lock.
type Announcer interface {
	Policy
	Waiting(on bool)
}

// A Stopper tells a long take whether to give up.
type Stopper interface {
	Stopped() bool
}

type waiter struct {
	// n is what the waiter asks for until it is served, then what it got.
	n     uint64
	err   error
	q     *Queue
	done  <-chan struct{} // the waiter's ctx.Done()
	ready chan struct{}   // with done: receives once n or err is set
	// served, without done, counts one from the moment the waiter queues
	// until it is served. A context that is never done needs no select,
	// and a WaitGroup costs a waiter less memory than a channel: many
	// thousands of goroutines may wait at once.
	served sync.WaitGroup
	// prev and next link the waiter into Queue's list (see linked).
	prev *waiter
	next *waiter
}

// waiters are reused: a wait that blocks costs no allocation once warm. A
// waiter goes back to the pool with ready empty and served at zero. ready is
// buffered, so that serving never blocks, and made at a waiter's first wait
// with a context that can be done.
var waiters = sync.Pool{New: func() any { return new(waiter) }}

// wake tells w that n or err is set.
func (w *waiter) wake() {
	if w.done == nil {
		w.served.Done()
		return
	}
	w.ready <- struct{}{}
}

// result is what Wait returns for w once it has been served or failed.
func (w *waiter) result(ctx context.Context) (uint64, error) {
	switch {
	case w.err == errStopped:
		return 0, ctx.Err()
	case w.err != nil:
		return 0, w.err
	case isDone(w.done):
		// Served, but the context is done too: fail, as x/sync does, and
		// give back what was taken.
		w.q.policy.GiveBack(w.n)
		return 0, ctx.Err()
	}
	return w.n, nil
}

// Stopped reports whether a take for w should give up: its context is
// done, or the queue is closing.
func (w *waiter) Stopped() bool {
	return isDone(w.done) || w.q.closing.Load()
}

// list is the queue's waiters in arrival order, linked through the waiters
// themselves.
type list struct {
	head, tail *waiter
	n          int
}

// linked reports whether w is in l: a waiter being served, or finished,
// is not.
func (l *list) linked(w *waiter) bool { return w.prev != nil || l.head == w }

func (l *list) pushBack(w *waiter) {
	w.prev, w.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = w
	} else {
		l.head = w
	}
	l.tail = w
	l.n++
}

func (l *list) pushFront(w *waiter) {
	w.prev, w.next = nil, l.head
	if l.head != nil {
		l.head.prev = w
	} else {
		l.tail = w
	}
	l.head = w
	l.n++
}

func (l *list) remove(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		l.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		l.tail = w.prev
	}
	w.prev, w.next = nil, nil
	l.n--
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
// So the waiters queue here, each asleep on its own channel beside its own
// context (or, if its context is never done, on a one-count WaitGroup), and
// one poller goroutine sleeps in the netpoller for all of them. The poller
// is started by the first waiter and leaves a moment (linger) after the
// last; it sleeps on a duplicate of the descriptor that it registers with
// the netpoller when it starts and closes when it leaves, so that nobody
// pays for wakeups while nobody waits, and a primitive waited on again and
// again does not pay for a new poller each time. Whenever the descriptor
// signals, the poller serves waiters in order. The queue is FIFO, as in golang.org/x/sync/semaphore: a large
// request at the front is not starved by a stream of small ones from this
// process.
//
// A poller that cannot start (this process is at its descriptor limit, or a
// peer keeps clearing O_NONBLOCK on the shared description) is retried with
// a growing delay, up to maxRetryDelay; waiters keep waiting meanwhile, and
// their contexts and Close still end their waits.
type Queue struct {
	watch   *eventfd.FD // nil until Share
	policy  Policy
	watcher Watcher // policy, if it is a Watcher
	// announcer is policy, if it is an Announcer.
	announcer Announcer

	mu      sync.Mutex
	waiters list    // in arrival order
	current *waiter // the front waiter, taken off the list while Take runs
	serving bool    // a goroutine is in serveLocked
	again   bool    // serveLocked should look once more before it stops
	readyCh chan struct{}

	polling bool
	pollFD  *os.File // the poller's registered duplicate of watch
	// lingerUntil is when an idle poller leaves; zero while it is needed.
	lingerUntil time.Time
	// armed: a read deadline is set on pollFD. At most one is, so that a
	// queue that empties and fills again and again pays for a timer once
	// per linger, not once per wait.
	armed   bool
	pollers sync.WaitGroup // pollers not yet returned: one, or a leaving one and its successor
	pollErr error          // the last failure of the waiting machinery, for Close
	retry   *time.Timer
	delay   time.Duration // before the next retry

	closed  bool
	closing atomic.Bool  // closed, for takes in progress
	queued  atomic.Int32 // waiters, the one being served included
	readyOn atomic.Int32 // 1 while readyCh is set
	active  sync.WaitGroup
}

const (
	minRetryDelay = time.Millisecond
	maxRetryDelay = 100 * time.Millisecond
	// shortTake is the largest request whose take runs with the queue
	// locked: a few system calls at most, cheaper than unlocking and
	// locking again. A longer take lets the queue go, so that other
	// waiters can cancel and queue meanwhile.
	shortTake = 64
	// linger is how long a poller stays after its last waiter: long
	// beside the cost of starting one (tens of microseconds), short beside
	// what a process notices of an idle registration.
	linger = 5 * time.Millisecond
)

// New returns a queue whose poller wakes when watch signals, and which
// serves its waiters with policy. watch may be nil, for a primitive whose
// state lives in the process until Share. The queue does not own watch:
// close the queue before watch.
func New(watch *eventfd.FD, policy Policy) *Queue {
	q := &Queue{watch: watch, policy: policy}
	q.watcher, _ = policy.(Watcher)
	q.announcer, _ = policy.(Announcer)
	return q
}

// Share gives the queue the descriptor to watch from now on, and starts a
// poller if anybody waits.
func (q *Queue) Share(watch *eventfd.FD) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.watch = watch
	q.serveLocked()
	q.pollLocked()
}

// Serve serves what can be served now, for a goroutine that has just posted
// to the primitive's state in this process. It costs one atomic load when
// nobody waits.
func (q *Queue) Serve() {
	if q.queued.Load()|q.readyOn.Load() != 0 {
		q.serve()
	}
}

func (q *Queue) serve() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.serveLocked()
	q.pollLocked()
}

// Busy reports whether goroutines are queued. A fast path that finds the
// queue busy must queue too, or it would overtake them.
func (q *Queue) Busy() bool { return q.queued.Load() != 0 }

// Wait queues a request for want and blocks until it is served, ctx is done
// or the queue is closed. It returns what it got, ctx.Err(), or
// os.ErrClosed; a request that fails has taken nothing: if it was served
// while its context became done, what it got is given back.
func (q *Queue) Wait(ctx context.Context, want uint64) (uint64, error) {
	w := waiters.Get().(*waiter)
	w.n, w.err, w.q, w.done = want, nil, q, ctx.Done()
	if !q.enqueue(w) {
		waiters.Put(w)
		return 0, os.ErrClosed
	}
	if w.done == nil {
		// A context that is never done: nothing to select.
		w.served.Wait()
	} else {
		select {
		case <-w.ready:
		case <-w.done:
			q.leave(w)
			w.n, w.err = 0, ctx.Err()
		}
	}
	got, err := w.result(ctx)
	q.active.Done()
	waiters.Put(w)
	return got, err
}

// enqueue queues w and serves the queue, unless the queue is closed. It
// and leave are Wait's two halves that may take from the kernel, kept out
// of Wait's frame: every goroutine that ever waits keeps the stack its
// deepest call needed, and thousands may wait at once.
func (q *Queue) enqueue(w *waiter) bool {
	if w.done == nil {
		w.served.Add(1)
	} else if w.ready == nil {
		w.ready = make(chan struct{}, 1)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		if w.done == nil {
			w.served.Done()
		}
		return false
	}
	q.active.Add(1)
	q.waiters.pushBack(w)
	if q.queued.Add(1) == 1 && q.announcer != nil {
		q.announcer.Waiting(true)
	}
	// Whatever is posted from now on wakes the poller. What is there
	// already must be served here, but a shared count is looked at first:
	// most waiters queue because there is nothing, and a look at a
	// descriptor goes less deep than a take, whose calls would otherwise
	// grow every waiter's stack.
	if q.watch == nil {
		q.serveLocked()
	} else if pending, err := q.policy.Pending(); pending || err != nil {
		q.serveLocked()
	}
	q.pollLocked()
	return true
}

// leave ends the wait of w, whose context is done: it leaves the queue, or,
// if it was served meanwhile, gives back what it got.
func (q *Queue) leave(w *waiter) {
	q.mu.Lock()
	if q.waiters.linked(w) {
		front := q.waiters.head == w
		q.unlinkLocked(w)
		q.dequeuedLocked()
		if front {
			// Those behind may be servable now.
			q.serveLocked()
		}
		q.pollLocked()
		q.mu.Unlock()
		return
	}
	q.mu.Unlock()
	// Served or failed, or being served: its stop func sees the context,
	// so a long take ends soon.
	<-w.ready
	if w.err == nil {
		q.policy.GiveBack(w.n)
	}
}

// Ready returns a channel that is closed once Take could serve something,
// or the queue is closed. Callers share one channel until it closes. Ready
// takes nothing, and does not hold up Wait's callers or fast paths.
func (q *Queue) Ready() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.readyCh != nil {
		return q.readyCh
	}
	ch := make(chan struct{})
	if q.closed {
		close(ch)
		return ch
	}
	q.readyCh = ch
	q.readyOn.Store(1)
	q.serveLocked()
	q.pollLocked()
	return ch
}

// dequeuedLocked counts a waiter gone, and tells an Announcer when none is
// left.
func (q *Queue) dequeuedLocked() {
	if q.queued.Add(-1) == 0 && q.announcer != nil {
		q.announcer.Waiting(false)
	}
}

// unlinkLocked takes w off the list; it still counts as queued until it is
// finished or given up.
func (q *Queue) unlinkLocked(w *waiter) {
	q.waiters.remove(w)
}

func (q *Queue) finishLocked(w *waiter, got uint64, err error) {
	w.n, w.err = got, err
	q.dequeuedLocked()
	w.wake()
}

// serveLocked serves the Ready channel, then waiters from the front until
// one cannot be served. A long take runs without mu, so that other waiters
// can cancel and new ones queue while it is under way; only one goroutine
// serves at a time, and one that finds another serving leaves it a note to
// look again.
func (q *Queue) serveLocked() {
	if q.serving {
		q.again = true
		return
	}
	q.serving = true
	for {
		q.again = false
		// Ready first: a waiter served next may take what fired it.
		q.serveReadyLocked()
		q.serveWaitersLocked()
		if !q.again {
			break
		}
	}
	q.serving = false
}

func (q *Queue) serveWaitersLocked() {
	for w := q.waiters.head; w != nil && !q.closed; w = q.waiters.head {
		q.unlinkLocked(w)
		q.current = w
		var got uint64
		var err error
		if w.n > shortTake {
			q.mu.Unlock()
			got, err = q.policy.Take(w.n, w)
			q.mu.Lock()
		} else {
			got, err = q.policy.Take(w.n, w)
		}
		q.current = nil
		switch {
		case err == nil && got != 0:
			q.finishLocked(w, got, nil)
		case q.closed || errors.Is(err, os.ErrClosed):
			q.finishLocked(w, 0, os.ErrClosed)
		case isDone(w.done):
			// Wait may be blocked on w.ready already: it reports ctx.Err().
			q.finishLocked(w, 0, errStopped)
		case err != nil:
			q.finishLocked(w, 0, err)
		default:
			// Not servable yet: back to the front, where it was.
			q.waiters.pushFront(w)
			return
		}
	}
}

func isDone(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// errStopped fails a waiter whose context was done while it was being
// served; Wait reports ctx.Err() instead.
var errStopped = errors.New("wait stopped")

func (q *Queue) serveReadyLocked() {
	if q.readyCh == nil {
		return
	}
	if pending, err := q.policy.Pending(); pending || err != nil {
		close(q.readyCh)
		q.readyCh = nil
		q.readyOn.Store(0)
	}
}

// wantedLocked reports whether anybody needs the poller.
func (q *Queue) wantedLocked() bool {
	return !q.closed && q.watch != nil && (q.waiters.n > 0 || q.current != nil || q.readyCh != nil)
}

// pollLocked makes sure that a poller runs while anybody waits, and tells
// one that nobody needs to go.
func (q *Queue) pollLocked() {
	switch {
	case q.wantedLocked() && !q.polling && q.retry == nil:
		if err := q.startPollerLocked(); err != nil {
			q.retryLocked(err)
		}
	case !q.wantedLocked() && q.polling:
		q.idleLocked()
	}
}

// idleLocked tells a poller that nobody needs it: it leaves once linger
// has passed with nobody needing it again, or at once if the queue is
// closed. A read deadline interrupts its sleep; only the poller reads its
// descriptor, so nobody else is disturbed.
func (q *Queue) idleLocked() {
	if q.closed {
		q.setDeadlineLocked(time.Unix(1, 0))
		return
	}
	if q.lingerUntil.IsZero() {
		q.lingerUntil = time.Now().Add(linger)
		if !q.armed {
			q.setDeadlineLocked(q.lingerUntil)
		}
	}
}

func (q *Queue) startPollerLocked() error {
	f, err := q.watch.Pollable()
	if err != nil {
		return err
	}
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return err
	}
	if q.watcher != nil {
		q.watcher.StartWatch()
	}
	q.polling = true
	q.pollFD = f
	q.armed = false
	q.lingerUntil = time.Time{}
	q.delay = 0
	q.pollers.Add(1)
	go q.poll(f, raw)
	return nil
}

// retryLocked tries to start a poller again after a while: the failure
// (no descriptor to spare, a flag a peer cleared) is expected to pass.
func (q *Queue) retryLocked(err error) {
	q.pollErr = err
	q.delay = min(max(2*q.delay, minRetryDelay), maxRetryDelay)
	q.retry = time.AfterFunc(q.delay, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.retry = nil
		if q.closed {
			return
		}
		q.serveLocked()
		q.pollLocked()
	})
}

func (q *Queue) setDeadlineLocked(t time.Time) {
	q.armed = true
	if err := q.pollFD.SetReadDeadline(t); err != nil {
		q.pollErr = err
	}
}

// poll sleeps in the netpoller until the descriptor signals, serves waiters,
// and returns when none are left. The callback runs before every sleep, so a
// signal that arrives while it runs is never lost: the netpoller keeps it
// and the next sleep returns at once.
func (q *Queue) poll(f *os.File, raw interface {
	Read(func(uintptr) bool) error
}) {
	defer q.pollers.Done()
	for {
		err := raw.Read(func(uintptr) bool {
			q.mu.Lock()
			defer q.mu.Unlock()
			q.serveLocked()
			switch {
			case q.wantedLocked():
				q.lingerUntil = time.Time{}
			case q.closed || q.watch == nil || !q.lingerUntil.IsZero() && !time.Now().Before(q.lingerUntil):
				q.polling = false
				q.pollFD = nil
				q.lingerUntil = time.Time{}
				return true
			case q.lingerUntil.IsZero():
				q.idleLocked()
			case !q.armed:
				// Idle, and the deadline that woke us was an earlier one.
				q.setDeadlineLocked(q.lingerUntil)
			}
			return false
		})
		if err == nil {
			break
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// A deadline woke us; look again.
			q.mu.Lock()
			q.armed = false
			q.mu.Unlock()
			if err = f.SetReadDeadline(time.Time{}); err == nil {
				continue
			}
		}
		// Not expected: the netpoller failed on this duplicate. Start
		// afresh on a new one; the waiters keep waiting.
		q.mu.Lock()
		q.polling = false
		q.pollFD = nil
		q.retryLocked(err)
		q.mu.Unlock()
		break
	}
	if err := f.Close(); err != nil {
		q.mu.Lock()
		q.pollErr = err
		q.mu.Unlock()
	}
	if q.watcher != nil {
		q.watcher.StopWatch()
	}
}

func (q *Queue) failLocked(err error) {
	for w := q.waiters.head; w != nil; w = q.waiters.head {
		q.unlinkLocked(w)
		q.finishLocked(w, 0, err)
	}
}

// Close fails every queued waiter with os.ErrClosed, closes the Ready
// channel, lets Wait calls under way finish (one served as its context was
// done may still need the descriptor to give back what it got), and waits
// for the poller to leave. It returns os.ErrClosed if the queue was already
// closed. The descriptor is the caller's to close, after Close returns.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return os.ErrClosed
	}
	q.closed = true
	q.closing.Store(true)
	q.failLocked(os.ErrClosed)
	if q.readyCh != nil {
		close(q.readyCh)
		q.readyCh = nil
		q.readyOn.Store(0)
	}
	if q.retry != nil {
		q.retry.Stop()
		q.retry = nil
	}
	if q.polling {
		q.idleLocked()
	}
	q.mu.Unlock()

	q.active.Wait()
	// A poller that has let go of the queue may still be closing its
	// descriptor: wait for every one, polling or not.
	q.pollers.Wait()
	return nil
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

// Retries reports whether a poller that could not start is waiting to be
// tried again. Tests use it to know that the waiting machinery failed.
func (q *Queue) Retries() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.retry != nil
}
