package etcdsem

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// hangGuard returns a context that only ends a test that hangs.
func hangGuard(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newSem(t testing.TB, cli *clientv3.Client, prefix string, capacity int64, opts ...Option) *Semaphore {
	t.Helper()
	s, err := New(cli, prefix, capacity, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func wantValue(t testing.TB, s *Semaphore, want uint64) {
	t.Helper()
	v, err := s.Value()
	if err != nil {
		t.Fatal(err)
	}
	if v != want {
		t.Fatalf("Value = %d, want %d", v, want)
	}
}

func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Fatalf("no panic, want %q", want)
		}
		if !strings.Contains(r.(string), want) {
			t.Fatalf("panic %q, want %q", r, want)
		}
	}()
	f()
}

func TestBasics(t *testing.T) {
	c := sharedCluster(t)
	cli := newClient(t, c)
	ctx := hangGuard(t)
	s := newSem(t, cli, "/basics", 3)
	wantValue(t, s, 3)
	if err := s.Acquire(ctx, 2); err != nil {
		t.Fatal(err)
	}
	wantValue(t, s, 1)
	if s.TryAcquire(2) {
		t.Fatal("TryAcquire(2) with 1 free succeeded")
	}
	if !s.TryAcquire(1) {
		t.Fatal("TryAcquire(1) with 1 free failed")
	}
	wantValue(t, s, 0)
	if err := s.Acquire(ctx, 0); err != nil {
		t.Fatalf("Acquire(0): %v", err)
	}
	if !s.TryAcquire(0) {
		t.Fatal("TryAcquire(0) failed")
	}
	s.Release(1) // of the 2: a partial release
	wantValue(t, s, 1)
	s.Release(2)
	wantValue(t, s, 3)

	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Acquire(done, 1); err != context.Canceled {
		t.Fatalf("Acquire with a done context = %v, want context.Canceled", err)
	}
	wantValue(t, s, 3)

	// More than the capacity waits for its context, without a place in line.
	big, cancelBig := context.WithCancel(ctx)
	errc := make(chan error)
	go func() { errc <- s.Acquire(big, 4) }()
	cancelBig()
	if err := <-errc; err != context.Canceled {
		t.Fatalf("Acquire beyond the capacity = %v, want context.Canceled", err)
	}
	if s.TryAcquire(4) {
		t.Fatal("TryAcquire beyond the capacity succeeded")
	}
	wantValue(t, s, 3)

	mustPanic(t, "negative", func() { s.Acquire(ctx, -1) })
	mustPanic(t, "negative", func() { s.TryAcquire(-1) })
	mustPanic(t, "negative", func() { s.Release(-1) })
	mustPanic(t, "released more than held", func() { s.Release(1) })

	// A second handle on the prefix shares the permits; another capacity is refused.
	s2 := newSem(t, cli, "/basics/", 3)
	if err := s2.Acquire(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if s.TryAcquire(1) {
		t.Fatal("TryAcquire succeeded while another handle holds everything")
	}
	mustPanic(t, "released more than held", func() { s.Release(1) })
	s2.Release(3)
	if _, err := New(cli, "/basics", 4); !errors.Is(err, ErrCapacityMismatch) {
		t.Fatalf("New with another capacity: %v, want ErrCapacityMismatch", err)
	}

	// Close gives back what the handle holds and ends it.
	if err := s2.Acquire(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	wantValue(t, s, 3)
	if err := s2.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("second Close = %v, want os.ErrClosed", err)
	}
	if err := s2.Acquire(ctx, 1); !errors.Is(err, os.ErrClosed) || !strings.HasPrefix(err.Error(), "etcdsem: Acquire: ") {
		t.Fatalf("Acquire after Close = %v, want etcdsem: Acquire: ... os.ErrClosed", err)
	}
	if s2.TryAcquire(1) {
		t.Fatal("TryAcquire after Close succeeded")
	}
	mustPanic(t, "closed", func() { s2.Release(1) })
	if _, err := s2.Value(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Value after Close = %v, want os.ErrClosed", err)
	}
}

// waitForWaiters returns once the line under prefix has n waiters, by
// watching it.
func waitForWaiters(t testing.TB, cli *clientv3.Client, prefix string, n int) {
	t.Helper()
	ctx := hangGuard(t)
	for {
		resp, err := cli.Get(ctx, prefix+"/w/", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) == n {
			return
		}
		wctx, cancel := context.WithCancel(ctx)
		wch := cli.Watch(wctx, prefix+"/w/", clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
		select {
		case <-wch:
		case <-ctx.Done():
			cancel()
			t.Fatalf("line under %s never had %d waiters", prefix, n)
		}
		cancel()
	}
}

func TestCancelLeavesLine(t *testing.T) {
	c := sharedCluster(t)
	cli := newClient(t, c)
	ctx := hangGuard(t)
	holder := newSem(t, cli, "/cancel", 2)
	waiter := newSem(t, cli, "/cancel", 2)
	if err := holder.Acquire(ctx, 2); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	errc := make(chan error)
	go func() { errc <- waiter.Acquire(wctx, 1) }()
	waitForWaiters(t, cli, "/cancel", 1)
	cancel()
	if err := <-errc; err != context.Canceled {
		t.Fatalf("cancelled Acquire = %v, want context.Canceled", err)
	}
	// The place in line is gone by the time Acquire returns.
	resp, err := cli.Get(ctx, "/cancel/w/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 0 {
		t.Fatalf("%d waiters left after the cancelled Acquire returned", resp.Count)
	}
	holder.Release(2)
	wantValue(t, waiter, 2)
	// Close wakes a waiting Acquire with os.ErrClosed.
	if err := holder.Acquire(ctx, 2); err != nil {
		t.Fatal(err)
	}
	go func() { errc <- waiter.Acquire(ctx, 1) }()
	waitForWaiters(t, cli, "/cancel", 1)
	waiter.Close()
	if err := <-errc; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Acquire across Close = %v, want os.ErrClosed", err)
	}
	waitForWaiters(t, cli, "/cancel", 0)
	holder.Release(2)
}

// TestInOrder checks that a large request at the head of the line is served
// before a small one behind it, although the small one fit first.
func TestInOrder(t *testing.T) {
	c := sharedCluster(t)
	cli := newClient(t, c)
	ctx := hangGuard(t)
	start, err := cli.Get(ctx, "/order/")
	if err != nil {
		t.Fatal(err)
	}
	a := newSem(t, cli, "/order", 4)
	b := newSem(t, cli, "/order", 4)
	cc := newSem(t, cli, "/order", 4)
	if err := a.Acquire(ctx, 4); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 2)
	go func() { errc <- b.Acquire(ctx, 4) }()
	waitForWaiters(t, cli, "/order", 1)
	go func() { errc <- cc.Acquire(ctx, 1) }()
	waitForWaiters(t, cli, "/order", 2)
	if a.TryAcquire(1) {
		t.Fatal("TryAcquire succeeded past waiters")
	}
	a.Release(1) // 1 free: c's request fits, but b is first
	a.Release(3) // b's turn; c waits for b
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	bKey, _ := b.lastHold()
	b.Release(4)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	cKey, _ := cc.lastHold()
	// The history shows who got what when.
	puts, dels := map[string]int64{}, map[string]int64{}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	end, err := cli.Get(ctx, "/order/")
	if err != nil {
		t.Fatal(err)
	}
	wch := cli.Watch(wctx, "/order/h/", clientv3.WithPrefix(), clientv3.WithRev(start.Header.Revision+1))
	for wr := range wch {
		for _, ev := range wr.Events {
			if ev.Type == clientv3.EventTypePut && ev.Kv.Version == 1 {
				puts[string(ev.Kv.Key)] = ev.Kv.ModRevision
			} else if ev.Type == clientv3.EventTypeDelete {
				dels[string(ev.Kv.Key)] = ev.Kv.ModRevision
			}
		}
		if wr.Header.Revision >= end.Header.Revision && puts[cKey] != 0 && puts[bKey] != 0 {
			break
		}
	}
	// a's first Release (a partial one, a put) left 1 free, enough for c;
	// but b was first, and c had to wait until b was done.
	if puts[cKey] < dels[bKey] {
		t.Fatalf("the request behind was served before the one ahead was done (b granted at %d, released at %d; c granted at %d)",
			puts[bKey], dels[bKey], puts[cKey])
	}
	cc.Release(1)
	a.Release(0)
	wantValue(t, a, 4)
}

func TestLeaseLoss(t *testing.T) {
	c := sharedCluster(t)
	cli := newClient(t, c)
	ctx := hangGuard(t)
	// A short TTL: the client learns of the revocation at its next
	// keep-alive, a third of the TTL at most.
	s := newSem(t, cli, "/lost", 2, WithTTL(3))
	other := newSem(t, cli, "/lost", 2)
	if err := s.Acquire(ctx, 2); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error)
	go func() { errc <- s.Acquire(ctx, 1) }()
	waitForWaiters(t, cli, "/lost", 1)
	if _, err := cli.Revoke(ctx, s.Lease()); err != nil {
		t.Fatal(err)
	}
	<-s.Done()
	if err := <-errc; !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("waiting Acquire after the lease ended = %v, want ErrLeaseLost", err)
	}
	// The permits are free for the others; Release only settles the count.
	if err := other.Acquire(ctx, 2); err != nil {
		t.Fatal(err)
	}
	s.Release(2)
	if err := s.Acquire(ctx, 1); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Acquire after the lease ended = %v, want ErrLeaseLost", err)
	}
	other.Release(2)
	wantValue(t, other, 2)
}

// TestGoroutines has handles in many goroutines check, in real time, that
// no more than the capacity is ever held.
func TestGoroutines(t *testing.T) {
	c := sharedCluster(t)
	ctx := hangGuard(t)
	const capacity = 3
	var inUse, peak atomic.Int64
	var wg sync.WaitGroup
	for g := range 6 {
		cli := newClient(t, c)
		s := newSem(t, cli, "/goroutines", capacity)
		wg.Go(func() {
			for i := range 15 {
				n := int64(1 + (g+i)%capacity)
				if err := s.Acquire(ctx, n); err != nil {
					t.Error(err)
					return
				}
				now := inUse.Add(n)
				if now > capacity {
					t.Errorf("%d permits held at once, capacity %d", now, capacity)
				}
				if now > peak.Load() {
					peak.Store(now)
				}
				inUse.Add(-n)
				s.Release(n)
			}
		})
	}
	wg.Wait()
	t.Logf("peak %d of %d", peak.Load(), capacity)
}
