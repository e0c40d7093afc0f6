//go:build linux

package waitgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eventsync/eventsync/internal/testutil"
	"golang.org/x/sys/unix"
)

func init() {
	// at-limit: with the descriptor table full, a Wait on a counter of 1
	// keeps waiting while its poller cannot start, and returns at zero
	// once descriptors are free again; a WaitContext whose deadline passes
	// there fails with exactly ctx.Err(); Add(3), Add(-2) does not panic.
	childRoles["at-limit"] = roleAtLimit
	// close-while-go: Close while tasks started by Go run; the tasks then
	// finish, and the process survives them.
	childRoles["close-while-go"] = roleCloseWhileGo
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func roleAtLimit([]string) error {
	wg, err := New()
	if err != nil {
		return err
	}
	defer wg.Close()
	wg.shared() // in eventfds: waiting on it needs the poller
	g := wg.group()
	wg.Add(1)

	ft, err := testutil.FillDescriptorTable()
	if err != nil {
		return err
	}
	defer ft.Free()

	// A legal Add needs no descriptor.
	wg.Add(3)
	wg.Add(-2)
	wg.Add(-2)
	wg.Add(1)

	// A deadline passing while the poller cannot start: ctx.Err() and
	// nothing else.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	err = wg.WaitContext(ctx)
	cancel()
	if err != context.DeadlineExceeded {
		return fmt.Errorf("WaitContext at the descriptor limit, deadline passed: %v, want exactly context.DeadlineExceeded", err)
	}

	returned := make(chan struct{})
	go func() {
		wg.Wait()
		close(returned)
	}()
	for g.q.Len() != 1 || !g.q.Retries() {
		if isClosed(returned) {
			return errors.New("Wait returned at the descriptor limit with the counter at 1")
		}
		runtime.Gosched()
	}
	if !ft.Full() {
		return errors.New("the descriptor table is not full")
	}
	if isClosed(returned) {
		return errors.New("Wait returned while its poller was being retried, with the counter at 1")
	}

	ft.Free()
	for !g.q.Polling() {
		if isClosed(returned) {
			return errors.New("Wait returned as descriptors became free, with the counter at 1")
		}
		runtime.Gosched()
	}
	if isClosed(returned) {
		return errors.New("Wait returned once its poller started, with the counter at 1")
	}
	if v, err := wg.Value(); err != nil || v != 1 {
		return fmt.Errorf("Value() = %d, %v, want 1 (Add(3), Add(-2), Add(-2), Add(1) on 1)", v, err)
	}
	wg.Done()
	<-returned
	testutil.Say("returned at zero")
	return nil
}

func roleCloseWhileGo([]string) error {
	base := runtime.NumGoroutine()
	wg, err := New()
	if err != nil {
		return err
	}
	gate := make(chan struct{})
	var started sync.WaitGroup
	for range 8 {
		started.Add(1)
		wg.Go(func() {
			started.Done()
			<-gate
		})
	}
	started.Wait()
	if err := wg.Close(); err != nil {
		return err
	}
	close(gate)
	// The tasks remove themselves from a closed WaitGroup, and leave.
	for runtime.NumGoroutine() > base {
		runtime.Gosched()
	}
	testutil.Say("survived")
	return nil
}

// Item 2: at the descriptor limit a Wait keeps waiting until zero, and a
// WaitContext fails only with ctx.Err(); item 7: Add(3), Add(-2) does not
// panic there.
func TestAtDescriptorLimit(t *testing.T) {
	cmd := testutil.Child(t, "at-limit")
	out := testutil.StdoutLines(t, cmd)
	testutil.Start(t, cmd)
	out.Expect("returned at zero")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}

// Item 2: a peer that keeps clearing O_NONBLOCK on the "reached zero"
// description makes registering a poller fail now and then; the waiter
// keeps waiting through it, and returns only at zero.
func TestWaitThroughPeerClearingNonblock(t *testing.T) {
	wg := newWG(t)
	peer, err := wg.shared().zero.Export()
	g := wg.group()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(peer)
	stop := make(chan struct{})
	var hammer sync.WaitGroup
	for range 3 {
		hammer.Go(func() {
			for !isClosed(stop) {
				fl, err := unix.FcntlInt(uintptr(peer), unix.F_GETFL, 0)
				if err == nil && fl&unix.O_NONBLOCK != 0 {
					unix.FcntlInt(uintptr(peer), unix.F_SETFL, fl&^unix.O_NONBLOCK)
				}
			}
		})
	}
	defer func() {
		close(stop)
		hammer.Wait()
	}()

	retried := 0
	for i := range 300 {
		wg.Add(1)
		returned := make(chan struct{})
		go func() {
			wg.Wait()
			close(returned)
		}()
		testutil.Eventually(t, "the waiter is queued, its poller running or to be retried", func() bool {
			return isClosed(returned) || g.q.Len() == 1 && (g.q.Polling() || g.q.Retries())
		})
		if g.q.Retries() {
			retried++
		}
		if isClosed(returned) {
			t.Fatalf("round %d: Wait returned with the counter at 1", i)
		}
		wg.Done()
		<-returned
		// The next round starts a poller afresh.
		testutil.Eventually(t, "the poller leaves", func() bool { return !g.q.Polling() && !g.q.Retries() })
	}
	t.Logf("the poller was retried in %d of 300 rounds", retried)
}

// receivedHandle returns a second handle on wg, as Receive makes it from
// what Send wrote on the other end of a socket pair.
func receivedHandle(t *testing.T, wg *WaitGroup) *WaitGroup {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
	defer a.Close()
	defer b.Close()
	if err := wg.Send(a); err != nil {
		t.Fatal(err)
	}
	r, err := Receive(b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// Item 10: "reached zero" is drained once every waiting process has left,
// round after round, so that it is not left readable for nobody.
func TestReachedZeroDrained(t *testing.T) {
	a := newWG(t)
	b := receivedHandle(t, a)
	for round := range 20 {
		a.Add(2)
		var waiters sync.WaitGroup
		for _, h := range []*WaitGroup{a, a, b, b} {
			waiters.Go(h.Wait)
		}
		blocked(t, a, 2)
		blocked(t, b, 2)
		testutil.Eventually(t, "both handles count themselves as waiting", func() bool { return waitingProcesses(t, a) == 2 })
		a.Done()
		b.Done()
		waiters.Wait()
		// A poller lets go of its queue before it counts itself out and
		// drains: wait until every poller goroutine has returned.
		testutil.Eventually(t, "every poller returns", func() bool {
			return testutil.CountGoroutines("waitq.(*Queue).poll") == 0
		})
		if n := waitingProcesses(t, a); n != 0 {
			t.Fatalf("round %d: %d processes counted as waiting after every poller returned", round, n)
		}
		v, err := a.shared().zero.Value()
		if err != nil {
			t.Fatal(err)
		}
		if v != 0 {
			t.Fatalf("round %d: \"reached zero\" holds %d after every waiter left, want 0", round, v)
		}
	}
}

// Item 10: Close while tasks started by Go run does not crash the process
// when they finish.
func TestCloseWhileGoTasksRun(t *testing.T) {
	cmd := testutil.Child(t, "close-while-go")
	out := testutil.StdoutLines(t, cmd)
	testutil.Start(t, cmd)
	out.Expect("survived")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}

// checkClosedError fails unless err says "use of closed WaitGroup", wraps
// os.ErrClosed and says nothing about files.
// Item 10: errors of a closed WaitGroup name it, not a file.
func TestClosedErrors(t *testing.T) {
	wg, err := New()
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	woken := make(chan error, 1)
	go func() { woken <- wg.WaitContext(context.Background()) }()
	blocked(t, wg, 1)
	if err := wg.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.CheckClosedError(t, "WaitGroup", "a WaitContext woken by Close", <-woken)
	testutil.CheckClosedError(t, "WaitGroup", "WaitContext", wg.WaitContext(context.Background()))
	_, err = wg.Value()
	testutil.CheckClosedError(t, "WaitGroup", "Value", err)
	testutil.CheckClosedError(t, "WaitGroup", "Close", wg.Close())
	c, _ := testutil.SocketPair(t)
	testutil.CheckClosedError(t, "WaitGroup", "Send", wg.Send(c))
	testutil.CheckClosedError(t, "WaitGroup", "PassTo", wg.PassTo(exec.Command("true"), "wg"))
}

// A zero WaitGroup is ready to use, as a sync.WaitGroup is: Wait returns
// at once, Value is 0, Add, Done, Go and Wait work, and PassTo hands it to
// a child that calls Done.
func TestZeroValue(t *testing.T) {
	var wg WaitGroup
	wg.Wait()
	if err := wg.WaitContext(context.Background()); err != nil {
		t.Fatalf("WaitContext on a zero WaitGroup: %v", err)
	}
	if v := value(t, &wg); v != 0 {
		t.Fatalf("Value of a zero WaitGroup = %d", v)
	}
	t.Cleanup(func() { wg.Close() })

	wg.Add(2)
	wg.Done()
	wg.Done()
	wg.Wait()

	ran := make(chan struct{})
	wg.Go(func() { close(ran) })
	wg.Wait()
	if !isClosed(ran) {
		t.Fatal("Wait returned before the task started by Go")
	}

	wg.Add(1)
	cmd := testutil.Child(t, "member", "wg")
	if err := wg.PassTo(cmd, "wg"); err != nil {
		t.Fatal(err)
	}
	out := testutil.StdoutLines(t, cmd)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	testutil.Start(t, cmd)
	out.Expect("ready")
	returned := make(chan struct{})
	go func() {
		wg.Wait()
		close(returned)
	}()
	blocked(t, &wg, 1)
	fmt.Fprintln(in, "go")
	<-returned
	if err := cmd.Wait(); err != nil {
		t.Fatalf("member: %v", err)
	}
	if v := value(t, &wg); v != 0 {
		t.Fatalf("Value after the child's Done = %d", v)
	}
}

type holder struct {
	n  int
	wg WaitGroup
}

// Item 6: WaitGroups dropped without Close give their descriptors back
// once collected, whether made by New or zero values inside a struct.
func TestCollectedWaitGroupsCloseDescriptors(t *testing.T) {
	before := len(testutil.OpenFDs(t))
	var made []*WaitGroup
	var held []*holder
	for range 100 {
		wg, err := New()
		if err != nil {
			t.Fatal(err)
		}
		wg.shared() // in eventfds, as after PassTo or Send
		wg.Add(1)
		wg.Done()
		wg.Wait()
		made = append(made, wg)
	}
	for range 100 {
		h := &holder{n: 1}
		h.wg.shared()
		h.wg.Add(1)
		h.wg.Done()
		h.wg.Wait()
		held = append(held, h)
	}
	if after := len(testutil.OpenFDs(t)); after < before+600 {
		t.Fatalf("%d descriptors open with 200 WaitGroups in use, want at least %d", after, before+600)
	}
	runtime.KeepAlive(made)
	runtime.KeepAlive(held)
	testutil.Eventually(t, "collected WaitGroups close their descriptors", func() bool {
		runtime.GC()
		return len(testutil.OpenFDs(t)) <= before
	})
}

// Item 9: Receive takes a genuine Send when the receiving socket has
// SO_PASSCRED, on stream, datagram and seqpacket sockets, through a
// *net.UnixConn or a plain *os.File.
func TestReceiveWithPassCred(t *testing.T) {
	testutil.ForEachPassCredSocket(t, func(t *testing.T, send, recv syscall.Conn) {
		wg := newWG(t)
		wg.Add(1)
		if err := wg.Send(send); err != nil {
			t.Fatal(err)
		}
		r, err := Receive(recv)
		if err != nil {
			t.Fatalf("Receive with SO_PASSCRED set: %v", err)
		}
		defer r.Close()
		returned := make(chan struct{})
		go func() {
			wg.Wait()
			close(returned)
		}()
		blocked(t, wg, 1)
		r.Done()
		<-returned
		if v := value(t, r); v != 0 {
			t.Fatalf("Value through the received handle = %d", v)
		}
	})
}
