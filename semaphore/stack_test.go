//go:build linux

package semaphore

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/eventsync/eventsync/internal/race"
	"github.com/eventsync/eventsync/internal/testutil"
)

func init() { childRoles["waiter-stacks"] = roleWaiterStacks }

// A goroutine keeps the stack its deepest call needed, and a process may
// have thousands blocked in Acquire: none of Acquire's paths, the kernel's
// included, may grow a waiter's stack beyond the 2 KiB a goroutine starts
// with. A stack that grew is 4 KiB. Each case runs in a fresh child, where
// no other test has run and the runtime does not adapt the starting size
// (GODEBUG=adaptivestackstart=0).
func TestWaitersKeepStartingStack(t *testing.T) {
	if race.Enabled {
		t.Skip("the race detector's frames are larger: stack sizes mean nothing")
	}
	for _, where := range []string{"in-process", "shared"} {
		for _, ctx := range []string{"background", "cancelable"} {
			t.Run(where+"/"+ctx, func(t *testing.T) {
				cmd := testutil.Child(t, "waiter-stacks", where, ctx)
				cmd.Env = append(cmd.Env, "GODEBUG=adaptivestackstart=0")
				out, err := cmd.Output()
				if err != nil {
					t.Fatal(err)
				}
				perWaiter, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
				if err != nil {
					t.Fatalf("child said %q: %v", out, err)
				}
				if perWaiter > 3<<10 {
					t.Errorf("blocked Acquire: %d bytes of stack a goroutine; want the 2 KiB it started with", perWaiter)
				}
			})
		}
	}
}

// roleWaiterStacks blocks 1,000 goroutines in Acquire, on a Semaphore never
// shared or shared (args[0]), with a context never done or cancelable
// (args[1]), and prints the stack memory they added, per goroutine.
func roleWaiterStacks(args []string) error {
	const n = 1000
	s, err := New(0)
	if err != nil {
		return err
	}
	defer s.Close()
	if args[0] == "shared" {
		f, err := s.File()
		if err != nil {
			return err
		}
		f.Close()
	}
	runtime.GC()
	debug.SetGCPercent(-1) // no collection frees or shrinks a stack meanwhile
	before := stackInUse()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if args[1] == "cancelable" {
				ctx, cancel = context.WithCancel(ctx)
			}
			defer cancel()
			if err := s.Acquire(ctx, 1); err != nil {
				errs <- err
			}
		})
	}
	for testutil.CountParked("waitq.(*Queue).Wait") < n {
		runtime.Gosched()
	}
	perWaiter := (int64(stackInUse()) - int64(before)) / n
	s.Release(n)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	fmt.Println(perWaiter)
	return nil
}

func stackInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.StackInuse
}
