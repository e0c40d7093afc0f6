package testutil

import (
	"context"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A Trigger fires once the goroutines of a storm have counted at its mark
// of operations between them: a random point in the storm, reached by the
// storm itself rather than by a clock.
type Trigger struct {
	mark  int64
	ops   atomic.Int64
	fired chan struct{}
	once  sync.Once
}

// NewTrigger returns a Trigger that fires at the mark-th Tick; a mark of 0
// or less fires at once.
func NewTrigger(mark int64) *Trigger {
	tr := &Trigger{mark: mark, fired: make(chan struct{})}
	if mark <= 0 {
		tr.Fire()
	}
	return tr
}

// Tick counts one operation, and fires the Trigger at its mark.
func (tr *Trigger) Tick() {
	if tr.ops.Add(1) == tr.mark {
		tr.Fire()
	}
}

// Fire fires the Trigger now, if it has not fired yet: for a storm that
// ended before its mark.
func (tr *Trigger) Fire() { tr.once.Do(func() { close(tr.fired) }) }

// C is closed once the Trigger has fired.
func (tr *Trigger) C() <-chan struct{} { return tr.fired }

// Ops reports how many operations were counted.
func (tr *Trigger) Ops() int64 { return tr.ops.Load() }

// A Canceller makes contexts for the calls of a storm, some of them done
// from the start, and cancels the others from whichever goroutine of the
// storm happens to tick it: every few Ticks it cancels one context still
// registered, picked at random. Cancellation thus lands at random points
// of the storm, with no timer.
type Canceller struct {
	parent context.Context

	mu      sync.Mutex
	rng     *rand.Rand
	pending map[int]context.CancelFunc
	next    int
	ticks   int
}

// NewCanceller returns a Canceller whose contexts derive from parent.
func NewCanceller(parent context.Context, seed uint64) *Canceller {
	return &Canceller{
		parent:  parent,
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		pending: map[int]context.CancelFunc{},
	}
}

// Context returns a context for one call, and the func to call once the
// call has returned. About one context in eight is done already; about
// half of the others may be cancelled by a Tick while the call runs; the
// rest only end with parent.
func (c *Canceller) Context() (context.Context, func()) {
	ctx, cancel := context.WithCancel(c.parent)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch r := c.rng.IntN(8); {
	case r == 0:
		cancel()
		return ctx, cancel
	case r < 4:
		id := c.next
		c.next++
		c.pending[id] = cancel
		return ctx, func() {
			c.mu.Lock()
			delete(c.pending, id)
			c.mu.Unlock()
			cancel()
		}
	}
	return ctx, cancel
}

// Tick counts one operation of the storm; every third Tick cancels one
// registered context, if any is.
func (c *Canceller) Tick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ticks++
	if c.ticks%3 != 0 || len(c.pending) == 0 {
		return
	}
	// Map order is not random enough to rely on; pick among the ids.
	k := c.rng.IntN(len(c.pending))
	for id, cancel := range c.pending {
		if k == 0 {
			cancel()
			delete(c.pending, id)
			return
		}
		k--
	}
}

// Await receives from ch and returns what it got. It fails the test if
// nothing comes within Eventually's limit: a hang, not a slow machine.
func Await[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	timer := time.NewTimer(eventuallyLimit)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		buf := make([]byte, 1<<20)
		t.Logf("goroutines:\n%s", buf[:runtime.Stack(buf, true)])
		t.Fatalf("still waiting, after %v, until %s", eventuallyLimit, what)
		panic("unreachable")
	}
}

// Join waits for wg, failing the test as Await does if it is still
// waiting after Eventually's limit.
func Join(t testing.TB, what string, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	Await(t, what, done)
}
