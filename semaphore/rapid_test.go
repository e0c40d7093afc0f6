//go:build linux

package semaphore_test

// Property-based tests: random programs of every operation over several
// goroutines, with random cancellation and a Close at a random point.

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventsync/eventsync/internal/testutil"
	"github.com/eventsync/eventsync/semaphore"
	"pgregory.net/rapid"
)

type rpKind int

const (
	rpAcquire rpKind = iota
	rpTryAcquire
	rpRelease
	rpClose
)

// How an Acquire's context ends.
type rpCancel int

const (
	rpNever   rpCancel = iota // only if every goroutine is stuck
	rpAlready                 // done before the call
	rpTimeout                 // after a random short while
)

type rpOp struct {
	kind    rpKind
	n       int64         // Acquire, TryAcquire: weight; Release: held share, in percent
	cancel  rpCancel      // Acquire
	timeout time.Duration // Acquire with rpTimeout
}

func rpOpGen(capacity int64) *rapid.Generator[rpOp] {
	return rapid.Custom(func(t *rapid.T) rpOp {
		op := rpOp{kind: rapid.SampledFrom([]rpKind{rpAcquire, rpAcquire, rpTryAcquire, rpRelease, rpRelease, rpClose}).Draw(t, "kind")}
		switch op.kind {
		case rpAcquire, rpTryAcquire:
			op.n = rapid.Int64Range(0, capacity+1).Draw(t, "n")
			op.cancel = rapid.SampledFrom([]rpCancel{rpNever, rpAlready, rpTimeout}).Draw(t, "cancel")
			op.timeout = time.Duration(rapid.IntRange(0, 500).Draw(t, "µs")) * time.Microsecond
		case rpRelease:
			op.n = rapid.Int64Range(1, 100).Draw(t, "percent")
		}
		return op
	})
}

// The permit bound and conservation: at every moment the permits held, by
// an atomic ledger, are at most the capacity; at the end, the eventfd (seen
// through a second handle, from File and FromFile) holds the capacity less
// what successful Acquires took plus what successful Releases gave back.
// Acquire fails only with its context's error or os.ErrClosed, and a
// context done before the call always fails it. After Close every blocked
// Acquire returns, and so does every goroutine.
func TestRapidSemaphore(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		capacity := rapid.Int64Range(1, 6).Draw(rt, "capacity")
		programs := rapid.SliceOfN(rapid.SliceOfN(rpOpGen(capacity), 1, 16), 1, 5).Draw(rt, "programs")

		s, err := semaphore.New(capacity)
		if err != nil {
			rt.Fatal(err)
		}
		f, err := s.File()
		if err != nil {
			rt.Fatal(err)
		}
		observer, err := semaphore.FromFile(f)
		f.Close()
		if err != nil {
			rt.Fatal(err)
		}
		defer observer.Close()

		global, unstick := context.WithCancel(context.Background())
		defer unstick()
		var (
			held, taken, given atomic.Int64 // held now; taken and given back, in total
			closed             atomic.Bool  // Close has been called
			closeReturned      atomic.Bool  // and has returned
			closeOnce          sync.Once
			failures           = make(chan string, 64)
		)
		fail := func(msg string) {
			select {
			case failures <- msg:
			default:
			}
		}
		took := func(n int64) {
			taken.Add(n)
			if h := held.Add(n); h > capacity {
				fail("permits held exceed the capacity")
			}
		}
		var work []func()
		for _, prog := range programs {
			work = append(work, func() {
				var mine int64
				for _, op := range prog {
					switch op.kind {
					case rpAcquire:
						ctx, cancel := global, context.CancelFunc(func() {})
						switch op.cancel {
						case rpAlready:
							ctx, cancel = context.WithCancel(global)
							cancel()
						case rpTimeout:
							ctx, cancel = context.WithTimeout(global, op.timeout)
						}
						err := s.Acquire(ctx, op.n)
						cancel()
						switch {
						case err == nil:
							if op.cancel == rpAlready {
								fail("Acquire with a context done before the call succeeded")
							}
							took(op.n)
							mine += op.n
						case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
							if ctx.Err() == nil {
								fail("Acquire failed with a context error its context does not have: " + err.Error())
							}
						case errors.Is(err, os.ErrClosed):
							if !closed.Load() {
								fail("Acquire failed with os.ErrClosed before Close: " + err.Error())
							}
						default:
							fail("Acquire failed with an unexpected error: " + err.Error())
						}
					case rpTryAcquire:
						after := closeReturned.Load()
						if s.TryAcquire(op.n) {
							if after {
								fail("TryAcquire succeeded after Close")
							}
							took(op.n)
							mine += op.n
						}
					case rpRelease:
						n := mine * op.n / 100
						if n == 0 {
							continue
						}
						mine -= n
						held.Add(-n)
						msg := testutil.PanicMessage(func() { s.Release(n) })
						switch {
						case msg == "":
							given.Add(n)
						case !strings.Contains(msg, "closed"):
							fail("Release panicked: " + msg)
						case !closed.Load():
							fail("Release panicked as closed before Close: " + msg)
						}
					case rpClose:
						closeOnce.Do(func() {
							closed.Store(true)
							if err := s.Close(); err != nil {
								fail("Close: " + err.Error())
							}
							closeReturned.Store(true)
						})
					}
				}
			})
		}
		testutil.RunWorkers(rt, work, []string{"semaphore.(*Semaphore).Acquire"}, unstick, closed.Load)
		close(failures)
		for msg := range failures {
			rt.Error(msg)
		}
		want := uint64(capacity - taken.Load() + given.Load())
		if v := rpValue(rt, observer.Value); v != want {
			rt.Fatalf("the eventfd holds %d permits, want %d (capacity %d, taken %d, given back %d)", v, want, capacity, taken.Load(), given.Load())
		}
		if !closed.Load() {
			if v := rpValue(rt, s.Value); v != want {
				rt.Fatalf("Value = %d at quiescence, want %d", v, want)
			}
			if err := s.Close(); err != nil {
				rt.Fatal(err)
			}
		}
		if err := s.Acquire(context.Background(), 1); !errors.Is(err, os.ErrClosed) {
			rt.Fatalf("Acquire after Close = %v, want os.ErrClosed", err)
		}
	})
}

func rpValue(t *rapid.T, value func() (uint64, error)) uint64 {
	v, err := value()
	if err != nil {
		t.Fatal(err)
	}
	return v
}
