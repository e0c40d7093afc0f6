//go:build linux

package semaphore

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eventsync/eventsync/internal/testutil"
)

// Close racing blocked and arriving Acquires, and Releases: every permit is
// either taken by an Acquire that reports success or still in the counter,
// seen through another handle on the same eventfd.
func TestCloseConserves(t *testing.T) {
	for round := range 50 {
		s, err := New(0)
		if err != nil {
			t.Fatal(err)
		}
		f, err := s.File()
		if err != nil {
			t.Fatal(err)
		}
		other, err := FromFile(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}

		const waiters, released = 40, 25
		var ok, closed atomic.Int64
		var wg sync.WaitGroup
		for range waiters {
			wg.Go(func() {
				switch err := s.Acquire(context.Background(), 1); {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, os.ErrClosed):
					closed.Add(1)
				default:
					t.Errorf("Acquire = %v", err)
				}
			})
		}
		if round%2 == 0 {
			blocked(t, s, waiters)
		}
		wg.Go(func() {
			for range released {
				other.Release(1)
			}
		})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		left, err := other.Value()
		if err != nil {
			t.Fatal(err)
		}
		if got := uint64(ok.Load()) + left; got != released {
			t.Fatalf("round %d: %d acquired + %d left = %d, want the %d released", round, ok.Load(), left, got, released)
		}
		if ok.Load()+closed.Load() != waiters {
			t.Fatalf("round %d: %d acquired, %d closed, of %d waiters", round, ok.Load(), closed.Load(), waiters)
		}
		other.Close()
	}
}

// Close racing Release and TryAcquire on other goroutines: once Close has
// begun, nobody touches the descriptor number, which the kernel hands to
// the next descriptor opened. A pipe that takes the number must see no
// stray write.
func TestCloseNeverTouchesReusedNumber(t *testing.T) {
	for range 200 {
		s, err := New(1)
		if err != nil {
			t.Fatal(err)
		}
		num := s.fd().Sysfd()
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for range 4 {
			wg.Go(func() {
				defer func() { recover() }() // Release on a closed Semaphore panics
				for {
					select {
					case <-stop:
						return
					default:
					}
					if s.TryAcquire(1) {
						s.Release(1)
					}
				}
			})
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		close(stop)
		wg.Wait()
		// If either end took the old number, nothing may have been
		// written to the pipe.
		w.Close()
		var buf [8]byte
		n, _ := r.Read(buf[:])
		r.Close()
		if n != 0 {
			t.Fatalf("%d bytes written to a pipe that reused descriptor %d after Close", n, num)
		}
	}
}

// Posting nothing on a closed Semaphore is still posting on a closed
// Semaphore.
func TestReleaseZeroAfterClose(t *testing.T) {
	s, err := New(0)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if msg := testutil.PanicMessage(func() { s.Release(0) }); !strings.Contains(msg, "closed") {
		t.Fatalf("Release(0) after Close: panic %q, want one saying it is closed", msg)
	}
}
