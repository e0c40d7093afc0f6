//go:build linux

package signal

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventsync/eventsync/internal/kernel"
	"github.com/eventsync/eventsync/internal/kernelaio"
	"github.com/eventsync/eventsync/internal/testutil"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

const maxCount = 1<<64 - 2

func newSig(t testing.TB) *Signal {
	t.Helper()
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func value(t testing.TB, s *Signal) uint64 {
	t.Helper()
	return testutil.Value(t, s.Value)
}

// blocked waits until n waiters are queued on s (a pending Ready counts).
func blocked(t testing.TB, s *Signal, n int) {
	t.Helper()
	testutil.Eventually(t, fmt.Sprintf("%d goroutines block in Wait", n), func() bool { return s.c.Queue().Len() == n })
}

// fdOf returns the descriptor number f holds, without (*os.File).Fd, which
// would put a descriptor that Go made non-blocking into blocking mode.
func fdOf(t testing.TB, f *os.File) int {
	t.Helper()
	raw, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	if err := raw.Control(func(u uintptr) { fd = int(u) }); err != nil {
		t.Fatal(err)
	}
	return fd
}

// result is what a Wait returned.
type result struct {
	v   uint64
	err error
}

// goWait calls s.Wait(ctx) on a new goroutine, which sends what it returns
// on the channel returned.
func goWait(ctx context.Context, s *Signal) chan result {
	res := make(chan result, 1)
	go func() {
		v, err := s.Wait(ctx)
		res <- result{v, err}
	}()
	return res
}

// goWaitOK calls s.Wait with no deadline on a new goroutine, which sends the
// value on the channel returned; an error fails the test.
func goWaitOK(t *testing.T, s *Signal) <-chan uint64 {
	got := make(chan uint64, 1)
	go func() {
		v, err := s.Wait(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- v
	}()
	return got
}

// adopt makes an eventfd holding init with flags, as a C program would, in
// a file called name, and adopts it with FromFile. It returns the
// descriptor number and the Signal; both are closed when the test ends.
func adopt(t *testing.T, init uint, flags int, name string) (efd int, s *Signal) {
	t.Helper()
	efd, f := testutil.EventfdFile(t, init, flags, name)
	s, err := FromFile(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return efd, s
}

// The man page demo's "Parent read 7": notifications add up, one Wait takes the sum.
func TestCoalescing(t *testing.T) {
	s := newSig(t)
	if v, ok := s.TryWait(); ok {
		t.Fatalf("TryWait on a new Signal = %d, true", v)
	}
	s.NotifyN(2)
	s.Notify()
	s.NotifyN(0) // nothing
	s.NotifyN(4)
	if v := value(t, s); v != 7 {
		t.Fatalf("Value = %d, want 7", v)
	}
	v, err := s.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v != 7 {
		t.Fatalf("Wait = %d, want 7", v)
	}
	if v := value(t, s); v != 0 {
		t.Fatalf("Value after Wait = %d, want 0", v)
	}
	if v, ok := s.TryWait(); ok {
		t.Fatalf("TryWait after Wait = %d, true", v)
	}
	s.NotifyN(3)
	if v, ok := s.TryWait(); !ok || v != 3 {
		t.Fatalf("TryWait = %d, %v; want 3, true", v, ok)
	}
}

// A blocked Wait returns what was notified while it slept, in one piece.
func TestWaitBlocks(t *testing.T) {
	s := newSig(t)
	got := goWaitOK(t, s)
	blocked(t, s, 1)
	s.NotifyN(5)
	if v := <-got; v != 5 {
		t.Fatalf("Wait = %d, want 5", v)
	}
	testutil.Eventually(t, "the poller returns", func() bool { return !s.c.Queue().Polling() })
}

// As in x/sync (go.dev/issue/63615): a context done before the call fails
// Wait even when notifications are pending, and takes nothing.
func TestWaitDoneContext(t *testing.T) {
	s := newSig(t)
	s.NotifyN(4)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if v, err := s.Wait(ctx); err != context.Canceled || v != 0 {
		t.Fatalf("Wait(done ctx) = %d, %v; want 0, context.Canceled", v, err)
	}
	if v := value(t, s); v != 4 {
		t.Fatalf("Value = %d after a failed Wait, want 4", v)
	}
}

// Cancelling one of eight blocked waiters leaves the others blocked, and
// each of them then takes one notification.
func TestCancelOneOfEight(t *testing.T) {
	s := newSig(t)
	results := make([]chan result, 8)
	cancels := make([]context.CancelFunc, 8)
	for i := range results {
		ctx, cancel := context.WithCancel(context.Background())
		cancels[i] = cancel
		results[i] = goWait(ctx, s)
	}
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	blocked(t, s, 8)
	cancels[3]()
	if r := <-results[3]; r.err != context.Canceled || r.v != 0 {
		t.Fatalf("cancelled Wait = %d, %v; want 0, context.Canceled", r.v, r.err)
	}
	blocked(t, s, 7)
	for i, r := range results {
		select {
		case r := <-r:
			t.Fatalf("waiter %d returned %d, %v after another was cancelled", i, r.v, r.err)
		default:
		}
	}
	// Each Notify wakes the first waiter, which takes the whole count.
	for n := 7; n > 0; n-- {
		s.Notify()
		blocked(t, s, n-1)
	}
	for i, r := range results {
		if i == 3 {
			continue
		}
		if r := <-r; r.err != nil || r.v != 1 {
			t.Fatalf("waiter %d: %d, %v; want 1, nil", i, r.v, r.err)
		}
	}
	if v := value(t, s); v != 0 {
		t.Fatalf("Value = %d, want 0", v)
	}
}

// While a goroutine of this process waits, TryWait does not jump the queue.
func TestTryWaitBehindWaiter(t *testing.T) {
	s := newSig(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := goWait(ctx, s)
	blocked(t, s, 1)
	if v, ok := s.TryWait(); ok {
		t.Fatalf("TryWait with a waiter queued = %d, true", v)
	}
	cancel()
	if err := (<-done).err; err != context.Canceled {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
}

// Exactly once: consumers wait with random cancellation while producers
// notify a known total. What the successful Waits returned, plus what is
// left, is the total; a Wait that failed took nothing.
func TestExactlyOnce(t *testing.T) {
	s := newSig(t)
	const (
		producers = 4
		perProd   = 2000
		consumers = 8
	)
	stop, stopAll := context.WithCancel(context.Background())
	defer stopAll()
	var received, succeeded, failed, precancelled atomic.Uint64
	var cwg sync.WaitGroup
	for range consumers {
		cwg.Go(func() {
			for stop.Err() == nil {
				var ctx context.Context
				var cancel context.CancelFunc
				switch rand.IntN(4) {
				case 0: // already done
					ctx, cancel = context.WithCancel(stop)
					cancel()
					precancelled.Add(1)
				case 1: // until the producers are done
					ctx, cancel = context.WithCancel(stop)
				default:
					ctx, cancel = context.WithTimeout(stop, time.Duration(rand.IntN(100))*time.Microsecond)
				}
				v, err := s.Wait(ctx)
				cancel()
				if err != nil {
					if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("Wait: %v", err)
						return
					}
					if v != 0 {
						t.Errorf("failed Wait returned %d", v)
					}
					failed.Add(1)
					continue
				}
				if v == 0 {
					t.Error("successful Wait returned 0")
				}
				received.Add(v)
				succeeded.Add(1)
			}
		})
	}
	var pwg sync.WaitGroup
	var sent atomic.Uint64
	for range producers {
		pwg.Go(func() {
			for i := range perProd {
				n := uint64(i%3) + 1
				if n == 1 {
					s.Notify()
				} else {
					s.NotifyN(n)
				}
				sent.Add(n)
				runtime.Gosched() // let the consumers in between
			}
		})
	}
	pwg.Wait()
	stopAll()
	cwg.Wait()
	left, _ := s.TryWait()
	if got, want := received.Load()+left, sent.Load(); got != want {
		t.Fatalf("received %d + left %d = %d, notified %d", received.Load(), left, got, want)
	}
	if v := value(t, s); v != 0 {
		t.Fatalf("Value after the final TryWait = %d", v)
	}
	if n := s.c.Queue().Len(); n != 0 {
		t.Fatalf("%d waiters left queued", n)
	}
	t.Logf("%d Waits succeeded, %d failed (%d pre-cancelled), %d left for TryWait",
		succeeded.Load(), failed.Load(), precancelled.Load(), left)
}

// A count served to a waiter whose context ends at the same moment is given
// back: cancel at random points and check that nothing is lost.
func TestCancelRace(t *testing.T) {
	s := newSig(t)
	var lost uint64
	for i := range 2000 {
		ctx, cancel := context.WithCancel(context.Background())
		res := goWait(ctx, s)
		if i%2 == 0 {
			blocked(t, s, 1)
		}
		notified := make(chan struct{})
		go func() { s.NotifyN(3); close(notified) }()
		cancel()
		r := <-res
		<-notified
		switch {
		case r.err == nil && r.v == 3:
			lost = 0
		case r.err == context.Canceled && r.v == 0:
			lost = 3
		default:
			t.Fatalf("round %d: Wait = %d, %v", i, r.v, r.err)
		}
		v, _ := s.TryWait()
		if v != lost {
			t.Fatalf("round %d: %d left after Wait returned %d, %v; want %d", i, v, r.v, r.err, lost)
		}
	}
}

// Ready in a select beside another channel: it fires only when something is
// pending, its channel is shared until it fires, and walking away from it
// loses nothing.
func TestReady(t *testing.T) {
	s := newSig(t)
	ch := s.Ready()
	select {
	case <-ch:
		t.Fatal("Ready fired with nothing pending")
	default:
	}
	if ch2 := s.Ready(); ch2 != ch {
		t.Fatal("two Ready calls before it fired returned different channels")
	}
	if n := s.c.Queue().Len(); n != 0 {
		t.Fatalf("%d waiters queued after two Ready calls, want none: Ready takes no place in line", n)
	}

	// A select that takes the other branch walks away; nothing is lost.
	other := make(chan int)
	chose := make(chan string, 1)
	// goSelect selects, on a new goroutine, between the channel ready
	// returns and other, and sends on chose the one it took.
	goSelect := func(ready func() <-chan struct{}) {
		go func() {
			select {
			case <-ready():
				chose <- "ready"
			case <-other:
				chose <- "other"
			}
		}()
	}
	goSelect(s.Ready)
	other <- 1
	if c := <-chose; c != "other" {
		t.Fatalf("select chose %s with nothing pending", c)
	}
	s.NotifyN(3)
	<-ch
	if v := value(t, s); v != 3 {
		t.Fatalf("Value after Ready fired = %d, want 3: Ready took something", v)
	}
	// A Ready called while something is pending fires at once.
	select {
	case <-s.Ready():
	default:
		t.Fatal("Ready with 3 pending did not fire")
	}
	if v := value(t, s); v != 3 {
		t.Fatalf("Value = %d, want 3", v)
	}

	// The usual loop: select on Ready, then take with TryWait.
	goSelect(s.Ready)
	if c := <-chose; c != "ready" {
		t.Fatalf("select chose %s with 3 pending", c)
	}
	if v, ok := s.TryWait(); !ok || v != 3 {
		t.Fatalf("TryWait after Ready = %d, %v; want 3, true", v, ok)
	}

	// Empty again: a new channel, not yet fired; a goroutine blocked on it
	// is woken by a Notify.
	ch = s.Ready()
	select {
	case <-ch:
		t.Fatal("Ready fired after the count was taken")
	default:
	}
	goSelect(func() <-chan struct{} { return ch })
	s.Notify()
	if c := <-chose; c != "ready" {
		t.Fatalf("select chose %s after Notify", c)
	}
	if v, ok := s.TryWait(); !ok || v != 1 {
		t.Fatalf("TryWait = %d, %v; want 1, true", v, ok)
	}
	testutil.Eventually(t, "the poller returns", func() bool { return !s.c.Queue().Polling() })
}

// A pending Ready takes nothing and does not hold up Wait or TryWait.
func TestReadyBesideWait(t *testing.T) {
	s := newSig(t)
	// Ready queued, then a Wait behind it: a Notify fires the first and
	// gives the whole count to the second.
	ready := s.Ready()
	got := goWaitOK(t, s)
	blocked(t, s, 1)
	// No pass over the queue may be under way as the Notify lands, or it
	// could give the count to the Wait before Ready looks: wait until the
	// waiter and the poller both sleep.
	testutil.Parked(t, "signal.(*Signal).Wait", 1)
	if s.c.FD() != nil {
		testutil.Parked(t, "waitq.(*Queue).poll", 1)
	}
	s.NotifyN(5)
	if v := <-got; v != 5 {
		t.Fatalf("Wait behind a Ready = %d, want 5", v)
	}
	<-ready

	// With only a Ready queued (fired or not yet), TryWait and Wait take
	// at once.
	_ = s.Ready()
	s.NotifyN(2)
	if v, ok := s.TryWait(); !ok || v != 2 {
		t.Fatalf("TryWait with a Ready queued = %d, %v; want 2, true", v, ok)
	}
	_ = s.Ready()
	s.NotifyN(3)
	if v, err := s.Wait(context.Background()); err != nil || v != 3 {
		t.Fatalf("Wait with a Ready queued = %d, %v; want 3", v, err)
	}
}

// After Close, a Ready channel is closed and nothing stays behind.
func TestReadyClose(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	ch := s.Ready()
	if s.c.FD() != nil {
		testutil.Eventually(t, "the poller runs", s.c.Queue().Polling)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Fatal("Ready channel open after Close")
	}
	select {
	case <-s.Ready():
	default:
		t.Fatal("Ready after Close returned an open channel")
	}
	goleak.VerifyNone(t)
}

func TestCloseWakesWaiters(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	errs := make(chan error, n)
	for range n {
		go func() {
			v, err := s.Wait(context.Background())
			if v != 0 {
				t.Errorf("Wait woken by Close returned %d", v)
			}
			errs <- err
		}()
	}
	blocked(t, s, n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-errs; !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Wait woken by Close = %v, want os.ErrClosed", err)
		}
	}
	if _, err := s.Wait(context.Background()); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Wait after Close = %v, want os.ErrClosed", err)
	}
	if v, ok := s.TryWait(); ok {
		t.Fatalf("TryWait after Close = %d, true", v)
	}
	if _, err := s.Value(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Value after Close = %v, want os.ErrClosed", err)
	}
	if f, err := s.File(); !errors.Is(err, os.ErrClosed) {
		if f != nil {
			f.Close()
		}
		t.Fatalf("File after Close = %v, want os.ErrClosed", err)
	}
	for name, f := range map[string]func(){
		"Notify":  s.Notify,
		"NotifyN": func() { s.NotifyN(2) },
	} {
		if msg := testutil.PanicMessage(f); !strings.Contains(msg, "closed") {
			t.Errorf("%s after Close: panic %q, want one saying it is closed", name, msg)
		}
	}
	if err := s.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("second Close = %v, want os.ErrClosed", err)
	}
}

// Close affects only this process's handle: a File taken before keeps
// working, and the count it holds survives.
func TestCloseLeavesFile(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s.NotifyN(6)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := FromFile(f)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if v, ok := s2.TryWait(); !ok || v != 6 {
		t.Fatalf("TryWait through the File after Close = %d, %v; want 6, true", v, ok)
	}
}

// NotifyN saturates at the most an eventfd holds, without blocking or
// panicking.
func TestNotifySaturates(t *testing.T) {
	s := newSig(t)
	s.NotifyN(math.MaxUint64) // 2^64-1 itself is not a value eventfd takes
	if v := value(t, s); v != maxCount {
		t.Fatalf("Value after NotifyN(2^64-1) = %#x, want %#x", v, uint64(maxCount))
	}
	s.Notify()
	s.NotifyN(1 << 63)
	if v := value(t, s); v != maxCount {
		t.Fatalf("Value past the limit = %#x, want %#x", v, uint64(maxCount))
	}
	if v, err := s.Wait(context.Background()); err != nil || v != maxCount {
		t.Fatalf("Wait = %#x, %v; want %#x", v, err, uint64(maxCount))
	}
	s.NotifyN(maxCount - 1)
	s.NotifyN(5)
	if v, ok := s.TryWait(); !ok || v != maxCount {
		t.Fatalf("TryWait = %#x, %v; want %#x", v, ok, uint64(maxCount))
	}
	// A blocked waiter gets the saturated count.
	got := goWaitOK(t, s)
	blocked(t, s, 1)
	s.NotifyN(1 << 63)
	s.NotifyN(1 << 63)
	v := <-got
	rest, _ := s.TryWait()
	if v+rest != maxCount && !(v == 1<<63 && rest == 1<<63) {
		t.Fatalf("Wait = %#x and %#x left: neither the two notifications nor the limit", v, rest)
	}
}

func TestFromFile(t *testing.T) {
	// A blocking eventfd, as a C program would make it.
	efd, s := adopt(t, 4, unix.EFD_CLOEXEC, "c-made eventfd")
	if fl, _ := unix.FcntlInt(uintptr(efd), unix.F_GETFL, 0); fl&unix.O_NONBLOCK == 0 {
		t.Fatal("FromFile left the descriptor blocking")
	}
	if v, err := s.Wait(context.Background()); err != nil || v != 4 {
		t.Fatalf("Wait = %d, %v; want 4", v, err)
	}
	// A write through the caller's file is seen by the Signal.
	if _, err := unix.Write(efd, []byte{9, 0, 0, 0, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	if v, ok := s.TryWait(); !ok || v != 9 {
		t.Fatalf("TryWait = %d, %v; want 9", v, ok)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The caller's file is still its own.
	if _, err := unix.Write(efd, []byte{1, 0, 0, 0, 0, 0, 0, 0}); err != nil {
		t.Fatalf("writing the caller's file after Close: %v", err)
	}
}

// A peer clears O_NONBLOCK on the shared description (the README forbids
// it, but a C peer may do it anyway): reads still never block a thread, a
// blocked Wait is still woken by a Notify, and waits stay cancellable.
func TestPeerClearsNonblock(t *testing.T) {
	efd, s := adopt(t, 0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK, "peer eventfd")
	if err := unix.SetNonblock(efd, false); err != nil {
		t.Fatal(err)
	}
	if v, ok := s.TryWait(); ok {
		t.Fatalf("TryWait on an empty Signal = %d, true", v)
	}
	for _, cancelIt := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		done := goWait(ctx, s)
		testutil.Eventually(t, "Wait blocks or returns", func() bool { return s.c.Queue().Len() == 1 || len(done) == 1 })
		if cancelIt {
			cancel()
			if r := <-done; r.err != context.Canceled {
				t.Errorf("cancelled Wait on an eventfd a peer made blocking = %d, %v; want 0, context.Canceled", r.v, r.err)
			}
			continue
		}
		s.NotifyN(2)
		if r := <-done; r.err != nil || r.v != 2 {
			t.Errorf("Wait on an eventfd a peer made blocking = %d, %v; want 2, nil", r.v, r.err)
			s.TryWait()
		}
		cancel()
	}
}

func TestFromFileErrors(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, err := FromFile(r); !errors.Is(err, ErrNotEventfd) {
		t.Errorf("FromFile(pipe) = %v, want ErrNotEventfd", err)
	}
	_, sf := testutil.EventfdFile(t, 0, unix.EFD_SEMAPHORE|unix.EFD_CLOEXEC, "semaphore eventfd")
	if _, err := FromFile(sf); kernel.ModeInFdinfo() && !errors.Is(err, ErrWrongMode) {
		t.Errorf("FromFile(semaphore-mode eventfd) = %v, want ErrWrongMode", err)
	}
	_, closed := testutil.EventfdFile(t, 0, unix.EFD_CLOEXEC, "closed eventfd")
	closed.Close()
	if _, err := FromFile(closed); !errors.Is(err, os.ErrClosed) {
		t.Errorf("FromFile(closed file) = %v, want os.ErrClosed", err)
	}
	if _, err := FromFile(nil); err == nil {
		t.Error("FromFile(nil) succeeded")
	}
}

// A Python 3 process inherits File() as descriptor 3 and notifies with
// os.eventfd_write; then, told on its stdin, it takes the parent's
// notification with poll and os.eventfd_read.
func TestPythonPeer(t *testing.T) {
	const script = `
import os, select, sys
for a in sys.argv[1:]:
    os.eventfd_write(3, int(a))
sys.stdin.readline()
p = select.poll()
p.register(3, select.POLLIN)
while True:
    p.poll()
    try:
        print("read", os.eventfd_read(3), flush=True)
        break
    except BlockingIOError:
        pass
`
	python := testutil.Python(t)
	s := newSig(t)
	f, err := s.File()
	if err != nil {
		t.Fatal(err)
	}
	writes := []uint64{1, 2, 3, 40, 500}
	var total uint64
	args := []string{"-c", script}
	for _, n := range writes {
		args = append(args, fmt.Sprint(n))
		total += n
	}
	cmd := exec.Command(python, args...)
	cmd.ExtraFiles = []*os.File{f} // descriptor 3
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	f.Close()
	// exec.Cmd called Fd(); the flag must survive it.
	g, err := s.File()
	if err != nil {
		t.Fatal(err)
	}
	fl, _ := unix.FcntlInt(uintptr(fdOf(t, g)), unix.F_GETFL, 0)
	g.Close()
	if fl&unix.O_NONBLOCK == 0 {
		t.Fatal("O_NONBLOCK cleared after cmd.Start")
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var sum uint64
	var reads int
	for sum < total {
		v, err := s.Wait(ctx)
		if err != nil {
			t.Fatalf("Wait after reading %d of %d: %v\n%s", sum, total, err, out.String())
		}
		sum += v
		reads++
	}
	if sum != total {
		t.Fatalf("Waits summed to %d, Python wrote %d", sum, total)
	}
	t.Logf("%d Waits took the %d writes", reads, len(writes))
	s.NotifyN(77)
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("python: %v\n%s", err, out.String())
	}
	if got := out.String(); got != "read 77\n" {
		t.Fatalf("python printed %q, want %q", got, "read 77\n")
	}
	if v := value(t, s); v != 0 {
		t.Fatalf("Value = %d, want 0", v)
	}
}

// kernelRead has the kernel add 1 to the eventfd that descriptor efd names,
// through a native AIO read of a temporary file.
func kernelRead(t *testing.T, efd int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(path, []byte("eventsync"), 0o600); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := kernelaio.Read(efd, path, buf)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:n]) != "eventsync" {
		t.Fatalf("AIO read %q", buf[:n])
	}
}

// The kernel as notifier: an AIO completion with IOCB_FLAG_RESFD adds 1 to
// the eventfd behind File(), and a blocked Wait takes it.
func TestKernelNotifies(t *testing.T) {
	s := newSig(t)
	f, err := s.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := goWaitOK(t, s)
	blocked(t, s, 1)
	kernelRead(t, fdOf(t, f))
	if v := <-got; v != 1 {
		t.Fatalf("Wait after the kernel's notification = %d, want 1", v)
	}
	// Not blocked: the same, taken by a Wait that finds it pending.
	kernelRead(t, fdOf(t, f))
	if v, err := s.Wait(context.Background()); err != nil || v != 1 {
		t.Fatalf("Wait = %d, %v; want 1", v, err)
	}
	if v := value(t, s); v != 0 {
		t.Fatalf("Value = %d, want 0", v)
	}
}

// The same with a blocking eventfd made by unix.Eventfd, adopted with
// FromFile; the kernel writes through the original descriptor.
func TestKernelNotifiesAdopted(t *testing.T) {
	efd, s := adopt(t, 0, unix.EFD_CLOEXEC, "blocking eventfd")
	kernelRead(t, efd)
	if v, err := s.Wait(context.Background()); err != nil || v != 1 {
		t.Fatalf("Wait = %d, %v; want 1", v, err)
	}
	got := goWaitOK(t, s)
	blocked(t, s, 1)
	kernelRead(t, efd)
	if v := <-got; v != 1 {
		t.Fatalf("blocked Wait = %d, want 1", v)
	}
}

// Ten thousand blocked goroutines park in the netpoller, not in threads.
// Each Wait takes the whole count, so notifications wake them one by one.
func TestManyWaitersFewThreads(t *testing.T) {
	s := newSig(t)
	const n = 10_000
	got := make(chan uint64, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			v, err := s.Wait(context.Background())
			if err != nil {
				t.Error(err)
			}
			got <- v
		})
	}
	blocked(t, s, n)
	if th := testutil.Threads(t); th > 100 {
		t.Fatalf("%d threads with %d goroutines blocked in Wait", th, n)
	}
	var sent, received uint64
	for i := range n {
		k := uint64(i%5) + 1
		s.NotifyN(k)
		sent += k
		received += <-got // exactly one waiter takes it all
	}
	wg.Wait()
	if received != sent {
		t.Fatalf("Waits took %d, notified %d", received, sent)
	}
	if v := value(t, s); v != 0 {
		t.Fatalf("Value = %d, want 0", v)
	}
}

func TestNoDescriptorLeak(t *testing.T) {
	round := func() {
		s, err := New()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := goWait(ctx, s)
		blocked(t, s, 1)
		cancel()
		<-done
		_ = s.Ready()
		f, err := s.File()
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	round() // the runtime's netpoller opens its own descriptors once
	before := testutil.OpenFDs(t)
	for range 1000 {
		round()
	}
	for range 1000 {
		s, err := New()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if after := testutil.OpenFDs(t); !slices.Equal(before, after) {
		t.Fatalf("descriptors before %v, after %v", before, after)
	}
}
