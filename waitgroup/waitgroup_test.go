//go:build linux

package waitgroup

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eventsync/eventsync/internal/testutil"
)

// A WaitGroup can stand in for a sync.WaitGroup.
type syncWaitGroup interface {
	Add(delta int)
	Done()
	Go(f func())
	Wait()
}

var (
	_ syncWaitGroup = (*sync.WaitGroup)(nil)
	_ syncWaitGroup = (*WaitGroup)(nil)
)

func newWG(t testing.TB) *WaitGroup {
	t.Helper()
	wg, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wg.Close() })
	return wg
}

func value(t testing.TB, wg *WaitGroup) uint64 {
	t.Helper()
	return testutil.Value(t, wg.Value)
}

func blocked(t testing.TB, wg *WaitGroup, n int) {
	t.Helper()
	testutil.Eventually(t, "goroutines block in Wait", func() bool { return wg.group().q.Len() == n })
}

func TestAddDoneWait(t *testing.T) {
	wg := newWG(t)
	wg.Wait() // zero: returns at once
	wg.Add(3)
	if v := value(t, wg); v != 3 {
		t.Fatalf("Value = %d, want 3", v)
	}
	var done atomic.Int32
	for range 3 {
		go func() {
			done.Add(1)
			wg.Done()
		}()
	}
	wg.Wait()
	if d := done.Load(); d != 3 {
		t.Fatalf("Wait returned after %d of 3 Done calls", d)
	}
	if v := value(t, wg); v != 0 {
		t.Fatalf("Value = %d, want 0", v)
	}
}

func TestGo(t *testing.T) {
	wg := newWG(t)
	var n atomic.Int32
	for range 100 {
		wg.Go(func() { n.Add(1) })
	}
	wg.Wait()
	if n.Load() != 100 {
		t.Fatalf("Wait returned with %d of 100 functions done", n.Load())
	}
}

// The WaitGroup is reusable once Wait has returned, with waiters blocked
// in every round.
func TestReuse(t *testing.T) {
	wg := newWG(t)
	for round := range 200 {
		n := round%5 + 1
		wg.Add(n)
		start := make(chan struct{})
		for range n {
			go func() {
				<-start
				wg.Done()
			}()
		}
		waited := make(chan struct{})
		go func() {
			wg.Wait()
			close(waited)
		}()
		if round%2 == 0 {
			blocked(t, wg, 1)
		}
		close(start)
		<-waited
		if v := value(t, wg); v != 0 {
			t.Fatalf("round %d: Value = %d", round, v)
		}
	}
}

func TestManyWaiters(t *testing.T) {
	wg := newWG(t)
	wg.Add(1)
	const n = 1000
	var all sync.WaitGroup
	for range n {
		all.Go(func() {
			if err := wg.WaitContext(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	blocked(t, wg, n)
	wg.Done()
	all.Wait()
}

// A cancelled WaitContext changes nothing, and leaves the others waiting.
func TestWaitContextCancel(t *testing.T) {
	wg := newWG(t)
	wg.Add(2)
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan error, 1)
	go func() { cancelled <- wg.WaitContext(ctx) }()
	other := make(chan error, 1)
	go func() { other <- wg.WaitContext(context.Background()) }()
	blocked(t, wg, 2)
	cancel()
	if err := <-cancelled; err != context.Canceled {
		t.Fatalf("WaitContext = %v, want context.Canceled", err)
	}
	blocked(t, wg, 1)
	if v := value(t, wg); v != 2 {
		t.Fatalf("Value = %d after a cancelled wait, want 2", v)
	}
	wg.Done()
	wg.Done()
	if err := <-other; err != nil {
		t.Fatal(err)
	}
	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := wg.WaitContext(done); err != context.Canceled {
		t.Fatalf("WaitContext(done ctx) = %v, want context.Canceled", err)
	}
}

func TestNegativePanics(t *testing.T) {
	wg := newWG(t)
	if msg := testutil.PanicMessage(wg.Done); !strings.Contains(msg, "negative WaitGroup counter") {
		t.Fatalf("Done on zero: panic %q", msg)
	}
	wg.Add(1)
	if msg := testutil.PanicMessage(func() { wg.Add(-2) }); !strings.Contains(msg, "negative WaitGroup counter") {
		t.Fatalf("Add(-2) on 1: panic %q", msg)
	}
	if v := value(t, wg); v != 1 {
		t.Fatalf("a panicking Add changed Value to %d, want 1", v)
	}
	wg.Add(-1)
	wg.Wait()
}

func TestClose(t *testing.T) {
	wg, err := New()
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	errs := make(chan error, 4)
	for range 3 {
		go func() { errs <- wg.WaitContext(context.Background()) }()
	}
	plain := make(chan struct{})
	go func() {
		wg.Wait()
		close(plain)
	}()
	blocked(t, wg, 4)
	if err := wg.Close(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := <-errs; !errors.Is(err, os.ErrClosed) {
			t.Fatalf("WaitContext woken by Close = %v, want os.ErrClosed", err)
		}
	}
	<-plain
	if err := wg.WaitContext(context.Background()); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("WaitContext after Close = %v", err)
	}
	for name, f := range map[string]func(){"Add": func() { wg.Add(1) }, "Add(0)": func() { wg.Add(0) }, "Done": wg.Done} {
		if msg := testutil.PanicMessage(f); !strings.Contains(msg, "closed") {
			t.Errorf("%s after Close: panic %q, want one saying it is closed", name, msg)
		}
	}
	if err := wg.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("second Close = %v", err)
	}
}

func TestNoDescriptorLeak(t *testing.T) {
	before := testutil.OpenFDs(t)
	for range 300 {
		wg, err := New()
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- wg.WaitContext(ctx) }()
		blocked(t, wg, 1)
		cancel()
		<-done
		wg.Done()
		if err := wg.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if after := testutil.OpenFDs(t); !slices.Equal(before, after) {
		t.Fatalf("descriptors before %v, after %v", before, after)
	}
}
