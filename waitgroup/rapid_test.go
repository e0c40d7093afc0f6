//go:build linux

package waitgroup_test

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
	"github.com/eventsync/eventsync/waitgroup"
	"pgregory.net/rapid"
)

type rpKind int

const (
	rpAddDone     rpKind = iota // Add(k), then k Done calls or one Add(-k)
	rpGo                        // Go of a function that counts its return
	rpWaitContext               // WaitContext with random cancellation
	rpWait                      // Wait: only once the goroutine's own task is done
	rpValue                     // Value: at least 1 while the goroutine's own task is not done
	rpClose
)

// How a WaitContext's context ends.
type rpCancel int

const (
	rpNever   rpCancel = iota // only if every goroutine is stuck
	rpAlready                 // done before the call
	rpTimeout                 // after a random short while
)

type rpOp struct {
	kind    rpKind
	k       int
	neg     bool // rpAddDone: Add(-k) rather than k Done calls
	cancel  rpCancel
	timeout time.Duration
}

var rpOpGen = rapid.Custom(func(t *rapid.T) rpOp {
	op := rpOp{kind: rapid.SampledFrom([]rpKind{rpAddDone, rpGo, rpGo, rpWaitContext, rpWait, rpValue, rpClose}).Draw(t, "kind")}
	switch op.kind {
	case rpAddDone:
		op.k = rapid.IntRange(1, 3).Draw(t, "k")
		op.neg = rapid.Bool().Draw(t, "neg")
	case rpWaitContext:
		op.cancel = rapid.SampledFrom([]rpCancel{rpNever, rpAlready, rpTimeout}).Draw(t, "cancel")
		op.timeout = time.Duration(rapid.IntRange(0, 500).Draw(t, "µs")) * time.Microsecond
	}
	return op
})

// rpWorker is one goroutine's program in a round: the ops before its own
// task's Done, and those after.
type rpWorker struct {
	before, after []rpOp
}

var rpWorkerGen = rapid.Custom(func(t *rapid.T) rpWorker {
	return rpWorker{
		before: rapid.SliceOfN(rpOpGen, 0, 8).Draw(t, "before"),
		after:  rapid.SliceOfN(rpOpGen, 0, 4).Draw(t, "after"),
	}
})

// Rounds of random programs, each as sync.WaitGroup's rules allow: the
// round's tasks are added before its goroutines start, and every Add that
// could start the counter from zero is made while the goroutine's own task
// is outstanding. Invariants: a WaitContext that returns nil does so only
// once every task's Done has been called and every function run by Go has
// returned; Value is at least 1 while a task is outstanding and 0 at the
// end of a round; WaitContext fails only with its context's error or
// os.ErrClosed, and always with a context done before the call; after
// Close every blocked wait returns, and so does every goroutine (a Go
// function finishing after Close must not crash the process).
func TestRapidWaitGroup(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		rounds := rapid.SliceOfN(rapid.SliceOfN(rpWorkerGen, 1, 4), 1, 3).Draw(rt, "rounds")
		wg, err := waitgroup.New()
		if err != nil {
			rt.Fatal(err)
		}
		var (
			closed    atomic.Bool
			closeOnce sync.Once
			failures  = make(chan string, 64)
		)
		defer closeOnce.Do(func() { wg.Close() })
		fail := func(msg string) {
			select {
			case failures <- msg:
			default:
			}
		}
		for _, workers := range rounds {
			global, unstick := context.WithCancel(context.Background())
			var doneCalled, goStarted, goReturned atomic.Int64
			tasks := int64(len(workers))
			if msg := testutil.PanicMessage(func() { wg.Add(len(workers)) }); msg != "" {
				if !closed.Load() || !strings.Contains(msg, "closed") {
					fail("Add panicked: " + msg)
				}
				unstick()
				break
			}
			// call runs f, which may panic only because wg is closed.
			call := func(what string, f func()) bool {
				msg := testutil.PanicMessage(f)
				switch {
				case msg == "":
					return true
				case !strings.Contains(msg, "closed"):
					fail(what + " panicked: " + msg)
				case !closed.Load():
					fail(what + " panicked as closed before Close: " + msg)
				}
				return false
			}
			run := func(op rpOp, ownDone bool) {
				switch op.kind {
				case rpAddDone:
					if ownDone {
						return // an Add could start the counter from zero
					}
					if !call("Add", func() { wg.Add(op.k) }) {
						return
					}
					if op.neg {
						call("Add", func() { wg.Add(-op.k) })
						return
					}
					for range op.k {
						call("Done", wg.Done)
					}
				case rpGo:
					if ownDone {
						return
					}
					goStarted.Add(1)
					if !call("Go", func() { wg.Go(func() { goReturned.Add(1) }) }) {
						goStarted.Add(-1)
					}
				case rpWait:
					if ownDone {
						wg.Wait()
					}
				case rpWaitContext:
					ctx, cancel := global, context.CancelFunc(func() {})
					switch op.cancel {
					case rpAlready:
						ctx, cancel = context.WithCancel(global)
						cancel()
					case rpTimeout:
						ctx, cancel = context.WithTimeout(global, op.timeout)
					}
					err := wg.WaitContext(ctx)
					cancel()
					switch {
					case err == nil:
						if op.cancel == rpAlready {
							fail("WaitContext with a context done before the call succeeded")
						}
						if d := doneCalled.Load(); d != tasks {
							fail("WaitContext returned nil before every task's Done")
						}
						if goReturned.Load() != goStarted.Load() {
							fail("WaitContext returned nil before every Go function returned")
						}
					case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
						if ctx.Err() == nil {
							fail("WaitContext failed with a context error its context does not have: " + err.Error())
						}
					case errors.Is(err, os.ErrClosed):
						if !closed.Load() {
							fail("WaitContext failed with os.ErrClosed before Close: " + err.Error())
						}
					default:
						fail("WaitContext failed with an unexpected error: " + err.Error())
					}
				case rpValue:
					v, err := wg.Value()
					switch {
					case err != nil:
						if !closed.Load() || !errors.Is(err, os.ErrClosed) {
							fail("Value: " + err.Error())
						}
					case !ownDone && v == 0 && !closed.Load():
						fail("Value is 0 while a task is outstanding")
					}
				case rpClose:
					closeOnce.Do(func() {
						closed.Store(true)
						if err := wg.Close(); err != nil {
							fail("Close: " + err.Error())
						}
					})
				}
			}
			var work []func()
			for _, w := range workers {
				work = append(work, func() {
					for _, op := range w.before {
						run(op, false)
					}
					doneCalled.Add(1)
					call("Done", wg.Done)
					for _, op := range w.after {
						run(op, true)
					}
				})
			}
			testutil.RunWorkers(rt, work, []string{"waitgroup.(*WaitGroup).Wait"}, unstick, closed.Load)
			unstick()
			if closed.Load() {
				break
			}
			if err := wg.WaitContext(context.Background()); err != nil {
				rt.Fatalf("WaitContext at the end of a round: %v", err)
			}
			if goReturned.Load() != goStarted.Load() {
				rt.Fatalf("Wait returned at the end of a round before every Go function returned")
			}
			if v, err := wg.Value(); err != nil || v != 0 {
				rt.Fatalf("Value = %d, %v at the end of a round, want 0", v, err)
			}
		}
		close(failures)
		for msg := range failures {
			rt.Error(msg)
		}
	})
}
