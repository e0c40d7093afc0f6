//go:build linux

package semaphore_test

// The memory model, as the race detector sees it: a Release synchronizes
// before the Acquire or TryAcquire it serves. Each test writes a plain
// variable before Release and reads it after the Acquire, with nothing else
// ordering the two goroutines that the race detector can see (a RawGate
// orders them in time only). Under go test -race, a missing edge is
// reported as a data race on the test's own variable, and the test fails.

import (
	"context"
	"testing"

	"github.com/eventsync/eventsync/internal/testutil"
	"github.com/eventsync/eventsync/semaphore"
)

func mmSem(t *testing.T, n int64) *semaphore.Semaphore {
	t.Helper()
	s, err := semaphore.New(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The waiter is queued before the Release that serves it.
func TestMemModelReleaseAcquireQueued(t *testing.T) {
	s := mmSem(t, 0)
	var x int
	got := make(chan int)
	go func() {
		if err := s.Acquire(context.Background(), 1); err != nil {
			t.Error(err)
			got <- -1
			return
		}
		got <- x
	}()
	testutil.Parked(t, "semaphore.(*Semaphore).Acquire", 1)
	x = 42
	s.Release(1)
	if v := <-got; v != 42 {
		t.Fatalf("read %d after Acquire, want 42", v)
	}
}

// The permit is free before Acquire is called: Acquire takes its fast path.
func TestMemModelReleaseAcquireFast(t *testing.T) {
	s := mmSem(t, 0)
	gate := testutil.NewRawGate(t)
	var x int
	got := make(chan int)
	go func() {
		gate.Wait()
		if err := s.Acquire(context.Background(), 1); err != nil {
			t.Error(err)
			got <- -1
			return
		}
		got <- x
	}()
	x = 42
	s.Release(1)
	gate.Open()
	if v := <-got; v != 42 {
		t.Fatalf("read %d after Acquire, want 42", v)
	}
}

// TryAcquire, retried until the Release lands.
func TestMemModelReleaseTryAcquire(t *testing.T) {
	s := mmSem(t, 0)
	var x int
	got := make(chan int)
	go func() {
		for !s.TryAcquire(1) {
			// Spins until the Release; each failed try takes nothing.
		}
		got <- x
	}()
	x = 42
	s.Release(1)
	if v := <-got; v != 42 {
		t.Fatalf("read %d after TryAcquire, want 42", v)
	}
}

// A weighted Acquire served by two Releases from two goroutines sees what
// both wrote before releasing.
func TestMemModelWeightedFromTwoReleasers(t *testing.T) {
	for _, queued := range []bool{true, false} {
		name := "fast"
		if queued {
			name = "queued"
		}
		t.Run(name, func(t *testing.T) {
			s := mmSem(t, 0)
			gate := testutil.NewRawGate(t)
			var x, y int
			got := make(chan [2]int)
			go func() {
				if !queued {
					gate.Wait()
					gate.Wait()
				}
				if err := s.Acquire(context.Background(), 2); err != nil {
					t.Error(err)
					got <- [2]int{-1, -1}
					return
				}
				got <- [2]int{x, y}
			}()
			if queued {
				testutil.Parked(t, "semaphore.(*Semaphore).Acquire", 1)
			}
			released := make(chan struct{}, 2)
			go func() {
				x = 1
				s.Release(1)
				gate.Open()
				released <- struct{}{}
			}()
			go func() {
				y = 2
				s.Release(1)
				gate.Open()
				released <- struct{}{}
			}()
			if v := <-got; v != [2]int{1, 2} {
				t.Fatalf("read %v after Acquire(2), want [1 2]", v)
			}
			<-released
			<-released
		})
	}
}

// A permit passes through many hands: each holder writes before it
// releases and the next reads after it acquires, on whichever path.
func TestMemModelHandOff(t *testing.T) {
	s := mmSem(t, 1)
	const workers, rounds = 4, 200
	var shared int // guarded by the one permit
	done := make(chan struct{})
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for range rounds {
				if err := s.Acquire(context.Background(), 1); err != nil {
					t.Error(err)
					return
				}
				shared++
				s.Release(1)
			}
		}()
	}
	for range workers {
		<-done
	}
	if shared != workers*rounds {
		t.Fatalf("shared = %d, want %d", shared, workers*rounds)
	}
}
