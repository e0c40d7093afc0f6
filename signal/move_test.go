//go:build linux

package signal

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eventsync/eventsync/internal/testutil"
	"golang.org/x/sys/unix"
)

// The move of the pending count from the process into an eventfd, on the
// first File, PassTo or Send, racing notifiers and waiters: every
// notification is returned by exactly one wait, or still pending.

// unixPair returns two connected Unix sockets of this process, for Send
// and Receive between goroutines.
func unixPair(t testing.TB) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var conns [2]*net.UnixConn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c.(*net.UnixConn)
	}
	return conns[0], conns[1]
}

const (
	stormNotifiers = 3
	stormNotifies  = 20 // per notifier
	stormWaiters   = 4
)

// stormWaiter waits on s in random ways until root is done, adding what
// its waits return to got.
func stormWaiter(t testing.TB, s *Signal, root context.Context, rng *rand.Rand, canc *testutil.Canceller, got *atomic.Uint64) {
	for root.Err() == nil {
		switch rng.IntN(4) {
		case 0, 1:
			ctx, done := canc.Context()
			v, err := s.Wait(ctx)
			done()
			switch {
			case err == nil && v > 0:
				got.Add(v)
			case err == nil:
				t.Errorf("Wait returned 0 without an error")
			case !errors.Is(err, context.Canceled) || ctx.Err() == nil:
				t.Errorf("Wait = %d, %v", v, err)
			}
		case 2:
			if v, ok := s.TryWait(); ok {
				if v == 0 {
					t.Errorf("TryWait returned 0, true")
				}
				got.Add(v)
			}
		case 3:
			select {
			case <-s.Ready():
				if v, ok := s.TryWait(); ok {
					got.Add(v)
				}
			case <-root.Done():
			}
		}
		canc.Tick()
	}
}

// How a storm shares its Signal, at a random point.
const (
	byFile   = "File"
	bySend   = "Send"
	byPassTo = "PassTo"
)

// One round: notifiers add a known total while waiters take it in every
// way, and another goroutine shares s at a random point. What the waits
// returned plus what is pending is the total, exactly.
func stormRound(t *testing.T, seed uint64, how string) {
	s := newSig(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	root, stop := context.WithCancel(context.Background())
	defer stop()
	canc := testutil.NewCanceller(root, seed)
	trig := testutil.NewTrigger(rng.Int64N(stormNotifiers*stormNotifies + 10))
	var notified, got atomic.Uint64

	var waiters sync.WaitGroup
	for i := range stormWaiters {
		wrng := rand.New(rand.NewPCG(seed, uint64(i)+100))
		waiters.Go(func() { stormWaiter(t, s, root, wrng, canc, &got) })
	}

	var mine, theirs *net.UnixConn
	if how == bySend {
		mine, theirs = unixPair(t)
		defer mine.Close()
		defer theirs.Close()
	}
	var child *exec.Cmd
	shared := make(chan struct{})
	go func() {
		defer close(shared)
		<-trig.C()
		switch how {
		case byFile:
			f, err := s.File()
			if err != nil {
				t.Errorf("File: %v", err)
				return
			}
			f.Close()
		case byPassTo:
			// The child's notifications count too: 1+2+3.
			child = testutil.Child(t, "writer", "sig", "1", "2", "3")
			if err := s.PassTo(child, "sig"); err != nil {
				t.Errorf("PassTo: %v", err)
				return
			}
			err := child.Start()
			for _, f := range child.ExtraFiles {
				f.Close()
			}
			if err != nil {
				t.Errorf("starting the child: %v", err)
				child = nil
				return
			}
			notified.Add(6)
		case bySend:
			received := make(chan *Signal, 1)
			go func() {
				other, err := Receive(theirs)
				if err != nil {
					t.Errorf("Receive: %v", err)
				}
				received <- other
			}()
			if err := s.Send(mine); err != nil {
				t.Errorf("Send: %v", err)
			}
			other := <-received
			if other == nil {
				return
			}
			// The second handle waits too, until the end of the round.
			waiters.Go(func() {
				stormWaiter(t, other, root, rand.New(rand.NewPCG(seed, 0)), canc, &got)
				if err := other.Close(); err != nil {
					t.Errorf("closing the received Signal: %v", err)
				}
			})
		}
	}()

	var notifiers sync.WaitGroup
	for i := range stormNotifiers {
		nrng := rand.New(rand.NewPCG(seed, uint64(i)+200))
		notifiers.Go(func() {
			for range stormNotifies {
				n := nrng.Uint64N(5) + 1
				notified.Add(n)
				s.NotifyN(n)
				trig.Tick()
				canc.Tick()
			}
		})
	}
	testutil.Join(t, "the notifiers return", &notifiers)
	trig.Fire()
	testutil.Await(t, "the sharer returns", shared)
	if child != nil {
		if err := child.Wait(); err != nil {
			t.Errorf("writer child: %v", err)
		}
	}
	// Everything is notified: let the waiters go.
	stop()
	testutil.Join(t, "the waiters return", &waiters)
	if t.Failed() {
		t.Fatalf("seed %d, %s: failed", seed, how)
	}
	pending := value(t, s)
	if g, n := got.Load(), notified.Load(); g+pending != n {
		t.Fatalf("seed %d, %s: waits returned %d and %d is pending, but %d were notified", seed, how, g, pending, n)
	}
}

// Notifiers, waiters (Wait with contexts cancelled before and during the
// call, TryWait, Ready) and a goroutine that shares the Signal at a random
// point: through File, through Send to a second handle that waits too, or
// through PassTo to a child that notifies too. Every notification is
// returned by exactly one wait or is still pending: none lost, none
// invented.
func TestMoveStorm(t *testing.T) {
	for _, c := range []struct {
		how    string
		rounds int
	}{
		{byFile, 200},
		{bySend, 100},
		{byPassTo, 3}, // a process per round, about a second each under -race
	} {
		t.Run(c.how, func(t *testing.T) {
			base := rand.Uint64()
			for round := range c.rounds {
				stormRound(t, base+uint64(round), c.how)
			}
		})
	}
}

// A pending count and waiters queued in the process arrive whole in the
// eventfd: waiters blocked before the move are served by notifications
// written to the eventfd by a second handle, which only the poller sees,
// one waiter per notification, in the order they came, and the count that
// was pending before the move is still there for the first of them.
func TestMoveKeepsQueue(t *testing.T) {
	for round := range 20 {
		s := newSig(t)
		if s.c.FD() != nil {
			t.Skip("the count is in an eventfd from New (EVENTSYNC_TEST_SHARED): there is no move to make")
		}
		const waiters = 8
		type result struct {
			i int
			v uint64
		}
		served := make(chan result, waiters)
		var wg sync.WaitGroup
		for i := range waiters {
			wg.Go(func() {
				v, err := s.Wait(context.Background())
				if err != nil {
					t.Errorf("waiter %d: %v", i, err)
				}
				served <- result{i, v}
			})
			blocked(t, s, i+1)
		}
		// One served in the process, before the move.
		s.NotifyN(uint64(round + 1))
		if r := testutil.Await(t, "the first waiter is served", served); r.i != 0 || r.v != uint64(round+1) {
			t.Fatalf("round %d: NotifyN(%d) before the move served waiter %d with %d, want waiter 0 with %d", round, round+1, r.i, r.v, round+1)
		}
		blocked(t, s, waiters-1)

		f, err := s.File()
		if err != nil {
			t.Fatal(err)
		}
		other, err := FromFile(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < waiters; i++ {
			other.NotifyN(uint64(i))
			r := testutil.Await(t, "a waiter is served", served)
			if r.i != i || r.v != uint64(i) {
				t.Fatalf("round %d: NotifyN(%d) after the move served waiter %d with %d, want waiter %d", round, i, r.i, r.v, i)
			}
		}
		testutil.Join(t, "the waiters return", &wg)
		if v := value(t, s); v != 0 {
			t.Fatalf("round %d: Value() = %d once every waiter was served, want 0", round, v)
		}
		other.Close()
	}
}

// A count pending in the process when it moves arrives whole in the
// eventfd, and a Ready channel asked for before the move fires on a
// notification written to the eventfd after it.
func TestMovePendingAndReady(t *testing.T) {
	s := newSig(t)
	if s.c.FD() != nil {
		t.Skip("the count is in an eventfd from New (EVENTSYNC_TEST_SHARED): there is no move to make")
	}
	s.NotifyN(41)
	f, err := s.File()
	if err != nil {
		t.Fatal(err)
	}
	other, err := FromFile(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if v := testutil.Value(t, other.Value); v != 41 {
		t.Fatalf("the eventfd holds %d after the move, want the 41 pending", v)
	}
	if v, ok := other.TryWait(); !ok || v != 41 {
		t.Fatalf("TryWait on the second handle = %d, %t, want 41", v, ok)
	}

	// Ready asked for in the process, then the move, then a notification
	// through the eventfd.
	s2 := newSig(t)
	ready := s2.Ready()
	f, err = s2.File()
	if err != nil {
		t.Fatal(err)
	}
	other2, err := FromFile(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer other2.Close()
	other2.Notify()
	testutil.Await(t, "Ready fires on a notification after the move", ready)
	if v, ok := s2.TryWait(); !ok || v != 1 {
		t.Fatalf("TryWait = %d, %t after Ready, want 1", v, ok)
	}
}
