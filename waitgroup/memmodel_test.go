//go:build linux

package waitgroup_test

// The memory model, as the race detector sees it and as sync.WaitGroup
// states it: a Done synchronizes before the return of every Wait it
// unblocks, and so does the return of a function run by Go. Each test
// writes a plain variable before Done (or in the function) and reads it
// after Wait, with nothing else ordering the goroutines that the race
// detector can see (a RawGate orders them in time only). Under go test
// -race, a missing edge is reported as a data race on the test's own
// variable, and the test fails.

import (
	"context"
	"testing"

	"github.com/eventsync/eventsync/internal/testutil"
	"github.com/eventsync/eventsync/waitgroup"
)

func mmWG(t *testing.T) *waitgroup.WaitGroup {
	t.Helper()
	wg, err := waitgroup.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wg.Close() })
	return wg
}

// Waiters block before the Done that unblocks them.
func TestMemModelDoneWaitQueued(t *testing.T) {
	for _, ctxWait := range []bool{false, true} {
		name := "Wait"
		if ctxWait {
			name = "WaitContext"
		}
		t.Run(name, func(t *testing.T) {
			wg := mmWG(t)
			wg.Add(1)
			var x int
			const waiters = 3
			got := make(chan int, waiters)
			for range waiters {
				go func() {
					if ctxWait {
						if err := wg.WaitContext(context.Background()); err != nil {
							t.Error(err)
							got <- -1
							return
						}
					} else {
						wg.Wait()
					}
					got <- x
				}()
			}
			testutil.Parked(t, "waitgroup.(*WaitGroup).Wait", waiters)
			x = 42
			wg.Done()
			for range waiters {
				if v := <-got; v != 42 {
					t.Fatalf("read %d after Wait, want 42", v)
				}
			}
		})
	}
}

// The counter is zero before Wait is called.
func TestMemModelDoneWaitFast(t *testing.T) {
	wg := mmWG(t)
	gate := testutil.NewRawGate(t)
	wg.Add(1)
	var x int
	go func() {
		x = 42
		wg.Done()
		gate.Open()
	}()
	gate.Wait()
	wg.Wait()
	if x != 42 {
		t.Fatalf("read %d after Wait, want 42", x)
	}
}

// Several goroutines each write their own slot before Done; Wait sees all.
func TestMemModelManyDones(t *testing.T) {
	wg := mmWG(t)
	const n = 8
	var slots [n]int
	wg.Add(n)
	for i := range n {
		go func() {
			slots[i] = i + 1
			wg.Done()
		}()
	}
	wg.Wait()
	for i, v := range slots {
		if v != i+1 {
			t.Fatalf("slot %d = %d after Wait, want %d", i, v, i+1)
		}
	}
}

// What a function run by Go writes is visible after Wait, whether Wait was
// blocked first or came after the function returned.
func TestMemModelGo(t *testing.T) {
	t.Run("queued", func(t *testing.T) {
		wg := mmWG(t)
		gate := testutil.NewRawGate(t)
		var x int
		wg.Go(func() {
			gate.Wait()
			x = 42
		})
		got := make(chan int)
		go func() {
			wg.Wait()
			got <- x
		}()
		testutil.Parked(t, "waitgroup.(*WaitGroup).Wait", 1)
		gate.Open()
		if v := <-got; v != 42 {
			t.Fatalf("read %d after Wait, want 42", v)
		}
	})
	t.Run("fast", func(t *testing.T) {
		wg := mmWG(t)
		gate := testutil.NewRawGate(t)
		var x int
		wg.Go(func() {
			x = 42
			// Opened after f returns would be better still, but the gate
			// only orders in time: the Done runs right after this.
			gate.Open()
		})
		gate.Wait()
		wg.Wait()
		if x != 42 {
			t.Fatalf("read %d after Wait, want 42", x)
		}
	})
}
