//go:build linux

package signal_test

// The memory model, as the race detector sees it: a Notify synchronizes
// before the Wait, TryWait or Ready receive that sees it. Each test writes
// a plain variable before Notify and reads it after the wait, with nothing
// else ordering the two goroutines that the race detector can see (a
// RawGate orders them in time only). Under go test -race, a missing edge is
// reported as a data race on the test's own variable, and the test fails.

import (
	"context"
	"testing"

	"github.com/eventsync/eventsync/internal/testutil"
	"github.com/eventsync/eventsync/signal"
)

func mmSig(t *testing.T) *signal.Signal {
	t.Helper()
	s, err := signal.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// mmWait waits on s, after gate if it is not nil, and sends what it read
// of *x once the Wait returned.
func mmWait(t *testing.T, s *signal.Signal, gate *testutil.RawGate, x *int) <-chan int {
	got := make(chan int)
	go func() {
		if gate != nil {
			gate.Wait()
		}
		if _, err := s.Wait(context.Background()); err != nil {
			t.Error(err)
			got <- -1
			return
		}
		got <- *x
	}()
	return got
}

func TestMemModelNotifyWaitQueued(t *testing.T) {
	s := mmSig(t)
	var x int
	got := mmWait(t, s, nil, &x)
	testutil.Parked(t, "signal.(*Signal).Wait", 1)
	x = 42
	s.Notify()
	if v := <-got; v != 42 {
		t.Fatalf("read %d after Wait, want 42", v)
	}
}

func TestMemModelNotifyWaitFast(t *testing.T) {
	s := mmSig(t)
	gate := testutil.NewRawGate(t)
	var x int
	got := mmWait(t, s, gate, &x)
	x = 42
	s.Notify()
	gate.Open()
	if v := <-got; v != 42 {
		t.Fatalf("read %d after Wait, want 42", v)
	}
}

func TestMemModelNotifyTryWait(t *testing.T) {
	s := mmSig(t)
	var x int
	got := make(chan int)
	go func() {
		for {
			if _, ok := s.TryWait(); ok {
				break
			}
		}
		got <- x
	}()
	x = 42
	s.Notify()
	if v := <-got; v != 42 {
		t.Fatalf("read %d after TryWait, want 42", v)
	}
}

// The receiver is blocked on the Ready channel before the Notify.
func TestMemModelNotifyReadyQueued(t *testing.T) {
	s := mmSig(t)
	var x int
	got := make(chan int)
	go func() {
		<-s.Ready()
		got <- x
	}()
	testutil.Parked(t, "TestMemModelNotifyReadyQueued.func", 1)
	x = 42
	s.Notify()
	if v := <-got; v != 42 {
		t.Fatalf("read %d after a Ready receive, want 42", v)
	}
	if n, ok := s.TryWait(); !ok || n != 1 {
		t.Fatalf("TryWait after Ready = %d, %v; want 1, true", n, ok)
	}
}

// The notification is pending before Ready is called.
func TestMemModelNotifyReadyFast(t *testing.T) {
	s := mmSig(t)
	gate := testutil.NewRawGate(t)
	var x int
	got := make(chan int)
	go func() {
		gate.Wait()
		<-s.Ready()
		got <- x
	}()
	x = 42
	s.Notify()
	gate.Open()
	if v := <-got; v != 42 {
		t.Fatalf("read %d after a Ready receive, want 42", v)
	}
}

// Two notifiers coalesce into one Wait, which sees what both wrote.
func TestMemModelCoalescedNotifies(t *testing.T) {
	for _, queued := range []bool{true, false} {
		name := "fast"
		if queued {
			name = "queued"
		}
		t.Run(name, func(t *testing.T) {
			s := mmSig(t)
			gate := testutil.NewRawGate(t)
			var x, y int
			got := make(chan [2]int)
			go func() {
				if !queued {
					gate.Wait()
					gate.Wait()
				}
				var sum uint64
				for sum < 2 {
					n, err := s.Wait(context.Background())
					if err != nil {
						t.Error(err)
						got <- [2]int{-1, -1}
						return
					}
					sum += n
				}
				got <- [2]int{x, y}
			}()
			if queued {
				testutil.Parked(t, "signal.(*Signal).Wait", 1)
			}
			notified := make(chan struct{}, 2)
			go func() {
				x = 1
				s.Notify()
				gate.Open()
				notified <- struct{}{}
			}()
			go func() {
				y = 2
				s.NotifyN(1)
				gate.Open()
				notified <- struct{}{}
			}()
			if v := <-got; v != [2]int{1, 2} {
				t.Fatalf("read %v after Waits that returned 2, want [1 2]", v)
			}
			<-notified
			<-notified
		})
	}
}
