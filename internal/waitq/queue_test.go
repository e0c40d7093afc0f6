//go:build linux

package waitq

import (
	"context"
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eventsync/eventsync/internal/eventfd"
	"github.com/eventsync/eventsync/internal/testutil"
)

// gatedPolicy serves a request for bigWant with take, which the test
// controls, and no other request; it records what is given back. Its
// watched descriptor is a real eventfd that nobody writes.
type gatedPolicy struct {
	take  func(stop func() bool) (uint64, error)
	given atomic.Uint64
}

const bigWant = shortTake + 1

func (p *gatedPolicy) Take(want uint64, stop Stopper) (uint64, error) {
	if want != bigWant {
		return 0, nil
	}
	return p.take(stop.Stopped)
}

func (p *gatedPolicy) GiveBack(n uint64)      { p.given.Add(n) }
func (p *gatedPolicy) Pending() (bool, error) { return false, nil }

func newQueue(t *testing.T, p Policy) *Queue {
	t.Helper()
	fd, err := eventfd.New(0, eventfd.Counter)
	if err != nil {
		t.Fatal(err)
	}
	q := New(fd, p)
	t.Cleanup(func() {
		q.Close()
		fd.Close()
	})
	return q
}

type result struct {
	got uint64
	err error
}

func goWait(q *Queue, ctx context.Context, want uint64) <-chan result {
	ch := make(chan result, 1)
	go func() {
		got, err := q.Wait(ctx, want)
		ch <- result{got, err}
	}()
	return ch
}

// errGaveUp is what the gated take returns when told to stop: it has
// given back what it took itself.
var errGaveUp = errors.New("take gave up")

// Item 5: while the front waiter's long take is under way, a waiter behind
// it whose context is cancelled returns ctx.Err() at once: the queue's lock
// is not held across Take.
func TestCancelBehindLongTake(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	p := &gatedPolicy{take: func(func() bool) (uint64, error) {
		once.Do(func() { close(entered) })
		<-release
		return bigWant, nil
	}}
	q := newQueue(t, p)
	front := goWait(q, context.Background(), bigWant)
	<-entered

	ctx, cancel := context.WithCancel(context.Background())
	behind := goWait(q, ctx, 1)
	testutil.Eventually(t, "the second waiter queues", func() bool { return q.Len() == 2 })
	cancel()
	// A queue that held its lock across Take would hang here.
	if r := <-behind; r.err != context.Canceled || r.got != 0 {
		t.Fatalf("cancelled waiter behind a long take = %d, %v, want 0, context.Canceled", r.got, r.err)
	}
	close(release)
	if r := <-front; r.err != nil || r.got != bigWant {
		t.Fatalf("front waiter = %d, %v, want %d, nil", r.got, r.err, bigWant)
	}
	if g := p.given.Load(); g != 0 {
		t.Fatalf("%d given back, want 0", g)
	}
}

// Item 5: a long take sees its own waiter's context done through its stop
// func, and the waiter fails with ctx.Err().
func TestLongTakeStopsForContext(t *testing.T) {
	entered := make(chan struct{})
	p := &gatedPolicy{take: func(stop func() bool) (uint64, error) {
		close(entered)
		for !stop() {
			// Reads between two looks at stop.
			runtime.Gosched()
		}
		return 0, errGaveUp
	}}
	q := newQueue(t, p)
	ctx, cancel := context.WithCancel(context.Background())
	front := goWait(q, ctx, bigWant)
	<-entered
	cancel()
	if r := <-front; r.err != context.Canceled || r.got != 0 {
		t.Fatalf("waiter cancelled during its take = %d, %v, want 0, context.Canceled", r.got, r.err)
	}
	if n := q.Len(); n != 0 {
		t.Fatalf("%d waiters queued after the only one gave up", n)
	}
	if g := p.given.Load(); g != 0 {
		t.Fatalf("GiveBack(%d) after a take that gave back itself", g)
	}
}

// Item 5: Close during the front waiter's long take tells the take to stop
// and returns once it has ended; the waiter fails with os.ErrClosed.
func TestCloseDuringLongTake(t *testing.T) {
	entered := make(chan struct{})
	stopSeen := make(chan struct{})
	release := make(chan struct{})
	p := &gatedPolicy{take: func(stop func() bool) (uint64, error) {
		close(entered)
		for !stop() {
			select {
			case <-release:
				return 0, errors.New("released before the take was told to stop")
			default:
				runtime.Gosched()
			}
		}
		close(stopSeen)
		<-release
		return 0, errGaveUp
	}}
	q := newQueue(t, p)
	front := goWait(q, context.Background(), bigWant)
	<-entered
	behind := goWait(q, context.Background(), 1)
	testutil.Eventually(t, "the second waiter queues", func() bool { return q.Len() == 2 })

	closed := make(chan error, 1)
	go func() { closed <- q.Close() }()
	<-stopSeen
	// The queued waiter fails at once; the served one only when its take
	// ends.
	if r := <-behind; r.err != os.ErrClosed {
		t.Fatalf("queued waiter at Close = %d, %v, want os.ErrClosed", r.got, r.err)
	}
	testutil.Parked(t, "waitq.(*Queue).Close", 1)
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a take was under way", err)
	default:
	}
	close(release)
	if r := <-front; r.err != os.ErrClosed || r.got != 0 {
		t.Fatalf("waiter whose take Close stopped = %d, %v, want 0, os.ErrClosed", r.got, r.err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close = %v", err)
	}
	if g := p.given.Load(); g != 0 {
		t.Fatalf("GiveBack(%d) after a take that gave back itself", g)
	}
}
