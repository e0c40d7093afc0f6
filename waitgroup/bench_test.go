//go:build linux

package waitgroup

import (
	"sync"
	"testing"

	"github.com/eventsync/eventsync/internal/testutil"
	"golang.org/x/sys/unix"
)

// BenchmarkAddDone is Add(1) then Done() with nobody waiting, beside the
// raw floor (a write and a read on a semaphore-mode eventfd) and
// sync.WaitGroup. Done costs one system call more than the floor: poll(2),
// to learn whether the counter reached zero while somebody waits.
func BenchmarkAddDone(b *testing.B) {
	b.Run("impl=raw-eventfd", func(b *testing.B) {
		fd := testutil.Eventfd(b, 0, unix.EFD_SEMAPHORE|unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
		testutil.RawWriteRead(b, fd)
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
