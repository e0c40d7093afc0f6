//go:build linux

package signal_test

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
	"github.com/eventsync/eventsync/signal"
	"pgregory.net/rapid"
)

type rpKind int

const (
	rpNotify rpKind = iota
	rpWait
	rpTryWait
	rpReady
	rpClose
)

// How a Wait's or Ready's context ends.
type rpCancel int

const (
	rpNever   rpCancel = iota // only if every goroutine is stuck
	rpAlready                 // done before the call
	rpTimeout                 // after a random short while
)

type rpOp struct {
	kind    rpKind
	n       uint64 // NotifyN
	cancel  rpCancel
	timeout time.Duration
	take    bool // Ready: TryWait once it fires
}

var rpOpGen = rapid.Custom(func(t *rapid.T) rpOp {
	op := rpOp{kind: rapid.SampledFrom([]rpKind{rpNotify, rpNotify, rpWait, rpTryWait, rpReady, rpClose}).Draw(t, "kind")}
	switch op.kind {
	case rpNotify:
		op.n = rapid.Uint64Range(0, 4).Draw(t, "n")
	case rpWait, rpReady:
		op.cancel = rapid.SampledFrom([]rpCancel{rpNever, rpAlready, rpTimeout}).Draw(t, "cancel")
		op.timeout = time.Duration(rapid.IntRange(0, 500).Draw(t, "µs")) * time.Microsecond
		op.take = rapid.Bool().Draw(t, "take")
	}
	return op
})

// rpReadyOp waits for s.Ready or ctx; it is a function of its own so that
// RunWorkers can see a goroutine parked in it.
func rpReadyOp(ctx context.Context, s *signal.Signal) bool {
	select {
	case <-s.Ready():
		return true
	case <-ctx.Done():
		return false
	}
}

// Conservation: what the Waits and TryWaits return, plus what is pending at
// the end (seen through a second handle, from File and FromFile), equals
// what the Notifies posted. Wait fails only with its context's error or
// os.ErrClosed, and a context done before the call always fails it; a
// successful Wait or TryWait returns more than zero. After Close every
// blocked Wait and Ready returns, and so does every goroutine.
func TestRapidSignal(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		programs := rapid.SliceOfN(rapid.SliceOfN(rpOpGen, 1, 16), 1, 5).Draw(rt, "programs")

		s, err := signal.New()
		if err != nil {
			rt.Fatal(err)
		}
		f, err := s.File()
		if err != nil {
			rt.Fatal(err)
		}
		observer, err := signal.FromFile(f)
		f.Close()
		if err != nil {
			rt.Fatal(err)
		}
		defer observer.Close()

		global, unstick := context.WithCancel(context.Background())
		defer unstick()
		var (
			posted, received atomic.Uint64
			closed           atomic.Bool // Close has been called
			closeReturned    atomic.Bool // and has returned
			closeOnce        sync.Once
			failures         = make(chan string, 64)
		)
		fail := func(msg string) {
			select {
			case failures <- msg:
			default:
			}
		}
		ctxFor := func(op rpOp) (context.Context, context.CancelFunc) {
			switch op.cancel {
			case rpAlready:
				ctx, cancel := context.WithCancel(global)
				cancel()
				return ctx, cancel
			case rpTimeout:
				return context.WithTimeout(global, op.timeout)
			}
			return global, func() {}
		}
		tryWait := func() {
			after := closeReturned.Load()
			if v, ok := s.TryWait(); ok {
				if v == 0 {
					fail("TryWait reported true with 0")
				}
				if after {
					fail("TryWait succeeded after Close")
				}
				received.Add(v)
			}
		}
		var work []func()
		for _, prog := range programs {
			work = append(work, func() {
				for _, op := range prog {
					switch op.kind {
					case rpNotify:
						msg := testutil.PanicMessage(func() { s.NotifyN(op.n) })
						switch {
						case msg == "":
							posted.Add(op.n)
						case !strings.Contains(msg, "closed"):
							fail("NotifyN panicked: " + msg)
						case !closed.Load():
							fail("NotifyN panicked as closed before Close: " + msg)
						}
					case rpWait:
						ctx, cancel := ctxFor(op)
						v, err := s.Wait(ctx)
						cancel()
						switch {
						case err == nil:
							if op.cancel == rpAlready {
								fail("Wait with a context done before the call succeeded")
							}
							if v == 0 {
								fail("Wait returned 0 without an error")
							}
							received.Add(v)
						case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
							if ctx.Err() == nil {
								fail("Wait failed with a context error its context does not have: " + err.Error())
							}
						case errors.Is(err, os.ErrClosed):
							if !closed.Load() {
								fail("Wait failed with os.ErrClosed before Close: " + err.Error())
							}
						default:
							fail("Wait failed with an unexpected error: " + err.Error())
						}
					case rpTryWait:
						tryWait()
					case rpReady:
						ctx, cancel := ctxFor(op)
						fired := rpReadyOp(ctx, s)
						cancel()
						if fired && op.take {
							tryWait()
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
		testutil.RunWorkers(rt, work, []string{"signal.(*Signal).Wait", "rpReadyOp"}, unstick, closed.Load)
		close(failures)
		for msg := range failures {
			rt.Error(msg)
		}
		pending, err := observer.Value()
		if err != nil {
			rt.Fatal(err)
		}
		if received.Load()+pending != posted.Load() {
			rt.Fatalf("Waits took %d and %d is pending, but %d was posted", received.Load(), pending, posted.Load())
		}
		if !closed.Load() {
			if v, err := s.Value(); err != nil || v != pending {
				rt.Fatalf("Value = %d, %v at quiescence; the second handle sees %d", v, err, pending)
			}
			if err := s.Close(); err != nil {
				rt.Fatal(err)
			}
		}
		if v, ok := observer.TryWait(); pending > 0 && (!ok || v != pending) {
			rt.Fatalf("draining through the second handle: %d, %v; want %d", v, ok, pending)
		}
		if _, err := s.Wait(context.Background()); !errors.Is(err, os.ErrClosed) {
			rt.Fatalf("Wait after Close = %v, want os.ErrClosed", err)
		}
	})
}
