//go:build linux

package semaphore

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/eventsync/eventsync/internal/testutil"
	xsem "golang.org/x/sync/semaphore"
)

// BenchmarkCancel is the time from cancel() to the return of an Acquire
// whose goroutine was asleep, blocked on an empty semaphore, beside
// golang.org/x/sync/semaphore. Read the p50-ns and p99-ns metrics: ns/op
// also counts making each waiter and seeing it asleep, and means nothing.
func BenchmarkCancel(b *testing.B) {
	type acquirer interface {
		Acquire(ctx context.Context, n int64) error
	}
	run := func(b *testing.B, s acquirer, asleepIn string) {
		returned := make(chan time.Time)
		var lat testutil.Latencies
		for b.Loop() {
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				if s.Acquire(ctx, 1) == nil {
					panic("Acquire succeeded on an empty semaphore")
				}
				returned <- time.Now()
			}()
			testutil.Parked(b, asleepIn, 1)
			t0 := time.Now()
			cancel()
			lat.Add((<-returned).Sub(t0))
		}
		lat.Report(b)
	}
	b.Run("impl=x-sync", func(b *testing.B) {
		w := xsem.NewWeighted(1)
		if err := w.Acquire(context.Background(), 1); err != nil {
			b.Fatal(err)
		}
		run(b, w, "x/sync/semaphore.(*Weighted).Acquire")
	})
	for _, impl := range sems {
		b.Run(impl.name, func(b *testing.B) { run(b, impl.make(b), "waitq.(*Queue).Wait") })
	}
}

// BenchmarkWakeAll blocks 10,000 goroutines in Acquire(ctx, 1) on an empty
// semaphore, then releases them all with one Release(10000). Its metrics:
// p50-ns and p99-ns of the wake-all (from Release to the last return), and
// B/waiter, the heap and stack the blocked goroutines hold (runtime.MemStats,
// after a GC). The baseline, impl=raw-netpoll, is as many goroutines
// blocked reading one raw eventfd in the netpoller (RawConn.Read on one
// *os.File, which cannot cancel one reader alone) and one write(2).
func BenchmarkWakeAll(b *testing.B) {
	const n = 10000
	ctx := context.Background()
	run := func(b *testing.B, acquire func() error, release func(n uint64) error, asleep func(testing.TB, string, int), in string) {
		var lat testutil.Latencies
		var perWaiter float64
		for b.Loop() {
			before := memInUse()
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					if err := acquire(); err != nil {
						panic(err)
					}
				})
			}
			asleep(b, in, n)
			perWaiter += float64(memInUse()-before) / n
			t0 := time.Now()
			if err := release(n); err != nil {
				b.Fatal(err)
			}
			wg.Wait()
			lat.Add(time.Since(t0))
		}
		lat.Report(b)
		b.ReportMetric(perWaiter/float64(len(lat)), "B/waiter")
	}
	b.Run("impl=raw-netpoll", func(b *testing.B) {
		p := testutil.NewPolledEventfd(b, 0)
		run(b, p.Take, p.Give, testutil.ParkedReaders, "testutil.(*PolledEventfd).Take")
	})
	for _, impl := range sems {
		b.Run(impl.name, func(b *testing.B) {
			s := impl.make(b)
			run(b, func() error { return s.Acquire(ctx, 1) }, func(n uint64) error {
				s.Release(int64(n))
				return nil
			}, testutil.Parked, "waitq.(*Queue).Wait")
		})
	}
}

// memInUse is the heap and stack memory in use, after a collection.
func memInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}
