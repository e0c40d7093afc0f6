//go:build linux

package semaphore

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/eventsync/eventsync/internal/testutil"
	xsem "golang.org/x/sync/semaphore"
	"golang.org/x/sys/unix"
)

// Each benchmark runs beside its baselines in the same run: the raw
// eventfd system calls (the floor) and golang.org/x/sync/semaphore.
// impl=eventsync-shared is a Semaphore whose descriptor has been handed out
// (here with File): its reads use preadv2(RWF_NOWAIT), so that no holder
// can make them block by clearing O_NONBLOCK.

// sems are the two ways a Semaphore is benchmarked.
var sems = []struct {
	name string
	make func(*testing.B) *Semaphore
}{
	{"impl=eventsync", func(b *testing.B) *Semaphore { return newSem(b, 0) }},
	{"impl=eventsync-shared", sharedSem},
}

// sharedSem returns a Semaphore whose descriptor another holder has seen.
func sharedSem(b *testing.B) *Semaphore {
	s := newSem(b, 0)
	f, err := s.File()
	if err != nil {
		b.Fatal(err)
	}
	f.Close()
	return s
}

// rawEventfd is the floor's eventfd, in the mode a Semaphore uses.
func rawEventfd(b *testing.B) int {
	return testutil.Eventfd(b, 0, unix.EFD_SEMAPHORE|unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
}

// BenchmarkReleaseAcquire is one uncontended Release(1) followed by one
// Acquire(ctx, 1).
func BenchmarkReleaseAcquire(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=raw-eventfd", func(b *testing.B) {
		testutil.RawWriteRead(b, rawEventfd(b))
	})
	// The floor of impl=eventsync-shared, whose reads cannot be read(2).
	b.Run("impl=raw-eventfd-nowait", func(b *testing.B) {
		testutil.RawWriteReadNoWait(b, rawEventfd(b))
	})
	for _, impl := range sems {
		b.Run(impl.name, func(b *testing.B) {
			s := impl.make(b)
			b.ReportAllocs()
			for b.Loop() {
				s.Release(1)
				if err := s.Acquire(ctx, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// A shared Semaphore of size 1 whose permit this process holds: each
	// Release and Acquire is recorded in the members' record.
	b.Run("impl=eventsync-recorded", func(b *testing.B) {
		s := newSem(b, 1)
		if err := s.Acquire(ctx, 1); err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.share(); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			s.Release(1)
			if err := s.Acquire(ctx, 1); err != nil {
				b.Fatal(err)
			}
		}
		if h, err := s.Holdings(); err != nil || h.Held != 1 {
			b.Fatalf("Holdings = %+v, %v; want the 1 permit held", h, err)
		}
	})
	b.Run("impl=x-sync", func(b *testing.B) {
		s := xsem.NewWeighted(1)
		if err := s.Acquire(ctx, 1); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			s.Release(1)
			if err := s.Acquire(ctx, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTryAcquireFail is a TryAcquire(1) on an empty semaphore.
func BenchmarkTryAcquireFail(b *testing.B) {
	b.Run("impl=raw-eventfd", func(b *testing.B) {
		testutil.RawReadEmpty(b, rawEventfd(b))
	})
	for _, impl := range sems {
		b.Run(impl.name, func(b *testing.B) {
			s := impl.make(b)
			b.ReportAllocs()
			for b.Loop() {
				if s.TryAcquire(1) {
					b.Fatal("TryAcquire succeeded")
				}
			}
		})
	}
	b.Run("impl=x-sync", func(b *testing.B) {
		s := xsem.NewWeighted(1)
		s.TryAcquire(1)
		b.ReportAllocs()
		for b.Loop() {
			if s.TryAcquire(1) {
				b.Fatal("TryAcquire succeeded")
			}
		}
	})
}

// BenchmarkPingPong hands a permit back and forth between two goroutines
// through two Semaphores: every operation finds the other side blocked.
// The baseline is an unbuffered channel pair.
func BenchmarkPingPong(b *testing.B) {
	b.Run("impl=chan", func(b *testing.B) {
		ping, pong := make(chan struct{}), make(chan struct{})
		go func() {
			for range ping {
				pong <- struct{}{}
			}
		}()
		b.ReportAllocs()
		for b.Loop() {
			ping <- struct{}{}
			<-pong
		}
		close(ping)
	})
	for _, impl := range sems {
		b.Run(impl.name, func(b *testing.B) {
			ping, pong := impl.make(b), impl.make(b)
			ctx := context.Background()
			stop := make(chan struct{})
			go func() {
				for {
					if ping.Acquire(ctx, 1) != nil {
						close(stop)
						return
					}
					pong.Release(1)
				}
			}()
			b.ReportAllocs()
			for b.Loop() {
				ping.Release(1)
				if err := pong.Acquire(ctx, 1); err != nil {
					b.Fatal(err)
				}
			}
			ping.Close()
			<-stop
		})
	}
}

// BenchmarkContended runs 2, 8 and 64 goroutines taking and giving back one
// of 4 permits, beside golang.org/x/sync/semaphore.
func BenchmarkContended(b *testing.B) {
	for _, g := range []int{2, 8, 64} {
		run := func(b *testing.B, acquire func() error, release func()) {
			b.SetParallelism((g + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := acquire(); err != nil {
						b.Error(err)
						return
					}
					release()
				}
			})
		}
		ctx := context.Background()
		b.Run(fmt.Sprintf("g=%d/impl=x-sync", g), func(b *testing.B) {
			w := xsem.NewWeighted(4)
			run(b, func() error { return w.Acquire(ctx, 1) }, func() { w.Release(1) })
		})
		for _, impl := range sems {
			b.Run(fmt.Sprintf("g=%d/%s", g, impl.name), func(b *testing.B) {
				s := impl.make(b)
				s.Release(4)
				run(b, func() error { return s.Acquire(ctx, 1) }, func() { s.Release(1) })
			})
		}
	}
}
