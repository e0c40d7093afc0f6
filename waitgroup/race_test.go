//go:build linux

package waitgroup

import (
	"strings"
	"testing"

	"github.com/eventsync/eventsync/internal/eventfd"
	"github.com/eventsync/eventsync/internal/testutil"
)

// A Done that races Close must either panic ("on closed WaitGroup") or take
// full effect, waking waiters in other processes: a Done that took from the
// counter after Close had closed "zero" would leave the counter at zero and
// the other process's waiter asleep.
//
// The other process is stood in for by a write to "waiting" (as its poller's
// started callback does) and an adopted duplicate of "zero", whose counter
// tells whether the wakeup was written. No timing is involved.
func TestDoneRacingClose(t *testing.T) {
	for i := range 300 {
		wg, err := New()
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		if err := wg.shared().waiting.Write(1); err != nil { // a process waits
			t.Fatal(err)
		}
		zf, err := wg.shared().zero.Dup()
		if err != nil {
			t.Fatal(err)
		}
		zero, err := eventfd.Adopt(zf, eventfd.Counter)
		zf.Close()
		if err != nil {
			t.Fatal(err)
		}
		start := make(chan struct{})
		msg := make(chan string, 1)
		go func() {
			<-start
			msg <- testutil.PanicMessage(wg.Done)
		}()
		close(start)
		wg.Close()
		m := <-msg
		woke, err := zero.Value()
		zero.Close()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case m != "" && !strings.Contains(m, "closed"):
			t.Fatalf("iteration %d: Done panicked with %q", i, m)
		case m == "" && woke == 0:
			t.Fatalf("iteration %d: Done racing Close neither panicked nor woke the waiting process (counter left at 0, \"zero\" never written)", i)
		}
	}
}

// adoptHandle returns a second handle on wg's three eventfds, as another
// process holds them after Receive: its own queue, poller and count in
// "waiting".
func adoptHandle(t *testing.T, wg *WaitGroup) *WaitGroup {
	t.Helper()
	var fds []*eventfd.FD
	f := wg.shared()
	for i, fd := range []*eventfd.FD{f.count, f.zero, f.waiting} {
		f, err := fd.Dup()
		if err != nil {
			t.Fatal(err)
		}
		nfd, err := eventfd.Adopt(f, kind.Modes[i])
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, nfd)
	}
	b := fromFDs(fds)
	t.Cleanup(func() { b.Close() })
	return b
}

// The cross-handle protocol: a Done through one handle
// races a Wait through another, whose poller counts itself in "waiting"
// and sleeps on "zero". Whatever the interleaving of the Done's take and
// look with the waiter's count-in and first look, the waiter returns. A
// lost wakeup hangs the test.
func TestDoneRacingWaitOtherHandle(t *testing.T) {
	a := newWG(t)
	b := adoptHandle(t, a)
	for i := range 2000 {
		a.Add(1)
		waited := make(chan struct{})
		go func() {
			b.Wait()
			close(waited)
		}()
		if i%2 == 0 {
			blocked(t, b, 1)
		}
		a.Done()
		<-waited
		if v := value(t, a); v != 0 {
			t.Fatalf("iteration %d: counter %d after Wait", i, v)
		}
	}
	// The waiter's poller leaves and counts itself out.
	testutil.Eventually(t, "no process is counted as waiting", func() bool { return waitingProcesses(t, a) == 0 })
}
