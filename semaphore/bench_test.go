//go:build linux

package semaphore

import (
	"context"
	"testing"

	"github.com/eventsync/eventsync/internal/testutil"
	xsem "golang.org/x/sync/semaphore"
	"golang.org/x/sys/unix"
)

// Each benchmark runs beside its baselines in the same run: the raw
// eventfd system calls (the floor) and golang.org/x/sync/semaphore.

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
	b.Run("impl=eventsync", func(b *testing.B) {
		s := newSem(b, 0)
		b.ReportAllocs()
		for b.Loop() {
			s.Release(1)
			if err := s.Acquire(ctx, 1); err != nil {
				b.Fatal(err)
			}
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
	b.Run("impl=eventsync", func(b *testing.B) {
		s := newSem(b, 0)
		b.ReportAllocs()
		for b.Loop() {
			if s.TryAcquire(1) {
				b.Fatal("TryAcquire succeeded")
			}
		}
	})
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
