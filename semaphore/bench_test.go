//go:build linux

package semaphore

import (
	"context"
	"testing"
	"unsafe"

	xsem "golang.org/x/sync/semaphore"
	"golang.org/x/sys/unix"
)

// Each benchmark runs beside its baselines in the same run: the raw
// eventfd system calls (the floor) and golang.org/x/sync/semaphore.

func rawEventfd(b *testing.B, init uint) int {
	fd, err := unix.Eventfd(init, unix.EFD_SEMAPHORE|unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unix.Close(fd) })
	return fd
}

// BenchmarkReleaseAcquire is one uncontended Release(1) followed by one
// Acquire(ctx, 1).
func BenchmarkReleaseAcquire(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=raw-eventfd", func(b *testing.B) {
		fd := rawEventfd(b, 0)
		one := uint64(1)
		w := (*[8]byte)(unsafe.Pointer(&one))[:]
		var r [8]byte
		b.ReportAllocs()
		for b.Loop() {
			if _, err := unix.Write(fd, w); err != nil {
				b.Fatal(err)
			}
			if _, err := unix.Read(fd, r[:]); err != nil {
				b.Fatal(err)
			}
		}
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
		fd := rawEventfd(b, 0)
		var r [8]byte
		b.ReportAllocs()
		for b.Loop() {
			if _, err := unix.Read(fd, r[:]); err != unix.EAGAIN {
				b.Fatal(err)
			}
		}
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
