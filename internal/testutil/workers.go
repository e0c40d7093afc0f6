package testutil

import (
	"sync"
	"sync/atomic"
	"time"
)

// Fataler is what RunWorkers needs of a test; *testing.T and *rapid.T
// both have it.
type Fataler interface {
	Fatalf(format string, args ...any)
}

// RunWorkers runs each function of work on its own goroutine and returns
// once all have returned.
//
// Random programs of blocking calls can leave every goroutine blocked for
// good, each waiting for what only another blocked one would give back.
// When every goroutine still running has been seen parked (see Parked) in
// a function whose name contains one of parkedIn, twice in a row,
// RunWorkers calls unstick, once: it should cancel the contexts those
// calls were given. It never does so once closed reports true: Close
// alone must then wake every blocked call. If goroutines are still
// running a minute after unstick or Close, the test fails with every
// goroutine's stack.
//
// RunWorkers looks at the goroutines every millisecond; that period only
// bounds how soon it notices, nothing waits on it.
func RunWorkers(t Fataler, work []func(), parkedIn []string, unstick func(), closed func() bool) {
	var alive atomic.Int32
	alive.Store(int32(len(work)))
	var wg sync.WaitGroup
	for _, w := range work {
		wg.Go(func() {
			defer alive.Add(-1)
			w()
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var since time.Time // when unstick was called or Close seen
	stuckSeen := 0
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		switch {
		case !since.IsZero():
			if time.Since(since) > time.Minute {
				t.Fatalf("%d goroutines still blocked a minute after Close or cancellation:\n%s", alive.Load(), allStacks())
			}
		case closed():
			since = time.Now()
		default:
			n := 0
			for _, fn := range parkedIn {
				n += CountParked(fn)
			}
			if a := alive.Load(); a > 0 && n >= int(a) {
				stuckSeen++
			} else {
				stuckSeen = 0
			}
			if stuckSeen >= 2 {
				unstick()
				since = time.Now()
			}
		}
	}
}
