//go:build linux

package semaphore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventsync/eventsync/internal/testutil"
	"golang.org/x/sys/unix"
)

func init() {
	// at-limit: with the descriptor table full, an Acquire whose deadline
	// passes while its poller cannot start fails with exactly
	// context.DeadlineExceeded; TryAcquire(2) and Acquire(ctx, 2) succeed
	// with permits free; Receive of a message sent before the table filled
	// fails with EMFILE, not ErrMalformed.
	childRoles["at-limit"] = roleAtLimit
}

func roleAtLimit([]string) error {
	empty, err := New(0)
	if err != nil {
		return err
	}
	defer empty.Close()
	empty.fd() // shared: waiting on it needs the poller

	s, err := New(3)
	if err != nil {
		return err
	}
	defer s.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	a, b := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
	defer a.Close()
	defer b.Close()
	if err := s.Send(a); err != nil {
		return err
	}

	ft, err := testutil.FillDescriptorTable()
	if err != nil {
		return err
	}
	defer ft.Free()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	result := make(chan error, 1)
	go func() { result <- empty.Acquire(ctx, 1) }()
	retried := false
	for !retried && len(result) == 0 {
		retried = empty.c.Queue().Retries()
		runtime.Gosched()
	}
	if err := <-result; err != context.DeadlineExceeded {
		return fmt.Errorf("Acquire at the descriptor limit, deadline passed: %v, want exactly context.DeadlineExceeded (poller retried: %v)", err, retried)
	}

	if !s.TryAcquire(2) {
		return errors.New("TryAcquire(2) with 3 permits free failed at the descriptor limit")
	}
	s.Release(2)
	if err := s.Acquire(context.Background(), 2); err != nil {
		return fmt.Errorf("Acquire(ctx, 2) with 3 permits free at the descriptor limit: %v", err)
	}
	s.Release(2)

	r, err := Receive(b)
	if err == nil {
		r.Close()
		return errors.New("Receive at the descriptor limit succeeded")
	}
	if !errors.Is(err, syscall.EMFILE) || errors.Is(err, ErrMalformed) {
		return fmt.Errorf("Receive at the descriptor limit: %v, want an error wrapping EMFILE and not ErrMalformed", err)
	}
	if !ft.Full() {
		return errors.New("the descriptor table is not full")
	}
	ft.Free()
	if v, err := s.Value(); err != nil || v != 3 {
		return fmt.Errorf("Value() = %d, %v, want 3", v, err)
	}
	testutil.Say("ok")
	return nil
}

// Items 2 and 7: at the descriptor limit Acquire fails only with ctx.Err(),
// weighted takes with permits free succeed, and Receive reports EMFILE.
func TestAtDescriptorLimit(t *testing.T) {
	cmd := testutil.Child(t, "at-limit")
	out := testutil.StdoutLines(t, cmd)
	testutil.Start(t, cmd)
	out.Expect("ok")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}

// Item 6: Semaphores dropped without Close give their descriptors back
// once collected.
func TestCollectedSemaphoresCloseDescriptors(t *testing.T) {
	before := len(testutil.OpenFDs(t))
	var made []*Semaphore
	for range 100 {
		s, err := New(1)
		if err != nil {
			t.Fatal(err)
		}
		s.fd() // shared: its permits are in an eventfd
		if err := s.Acquire(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		s.Release(1)
		made = append(made, s)
	}
	if after := len(testutil.OpenFDs(t)); after < before+100 {
		t.Fatalf("%d descriptors open with 100 Semaphores in use, want at least %d", after, before+100)
	}
	runtime.KeepAlive(made)
	testutil.Eventually(t, "collected Semaphores close their descriptors", func() bool {
		runtime.GC()
		return len(testutil.OpenFDs(t)) <= before
	})
}

// panicValue calls f and returns what it panicked with, nil if it did not.
func panicValue(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

// A zero Semaphore panics with a message naming the constructors, not with
// a nil dereference.
func TestZeroValuePanics(t *testing.T) {
	var s Semaphore
	ctx := context.Background()
	for name, f := range map[string]func(){
		"Acquire":    func() { s.Acquire(ctx, 1) },
		"Acquire(0)": func() { s.Acquire(ctx, 0) },
		"TryAcquire": func() { s.TryAcquire(1) },
		"Release":    func() { s.Release(1) },
		"Value":      func() { s.Value() },
		"File":       func() { s.File() },
		"Close":      func() { s.Close() },
		"PassTo":     func() { s.PassTo(exec.Command("true"), "s") },
	} {
		v := panicValue(f)
		msg, ok := v.(string)
		if !ok || !strings.Contains(msg, "not made by") {
			t.Errorf("%s on a zero Semaphore panicked with %#v, want a message saying it was not made by a constructor", name, v)
		}
	}
}

// Item 10: errors of a closed Semaphore name it, not a file.
func TestClosedErrors(t *testing.T) {
	s, err := New(0)
	if err != nil {
		t.Fatal(err)
	}
	woken := make(chan error, 1)
	go func() { woken <- s.Acquire(context.Background(), 1) }()
	blocked(t, s, 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.CheckClosedError(t, "Semaphore", "an Acquire woken by Close", <-woken)
	testutil.CheckClosedError(t, "Semaphore", "Acquire", s.Acquire(context.Background(), 1))
	testutil.CheckClosedError(t, "Semaphore", "Acquire(0)", s.Acquire(context.Background(), 0))
	testutil.CheckClosedError(t, "Semaphore", "Acquire(2)", s.Acquire(context.Background(), 2))
	_, err = s.Value()
	testutil.CheckClosedError(t, "Semaphore", "Value", err)
	_, err = s.File()
	testutil.CheckClosedError(t, "Semaphore", "File", err)
	testutil.CheckClosedError(t, "Semaphore", "Close", s.Close())
	c, _ := testutil.SocketPair(t)
	testutil.CheckClosedError(t, "Semaphore", "Send", s.Send(c))
	testutil.CheckClosedError(t, "Semaphore", "PassTo", s.PassTo(exec.Command("true"), "s"))
}

// Item 9: Receive takes a genuine Send when the receiving socket has
// SO_PASSCRED, on stream, datagram and seqpacket sockets, through a
// *net.UnixConn or a plain *os.File.
func TestReceiveWithPassCred(t *testing.T) {
	testutil.ForEachPassCredSocket(t, func(t *testing.T, send, recv syscall.Conn) {
		s := newSem(t, 0)
		if err := s.Send(send); err != nil {
			t.Fatal(err)
		}
		r, err := Receive(recv)
		if err != nil {
			t.Fatalf("Receive with SO_PASSCRED set: %v", err)
		}
		defer r.Close()
		r.Release(2)
		if err := s.Acquire(context.Background(), 2); err != nil {
			t.Fatal(err)
		}
		if v := value(t, r); v != 0 {
			t.Fatalf("Value through the received handle = %d, want 0", v)
		}
	})
}
