//go:build linux

package eventfd

import (
	"errors"
	"os"
	"testing"

	"github.com/eventsync/eventsync/internal/testutil"
)

const bigTake = 3_000_000

func newBig(t *testing.T) *FD {
	t.Helper()
	fd, err := New(bigTake, Semaphore)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fd.Close() })
	return fd
}

// Item 5: a long Take asked to stop between chunks gives back what it took.
func TestTakeInterrupted(t *testing.T) {
	fd := newBig(t)
	calls := 0
	ok, err := fd.Take(bigTake, stopFunc(func() bool {
		calls++
		return true
	}))
	if ok || !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Take interrupted at its first chunk = %v, %v, want false, ErrInterrupted", ok, err)
	}
	if calls != 1 {
		t.Fatalf("interrupt called %d times, want 1", calls)
	}
	if v := testutil.Value(t, fd.Value); v != bigTake {
		t.Fatalf("Value after an interrupted Take = %d, want %d", v, bigTake)
	}
}

// Item 5: Close begun during a long Take stops it between chunks; the take
// gives back what it took before Close goes on, so another holder sees the
// whole count.
func TestTakeStopsForClose(t *testing.T) {
	fd, err := New(bigTake, Semaphore)
	if err != nil {
		t.Fatal(err)
	}
	other, err := fd.Dup()
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	closed := make(chan error, 1)
	calls := 0
	ok, err := fd.Take(bigTake, stopFunc(func() bool {
		calls++
		if calls == 1 {
			go func() { closed <- fd.Close() }()
			testutil.Eventually(t, "Close begins", fd.closing.Load)
		}
		return false
	}))
	if ok || !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Take during Close = %v, %v, want false, os.ErrClosed", ok, err)
	}
	if calls != 1 {
		t.Fatalf("interrupt called %d times, want 1: Take did not stop at the chunk after Close began", calls)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close = %v", err)
	}
	raw, err := other.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v uint64
	var verr error
	if err := raw.Control(func(n uintptr) { v, verr = sysCount(int(n)) }); err != nil {
		t.Fatal(err)
	}
	if verr != nil {
		t.Fatal(verr)
	}
	if v != bigTake {
		t.Fatalf("count seen through another descriptor after the stopped Take = %d, want %d", v, bigTake)
	}
}

// stopFunc is a Stopper made of a function.
type stopFunc func() bool

func (f stopFunc) Stopped() bool { return f() }
