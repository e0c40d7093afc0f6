//go:build linux

package waitgroup

import (
	"sync"
	"testing"
	"time"

	"github.com/eventsync/eventsync/internal/testutil"
	"golang.org/x/sys/unix"
)

// BenchmarkAddDone is Add(1) then Done() with nobody waiting, beside the
// raw floor (a write and a read on a semaphore-mode eventfd) and
// sync.WaitGroup. impl=eventsync is a WaitGroup never shared: its counter is
// an atomic integer. impl=eventsync-shared has been passed to another
// process: Done then costs one system call more than the floor, poll(2), to
// learn whether the counter reached zero while somebody waits.
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
	b.Run("impl=eventsync-shared", func(b *testing.B) {
		wg := newWG(b)
		wg.shared()
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

// BenchmarkWake is a Done that releases a goroutine blocked in Wait, and
// that goroutine's answer on a channel: one round trip per iteration.
func BenchmarkWake(b *testing.B) {
	round := func(b *testing.B, add func(), done func(), wait func()) {
		ready, back := make(chan struct{}), make(chan struct{})
		go func() {
			for range ready {
				wait()
				back <- struct{}{}
			}
		}()
		b.ReportAllocs()
		for b.Loop() {
			add()
			ready <- struct{}{}
			done()
			<-back
		}
		close(ready)
	}
	b.Run("impl=sync", func(b *testing.B) {
		var wg sync.WaitGroup
		round(b, func() { wg.Add(1) }, wg.Done, wg.Wait)
	})
	b.Run("impl=eventsync", func(b *testing.B) {
		wg := newWG(b)
		round(b, func() { wg.Add(1) }, wg.Done, wg.Wait)
	})
	b.Run("impl=eventsync-shared", func(b *testing.B) {
		wg := newWG(b)
		wg.shared()
		round(b, func() { wg.Add(1) }, wg.Done, wg.Wait)
	})
}

// BenchmarkWakeLatency is the time from a Done that brings the counter to
// zero to the return of a Wait whose goroutine was asleep, beside
// sync.WaitGroup. Read the p50-ns and p99-ns metrics: ns/op also counts
// making each waiter and seeing it asleep, and means nothing.
func BenchmarkWakeLatency(b *testing.B) {
	type group interface {
		Add(int)
		Done()
		Wait()
	}
	run := func(b *testing.B, wg group, asleepIn string) {
		returned := make(chan time.Time)
		var lat testutil.Latencies
		for b.Loop() {
			wg.Add(1)
			go func() {
				wg.Wait()
				returned <- time.Now()
			}()
			testutil.Parked(b, asleepIn, 1)
			t0 := time.Now()
			wg.Done()
			lat.Add((<-returned).Sub(t0))
		}
		lat.Report(b)
	}
	b.Run("impl=sync", func(b *testing.B) { run(b, &sync.WaitGroup{}, "sync.(*WaitGroup).Wait") })
	b.Run("impl=eventsync", func(b *testing.B) { run(b, newWG(b), "waitq.(*Queue).Wait") })
	b.Run("impl=eventsync-shared", func(b *testing.B) {
		wg := newWG(b)
		wg.shared()
		run(b, wg, "waitq.(*Queue).Wait")
	})
}
