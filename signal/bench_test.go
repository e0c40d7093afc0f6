//go:build linux

package signal

import (
	"context"
	"testing"

	"github.com/eventsync/eventsync/internal/testutil"
	"golang.org/x/sys/unix"
)

// Each benchmark runs beside its baselines in the same run: the raw
// eventfd system calls (the floor) and a buffered channel. Compare them
// with benchstat -col /impl.

// impl=eventsync-shared is a Signal whose descriptor has been handed out
// (here with File): its reads use preadv2(RWF_NOWAIT), so that no holder
// can make them block by clearing O_NONBLOCK.
var sigs = []struct {
	name string
	make func(*testing.B) *Signal
}{
	{"impl=eventsync", func(b *testing.B) *Signal { return newSig(b) }},
	{"impl=eventsync-shared", func(b *testing.B) *Signal {
		s := newSig(b)
		f, err := s.File()
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
		return s
	}},
}

// rawEventfd is the floor's eventfd, in the mode a Signal uses.
func rawEventfd(b *testing.B) int {
	return testutil.Eventfd(b, 0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
}

// BenchmarkNotifyTryWait is one uncontended Notify followed by one TryWait
// that takes it.
func BenchmarkNotifyTryWait(b *testing.B) {
	b.Run("impl=raw-eventfd", func(b *testing.B) {
		testutil.RawWriteRead(b, rawEventfd(b))
	})
	for _, impl := range sigs {
		b.Run(impl.name, func(b *testing.B) {
			s := impl.make(b)
			b.ReportAllocs()
			for b.Loop() {
				s.Notify()
				if v, ok := s.TryWait(); !ok || v != 1 {
					b.Fatalf("TryWait = %d, %v", v, ok)
				}
			}
		})
	}
	b.Run("impl=channel", func(b *testing.B) {
		ch := make(chan struct{}, 1)
		b.ReportAllocs()
		for b.Loop() {
			ch <- struct{}{}
			select {
			case <-ch:
			default:
				b.Fatal("nothing to receive")
			}
		}
	})
}

// BenchmarkTryWaitEmpty is a TryWait with nothing pending.
func BenchmarkTryWaitEmpty(b *testing.B) {
	b.Run("impl=raw-eventfd", func(b *testing.B) {
		testutil.RawReadEmpty(b, rawEventfd(b))
	})
	for _, impl := range sigs {
		b.Run(impl.name, func(b *testing.B) {
			s := impl.make(b)
			b.ReportAllocs()
			for b.Loop() {
				if v, ok := s.TryWait(); ok {
					b.Fatalf("TryWait = %d, true", v)
				}
			}
		})
	}
	b.Run("impl=channel", func(b *testing.B) {
		ch := make(chan struct{}, 1)
		b.ReportAllocs()
		for b.Loop() {
			select {
			case <-ch:
				b.Fatal("received from an empty channel")
			default:
			}
		}
	})
}

// BenchmarkPingPong hands a notification back and forth between two
// goroutines through two Signals: every Notify finds the other side
// blocked in Wait. The baseline is an unbuffered channel pair.
func BenchmarkPingPong(b *testing.B) {
	b.Run("impl=channel", func(b *testing.B) {
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
	for _, impl := range sigs {
		b.Run(impl.name, func(b *testing.B) {
			ping, pong := impl.make(b), impl.make(b)
			ctx := context.Background()
			stop := make(chan struct{})
			go func() {
				for {
					if _, err := ping.Wait(ctx); err != nil {
						close(stop)
						return
					}
					pong.Notify()
				}
			}()
			b.ReportAllocs()
			for b.Loop() {
				ping.Notify()
				if _, err := pong.Wait(ctx); err != nil {
					b.Fatal(err)
				}
			}
			ping.Close()
			<-stop
		})
	}
}
