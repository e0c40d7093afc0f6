//go:build linux

package semaphore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eventsync/eventsync/internal/testutil"
	"golang.org/x/sys/unix"
)

// The move of the permits from the process into an eventfd, on the first
// File, PassTo or Send, racing every operation: nothing is lost, nothing is
// invented, nobody hangs.

func init() {
	// storm-child NAME PERMITS ROUNDS: takes 1 to 3 permits ROUNDS times,
	// checking while it holds them that the eventfd holds no more than the
	// rest, and gives them back.
	childRoles["storm-child"] = func(args []string) error {
		s, err := Inherited(args[0])
		if err != nil {
			return err
		}
		defer s.Close()
		permits, _ := strconv.ParseInt(args[1], 10, 64)
		rounds, _ := strconv.Atoi(args[2])
		for range rounds {
			n := rand.Int64N(min(3, permits)) + 1
			if err := s.Acquire(context.Background(), n); err != nil {
				return fmt.Errorf("Acquire(%d): %w", n, err)
			}
			if v, err := s.Value(); err != nil || v > uint64(permits-n) {
				return fmt.Errorf("holding %d of %d, Value() = %d, %v", n, permits, v, err)
			}
			s.Release(n)
		}
		return nil
	}
}

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

// ledger counts the permits the goroutines of this process hold, as they
// believe: it goes up after an Acquire succeeds and down before the
// Release, so it never exceeds what they really hold, which never exceeds
// the permits.
type ledger struct {
	t       testing.TB
	permits int64
	held    atomic.Int64
	max     atomic.Int64
	// lost counts permits whose Release panicked because the Semaphore was
	// closed: they went back to nobody.
	lost atomic.Int64
	// closing is set when Release on a closed Semaphore may panic.
	closing bool
}

func (l *ledger) take(n int64) {
	h := l.held.Add(n)
	if h > l.permits {
		l.t.Errorf("%d permits held at once, of %d", h, l.permits)
	}
	for m := l.max.Load(); h > m && !l.max.CompareAndSwap(m, h); m = l.max.Load() {
	}
}

// give gives back n permits through s, and accounts for a Release that
// panics on a closed Semaphore.
func (l *ledger) give(s *Semaphore, n int64) {
	l.held.Add(-n)
	msg := testutil.PanicMessage(func() { s.Release(n) })
	switch {
	case msg == "":
	case l.closing && msg == "semaphore: Release on closed Semaphore":
		l.lost.Add(n)
	default:
		l.t.Errorf("Release(%d) panicked: %s", n, msg)
	}
}

// acquireErr checks what a failed Acquire returned.
func (l *ledger) acquireErr(ctx context.Context, n int64, err error) {
	switch {
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
	case l.closing && errors.Is(err, os.ErrClosed):
	default:
		l.t.Errorf("Acquire(%d) = %v", n, err)
	}
}

// stormWorker runs ops random operations on s: Acquire of 1 to 3 permits
// with a context from canc, TryAcquire, Value; while it holds permits it
// may take one more with TryAcquire. It gives back exactly what it took.
func stormWorker(s *Semaphore, l *ledger, ops int, rng *rand.Rand, canc *testutil.Canceller, ticks ...interface{ Tick() }) {
	tick := func() {
		for _, tk := range ticks {
			tk.Tick()
		}
	}
	for range ops {
		n := rng.Int64N(min(3, l.permits)) + 1
		var got int64
		switch rng.IntN(4) {
		case 0, 1:
			ctx, done := canc.Context()
			if err := s.Acquire(ctx, n); err == nil {
				got = n
			} else {
				l.acquireErr(ctx, n, err)
			}
			done()
		case 2:
			if s.TryAcquire(n) {
				got = n
			}
		case 3:
			if v, err := s.Value(); err == nil && v > uint64(l.permits) {
				l.t.Errorf("Value() = %d, more than the %d permits", v, l.permits)
			} else if err != nil && !(l.closing && errors.Is(err, os.ErrClosed)) {
				l.t.Errorf("Value() = %v", err)
			}
		}
		tick()
		if got == 0 {
			continue
		}
		l.take(got)
		var extra int64
		if rng.IntN(3) == 0 && s.TryAcquire(1) {
			extra = 1
			l.take(1)
		}
		tick()
		runtime.Gosched() // hold a while, so that others queue
		if extra != 0 {
			l.give(s, extra)
		}
		l.give(s, got)
	}
}

// eventfdCount returns the count of s's eventfd through a second handle
// made from File, which moves the permits there if they are not yet.
func eventfdCount(t testing.TB, s *Semaphore) uint64 {
	t.Helper()
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
	return testutil.Value(t, other.Value)
}

// How a storm shares its Semaphore, at a random point.
const (
	byFile   = "File"
	bySend   = "Send"
	byPassTo = "PassTo"
)

const (
	stormWorkers = 6
	stormOps     = 24 // per worker
)

// One round of the storm: workers acquire, try, release and cancel while
// another goroutine shares s, by File, Send or PassTo, at a random point.
// At quiescence every permit is back, in s and in its eventfd.
func stormRound(t *testing.T, seed uint64, permits int64, how string) {
	s := newSem(t, permits)
	rng := rand.New(rand.NewPCG(seed, 1))
	l := &ledger{t: t, permits: permits}
	canc := testutil.NewCanceller(context.Background(), seed)
	trig := testutil.NewTrigger(rng.Int64N(stormWorkers * stormOps))

	var wg sync.WaitGroup
	for i := range stormWorkers {
		wrng := rand.New(rand.NewPCG(seed, uint64(i)+2))
		wg.Go(func() { stormWorker(s, l, stormOps, wrng, canc, trig, canc) })
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
			child = testutil.Child(t, "storm-child", "sem", strconv.FormatInt(permits, 10), "5")
			if err := s.PassTo(child, "sem"); err != nil {
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
			}
		case bySend:
			received := make(chan *Semaphore, 1)
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
			// The second handle joins the storm, on the same ledger.
			stormWorker(other, l, stormOps, rand.New(rand.NewPCG(seed, 0)), canc, canc)
			if err := other.Close(); err != nil {
				t.Errorf("closing the received Semaphore: %v", err)
			}
		}
	}()
	testutil.Join(t, "the storm's workers return", &wg)
	trig.Fire() // a storm too short for its mark: nothing to race
	testutil.Await(t, "the sharer returns", shared)
	if child != nil {
		if err := child.Wait(); err != nil {
			t.Errorf("storm child: %v", err)
		}
	}
	if t.Failed() {
		t.Fatalf("seed %d, %s: failed", seed, how)
	}
	if h := l.held.Load(); h != 0 {
		t.Fatalf("seed %d, %s: ledger holds %d at quiescence", seed, how, h)
	}
	if v := value(t, s); v != uint64(permits) {
		t.Fatalf("seed %d, %s: Value() = %d at quiescence, want the %d permits", seed, how, v, permits)
	}
	if v := eventfdCount(t, s); v != uint64(permits) {
		t.Fatalf("seed %d, %s: the eventfd holds %d at quiescence, want the %d permits", seed, how, v, permits)
	}
}

// Goroutines acquiring (weights 1 to 3, contexts cancelled before and
// during the call), trying and releasing, while another goroutine shares
// the Semaphore at a random point: through File, through Send to a second
// handle that joins the storm, or through PassTo to a child that takes
// and gives back permits too. No more than the permits are ever held, and
// at quiescence all of them are back, in s and in the eventfd.
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
				permits := int64(3 + round%3)
				stormRound(t, base+uint64(round), permits, c.how)
			}
		})
	}
}

// The storm with Close at a random point, after the share or instead of
// it. Every goroutine returns: Acquire fails with os.ErrClosed or its
// context's error, a Release on the closed Semaphore panics and gives
// nothing back. Through a handle taken with File before Close, the eventfd
// holds the permits but those whose Release panicked.
func TestMoveStormClose(t *testing.T) {
	for _, share := range []bool{true, false} {
		name := "File-then-Close"
		if !share {
			name = "Close-unshared"
		}
		t.Run(name, func(t *testing.T) {
			base := rand.Uint64()
			for round := range 150 {
				closeRound(t, base+uint64(round), int64(3+round%3), share)
			}
		})
	}
}

func closeRound(t *testing.T, seed uint64, permits int64, share bool) {
	s, err := New(permits)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	l := &ledger{t: t, permits: permits, closing: true}
	canc := testutil.NewCanceller(context.Background(), seed)
	total := int64(stormWorkers * stormOps)
	shareAt := rng.Int64N(total)
	shareTrig := testutil.NewTrigger(shareAt)
	// Close at the share, or a little after it.
	closeTrig := testutil.NewTrigger(shareAt + rng.Int64N(8))

	var wg sync.WaitGroup
	for i := range stormWorkers {
		wrng := rand.New(rand.NewPCG(seed, uint64(i)+2))
		wg.Go(func() { stormWorker(s, l, stormOps, wrng, canc, shareTrig, closeTrig, canc) })
	}
	var other *Semaphore
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		if share {
			<-shareTrig.C()
			f, err := s.File()
			if err != nil {
				t.Errorf("File: %v", err)
				return
			}
			other, err = FromFile(f)
			f.Close()
			if err != nil {
				t.Errorf("FromFile: %v", err)
				return
			}
		}
		<-closeTrig.C()
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	testutil.Join(t, "the storm's workers return", &wg)
	shareTrig.Fire()
	closeTrig.Fire()
	testutil.Await(t, "the closer returns", closed)
	if other != nil {
		defer other.Close()
	}
	if t.Failed() {
		t.Fatalf("seed %d: failed", seed)
	}
	if h := l.held.Load(); h != 0 {
		t.Fatalf("seed %d: ledger holds %d at quiescence", seed, h)
	}
	if _, err := s.Value(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("seed %d: Value() after Close = %v, want os.ErrClosed", seed, err)
	}
	if other == nil {
		return
	}
	want := uint64(permits - l.lost.Load())
	if v := testutil.Value(t, other.Value); v != want {
		t.Fatalf("seed %d: the eventfd holds %d after Close, want %d permits less the %d whose Release panicked",
			seed, v, permits, l.lost.Load())
	}
}

// Waiters queued while the permits live in the process keep their place
// when they move into the eventfd: each Release after the move serves the
// front waiter, whoever gives the permits (s itself, or a second handle on
// the eventfd, which only the poller sees), and waiters cancelled before
// the move are skipped.
func TestMoveKeepsQueue(t *testing.T) {
	for _, via := range []string{"s", "second handle"} {
		t.Run(via, func(t *testing.T) {
			for round := range 20 {
				keepsQueueRound(t, uint64(round), via == "s")
			}
		})
	}
}

func keepsQueueRound(t *testing.T, seed uint64, releaseHere bool) {
	s := newSem(t, 0)
	if s.c.FD() != nil {
		t.Skip("the permits are in an eventfd from New (EVENTSYNC_TEST_SHARED): there is no move to make")
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	const waiters = 12
	type waiter struct {
		n      int64
		cancel context.CancelFunc
		err    chan error
	}
	served := make(chan int, waiters)
	ws := make([]waiter, waiters)
	var wg sync.WaitGroup
	for i := range ws {
		w := &ws[i]
		w.n = rng.Int64N(3) + 1
		w.err = make(chan error, 1)
		var ctx context.Context
		ctx, w.cancel = context.WithCancel(context.Background())
		wg.Go(func() {
			err := s.Acquire(ctx, w.n)
			if err == nil {
				served <- i
			}
			w.err <- err
		})
		// One at a time, so that the queue's order is known.
		blocked(t, s, i+1)
	}
	// Some leave the queue before the move.
	var cancelled []int
	for i := range ws {
		if rng.IntN(4) == 0 {
			ws[i].cancel()
			cancelled = append(cancelled, i)
		}
	}
	for _, i := range cancelled {
		if err := <-ws[i].err; !errors.Is(err, context.Canceled) {
			t.Fatalf("seed %d: cancelled waiter %d: Acquire = %v", seed, i, err)
		}
	}
	blocked(t, s, waiters-len(cancelled))

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
	release := other.Release
	if releaseHere {
		release = s.Release
	}

	for i := range ws {
		if slices.Contains(cancelled, i) {
			continue
		}
		release(ws[i].n)
		if got := testutil.Await(t, "a waiter is served", served); got != i {
			t.Fatalf("seed %d: Release(%d) for waiter %d served waiter %d", seed, ws[i].n, i, got)
		}
		if err := <-ws[i].err; err != nil {
			t.Fatalf("seed %d: waiter %d: %v", seed, i, err)
		}
		if v := testutil.Value(t, other.Value); v != 0 {
			t.Fatalf("seed %d: the eventfd holds %d after serving waiter %d, want 0", seed, v, i)
		}
	}
	wg.Wait()
	for i := range ws {
		ws[i].cancel()
	}
	if v := value(t, s); v != 0 {
		t.Fatalf("seed %d: Value() = %d once every waiter was served, want 0", seed, v)
	}
}
