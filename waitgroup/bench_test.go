//go:build linux

package waitgroup

import (
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BenchmarkAddDone is Add(1) then Done() with nobody waiting, beside the
// raw floor (a write and a read on a semaphore-mode eventfd) and
// sync.WaitGroup. Done costs one system call more than the floor: poll(2),
// to learn whether the counter reached zero while somebody waits.
func BenchmarkAddDone(b *testing.B) {
	b.Run("impl=raw-eventfd", func(b *testing.B) {
		fd, err := unix.Eventfd(0, unix.EFD_SEMAPHORE|unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
		if err != nil {
			b.Fatal(err)
		}
		defer unix.Close(fd)
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
		wg := newWG(b)
		b.ReportAllocs()
		for b.Loop() {
			wg.Add(1)
			wg.Done()
		}
	})
	b.Run("impl=sync", func(b *testing.B) {
		var wg sync.WaitGroup
		b.ReportAllocs()
		for b.Loop() {
			wg.Add(1)
			wg.Done()
		}
	})
}
