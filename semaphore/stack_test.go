//go:build linux

package semaphore

import (
	"context"
	"runtime"
	"sync"
	"testing"

	"github.com/eventsync/eventsync/internal/race"
	"github.com/eventsync/eventsync/internal/testutil"
)

// A goroutine keeps the stack its deepest call needed, and a process may
// have thousands blocked in Acquire: none of Acquire's paths, the kernel's
// included, may grow a waiter's stack beyond the 2 KiB a goroutine starts
// with. A stack that grew is 4 KiB, so 1,000 waiters would show it.
func TestWaitersKeepStartingStack(t *testing.T) {
	if race.Enabled {
		t.Skip("the race detector's frames are larger: stack sizes mean nothing")
	}
	const n = 1000
	ctxs := map[string]func() (context.Context, context.CancelFunc){
		"background": func() (context.Context, context.CancelFunc) { return context.Background(), func() {} },
		"cancelable": func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
	}
	for _, shared := range []bool{false, true} {
		for name, mk := range ctxs {
			t.Run(map[bool]string{false: "in-process", true: "shared"}[shared]+"/"+name, func(t *testing.T) {
				s := newSem(t, 0)
				if shared {
					f, err := s.File()
					if err != nil {
						t.Fatal(err)
					}
					f.Close()
				}
				before := stackInUse()
				var wg sync.WaitGroup
				for range n {
					wg.Go(func() {
						ctx, cancel := mk()
						defer cancel()
						if err := s.Acquire(ctx, 1); err != nil {
							t.Error(err)
						}
					})
				}
				testutil.Parked(t, "waitq.(*Queue).Wait", n)
				perWaiter := (stackInUse() - before) / n
				s.Release(n)
				wg.Wait()
				if perWaiter > 3<<10 {
					t.Errorf("blocked Acquire: %d bytes of stack a goroutine; want the 2 KiB it started with", perWaiter)
				}
			})
		}
	}
}

func stackInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.StackInuse
}
