//go:build linux

package semaphore

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventsync/eventsync/internal/kernel"
	"github.com/eventsync/eventsync/internal/testutil"
	"golang.org/x/sys/unix"
)

func newSem(t testing.TB, n int64) *Semaphore {
	t.Helper()
	s, err := New(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func value(t testing.TB, s *Semaphore) uint64 {
	t.Helper()
	return testutil.Value(t, s.Value)
}

// blocked waits until n goroutines are queued on s.
func blocked(t testing.TB, s *Semaphore, n int) {
	t.Helper()
	testutil.Eventually(t, "goroutines block in Acquire", func() bool { return s.c.Queue().Len() == n })
}

func TestAcquireRelease(t *testing.T) {
	s := newSem(t, 3)
	ctx := context.Background()
	if err := s.Acquire(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if v := value(t, s); v != 1 {
		t.Fatalf("Value after Acquire(2) of 3 = %d, want 1", v)
	}
	if s.TryAcquire(2) {
		t.Fatal("TryAcquire(2) with 1 free succeeded")
	}
	if v := value(t, s); v != 1 {
		t.Fatalf("a failed TryAcquire(2) changed Value to %d", v)
	}
	if !s.TryAcquire(1) {
		t.Fatal("TryAcquire(1) with 1 free failed")
	}
	if !s.TryAcquire(0) {
		t.Fatal("TryAcquire(0) failed")
	}
	if err := s.Acquire(ctx, 0); err != nil {
		t.Fatalf("Acquire(0) = %v", err)
	}
	s.Release(3)
	if v := value(t, s); v != 3 {
		t.Fatalf("Value after Release(3) = %d, want 3", v)
	}
}

func TestNewNegative(t *testing.T) {
	if _, err := New(-1); !errors.Is(err, os.ErrInvalid) {
		t.Fatalf("New(-1) error = %v, want os.ErrInvalid", err)
	}
}

// Initial values above 2^32-1 do not fit eventfd(2)'s initval.
func TestNewLarge(t *testing.T) {
	for _, n := range []int64{1 << 32, 0x100000005, 1 << 40, 1<<63 - 1} {
		s := newSem(t, n)
		if v := value(t, s); v != uint64(n) {
			t.Fatalf("New(%#x).Value() = %#x", n, v)
		}
		if err := s.Acquire(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		if v := value(t, s); v != uint64(n)-1 {
			t.Fatalf("after Acquire(1), Value() = %#x, want %#x", v, n-1)
		}
	}
}

// x/sync's rule (go.dev/issue/63615): a context done before the call fails
// it even if permits are free.
func TestAcquireDoneContext(t *testing.T) {
	s := newSem(t, 5)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, n := range []int64{0, 1, 3} {
		if err := s.Acquire(ctx, n); err != context.Canceled {
			t.Fatalf("Acquire(done ctx, %d) = %v, want context.Canceled", n, err)
		}
	}
	if v := value(t, s); v != 5 {
		t.Fatalf("Value = %d after failed acquires, want 5", v)
	}
}

func TestNegativePanics(t *testing.T) {
	s := newSem(t, 1)
	for name, f := range map[string]func(){
		"Acquire":    func() { s.Acquire(context.Background(), -1) },
		"TryAcquire": func() { s.TryAcquire(-1) },
		"Release":    func() { s.Release(-1) },
	} {
		if msg := testutil.PanicMessage(f); !strings.Contains(msg, "negative") {
			t.Errorf("%s(-1) panic = %q, want a message about a negative n", name, msg)
		}
	}
}

func TestReleaseOverflowPanics(t *testing.T) {
	s := newSem(t, 1<<63-1)
	s.Release(1<<63 - 1) // 2^64-2: the most an eventfd holds
	if msg := testutil.PanicMessage(func() { s.Release(1) }); !strings.Contains(msg, "overflow") {
		t.Fatalf("Release past the limit: panic %q, want one about overflow", msg)
	}
	if v := value(t, s); v != 1<<64-2 {
		t.Fatalf("Value = %#x, want 0xfffffffffffffffe", v)
	}
}

// Cancelling one of eight blocked waiters leaves the other seven blocked,
// and they then acquire.
func TestCancelOneOfEight(t *testing.T) {
	s := newSem(t, 0)
	results := make([]chan error, 8)
	ctxs := make([]context.CancelFunc, 8)
	for i := range results {
		ctx, cancel := context.WithCancel(context.Background())
		ctxs[i] = cancel
		results[i] = make(chan error, 1)
		go func() { results[i] <- s.Acquire(ctx, 1) }()
	}
	defer func() {
		for _, c := range ctxs {
			c()
		}
	}()
	blocked(t, s, 8)
	ctxs[3]()
	if err := <-results[3]; err != context.Canceled {
		t.Fatalf("cancelled Acquire = %v, want context.Canceled", err)
	}
	blocked(t, s, 7)
	for i, r := range results {
		select {
		case err := <-r:
			t.Fatalf("waiter %d returned %v after another was cancelled", i, err)
		default:
		}
	}
	s.Release(7)
	for i, r := range results {
		if i == 3 {
			continue
		}
		if err := <-r; err != nil {
			t.Fatalf("waiter %d: %v", i, err)
		}
	}
	if v := value(t, s); v != 0 {
		t.Fatalf("Value = %d, want 0: permits lost or created", v)
	}
}

func TestCloseWakesWaiters(t *testing.T) {
	s, err := New(0)
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- s.Acquire(context.Background(), int64(1+i%3)) }()
	}
	blocked(t, s, n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-errs; !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Acquire woken by Close = %v, want os.ErrClosed", err)
		}
	}
	if err := s.Acquire(context.Background(), 1); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Acquire after Close = %v, want os.ErrClosed", err)
	}
	if err := s.Acquire(context.Background(), 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Acquire(0) after Close = %v, want os.ErrClosed", err)
	}
	if s.TryAcquire(1) {
		t.Fatal("TryAcquire after Close succeeded")
	}
	if _, err := s.Value(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Value after Close = %v", err)
	}
	if _, err := s.File(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("File after Close = %v", err)
	}
	if msg := testutil.PanicMessage(func() { s.Release(1) }); !strings.Contains(msg, "closed") {
		t.Fatalf("Release after Close: panic %q, want one saying it is closed", msg)
	}
	if err := s.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("second Close = %v, want os.ErrClosed", err)
	}
}

// In this process, waiters are served first come, first served: a large
// request at the front holds up a small one behind it, as in x/sync.
func TestFIFO(t *testing.T) {
	s := newSem(t, 1)
	big := make(chan error, 1)
	go func() { big <- s.Acquire(context.Background(), 3) }()
	blocked(t, s, 1)
	if s.TryAcquire(1) {
		t.Fatal("TryAcquire(1) overtook a queued Acquire(3)")
	}
	small := make(chan error, 1)
	go func() { small <- s.Acquire(context.Background(), 1) }()
	blocked(t, s, 2)
	s.Release(2)
	if err := <-big; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-small:
		t.Fatalf("Acquire(1) returned %v with no permit free", err)
	default:
	}
	s.Release(1)
	if err := <-small; err != nil {
		t.Fatal(err)
	}
}

// Cancelling the waiter at the front lets the ones behind it through.
func TestCancelFrontServesNext(t *testing.T) {
	s := newSem(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	big := make(chan error, 1)
	go func() { big <- s.Acquire(ctx, 5) }()
	blocked(t, s, 1)
	small := make(chan error, 1)
	go func() { small <- s.Acquire(context.Background(), 2) }()
	blocked(t, s, 2)
	cancel()
	if err := <-big; err != context.Canceled {
		t.Fatal(err)
	}
	if err := <-small; err != nil {
		t.Fatal(err)
	}
	if v := value(t, s); v != 0 {
		t.Fatalf("Value = %d, want 0", v)
	}
}

// A storm of random timeouts: permits are conserved and there are never more
// holders than permits.
func TestTimeoutStorm(t *testing.T) {
	const permits = 5
	s := newSem(t, permits)
	var held atomic.Int64
	var wg sync.WaitGroup
	var acquired, failed atomic.Int64
	for range 16 {
		wg.Go(func() {
			for range 300 {
				n := rand.Int64N(3) + 1
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rand.IntN(50))*time.Microsecond)
				err := s.Acquire(ctx, n)
				cancel()
				if err != nil {
					if err != context.DeadlineExceeded {
						t.Errorf("Acquire: %v", err)
						return
					}
					failed.Add(1)
					continue
				}
				acquired.Add(1)
				if h := held.Add(n); h > permits {
					t.Errorf("%d permits held of %d", h, permits)
				}
				runtime.Gosched()
				held.Add(-n)
				s.Release(n)
			}
		})
	}
	wg.Wait()
	if v := value(t, s); v != permits {
		t.Fatalf("Value = %d after the storm, want %d", v, permits)
	}
	t.Logf("%d acquired, %d timed out", acquired.Load(), failed.Load())
	if s.c.Queue().Len() != 0 {
		t.Fatalf("%d waiters left queued", s.c.Queue().Len())
	}
}

// A permit served to a waiter whose context ends at the same moment is
// given back: cancel at random points and check the count.
func TestCancelRace(t *testing.T) {
	s := newSem(t, 0)
	for i := range 2000 {
		ctx, cancel := context.WithCancel(context.Background())
		res := make(chan error, 1)
		go func() { res <- s.Acquire(ctx, 1) }()
		if i%2 == 0 {
			blocked(t, s, 1)
		}
		go s.Release(1)
		cancel()
		if err := <-res; err == nil {
			s.Release(1) // a success holds the permit: give it back
		}
		if err := s.Acquire(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		if v := value(t, s); v != 0 {
			t.Fatalf("round %d: Value = %d, want 0", i, v)
		}
	}
}

// Ten thousand blocked goroutines park in the netpoller, not in threads.
func TestManyWaitersFewThreads(t *testing.T) {
	s := newSem(t, 0)
	const n = 10_000
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if err := s.Acquire(context.Background(), 1); err != nil {
				t.Error(err)
			}
		})
	}
	blocked(t, s, n)
	if th := testutil.Threads(t); th > 100 {
		t.Fatalf("%d threads with %d goroutines blocked in Acquire", th, n)
	}
	s.Release(n)
	wg.Wait()
	if v := value(t, s); v != 0 {
		t.Fatalf("Value = %d, want 0", v)
	}
}

func TestNoDescriptorLeak(t *testing.T) {
	before := testutil.OpenFDs(t)
	for range 1000 {
		s, err := New(1)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Acquire(ctx, 2) }()
		blocked(t, s, 1)
		cancel()
		<-done
		f, err := s.File()
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if after := testutil.OpenFDs(t); !slices.Equal(before, after) {
		t.Fatalf("descriptors before %v, after %v", before, after)
	}
}

// The last waiter leaving takes the poller goroutine with it, without Close.
func TestPollerGoesWithLastWaiter(t *testing.T) {
	s := newSem(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Acquire(ctx, 1) }()
	blocked(t, s, 1)
	cancel()
	<-done
	testutil.Eventually(t, "the poller returns", func() bool { return !s.c.Queue().Polling() })
}

func TestFromFile(t *testing.T) {
	// A blocking eventfd, as a C program would make it.
	_, f := testutil.EventfdFile(t, 2, unix.EFD_SEMAPHORE|unix.EFD_CLOEXEC, "c-made eventfd")
	s, err := FromFile(f)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if fl, _ := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0); fl&unix.O_NONBLOCK == 0 {
		t.Fatal("FromFile left the descriptor blocking")
	}
	if v := value(t, s); v != 2 {
		t.Fatalf("Value = %d, want 2", v)
	}
	if err := s.Acquire(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	// A peer clears O_NONBLOCK on the shared description: our reads still
	// never block a thread, and waits stay cancellable.
	if err := unix.SetNonblock(int(f.Fd()), false); err != nil {
		t.Fatal(err)
	}
	if s.TryAcquire(1) {
		t.Fatal("TryAcquire on an empty semaphore succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Acquire(ctx, 1) }()
	// Stop looking if the Acquire fails instead of blocking.
	testutil.Eventually(t, "Acquire blocks or fails", func() bool { return s.c.Queue().Len() == 1 || len(done) == 1 })
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Acquire on an adopted blocking eventfd = %v, want context.Canceled", err)
	}
	// The caller's file is still its own.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var buf [8]byte
	buf[0] = 1
	if _, err := f.Write(buf[:]); err != nil {
		t.Fatalf("writing the caller's file after Close: %v", err)
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
	counter, cf := testutil.EventfdFile(t, 0, unix.EFD_CLOEXEC, "counter eventfd")
	if _, err := FromFile(cf); kernel.ModeInFdinfo() && !errors.Is(err, ErrWrongMode) {
		t.Errorf("FromFile(counter-mode eventfd) = %v, want ErrWrongMode", err)
	}
	closed := os.NewFile(uintptr(counter), "x")
	closed.Close()
	if _, err := FromFile(closed); !errors.Is(err, os.ErrClosed) {
		t.Errorf("FromFile(closed file) = %v, want os.ErrClosed", err)
	}
	if _, err := FromFile(nil); err == nil {
		t.Error("FromFile(nil) succeeded")
	}
}

// A C program, built with gcc here, inherits File(), takes a permit with
// read(2) and gives back three with write(2).
func TestCPeer(t *testing.T) {
	src, err := os.ReadFile("testdata/peer.c")
	if err != nil {
		t.Fatal(err)
	}
	bin := testutil.BuildC(t, "peer", string(src))
	s := newSem(t, 0)
	f, err := s.File()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "3", "1", "3")
	cmd.ExtraFiles = []*os.File{f}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// exec.Cmd called Fd(); the flag must survive it.
	g, err := s.File()
	if err != nil {
		t.Fatal(err)
	}
	fl, _ := unix.FcntlInt(g.Fd(), unix.F_GETFL, 0)
	g.Close()
	if fl&unix.O_NONBLOCK == 0 {
		t.Fatal("O_NONBLOCK cleared after cmd.Start")
	}
	s.Release(1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Acquire(ctx, 3); err != nil {
		t.Fatalf("Acquire(3) after the C peer's write: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("C peer: %v\n%s", err, out.String())
	}
	if got := out.String(); got != "took 1 gave 3\n" {
		t.Fatalf("C peer printed %q", got)
	}
	if v := value(t, s); v != 0 {
		t.Fatalf("Value = %d, want 0", v)
	}
}
