//go:build linux

package waitgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/eventsync/eventsync/internal/testutil"
)

var childRoles = map[string]func(args []string) error{
	// inherited-error NAME WANT: Inherited(NAME) fails with the error named
	// WANT.
	"inherited-error": func(args []string) error {
		_, err := Inherited(args[0])
		return testutil.WantError(err, args[1], map[string]error{"ErrWrongKind": ErrWrongKind})
	},
	// member NAME: says it is ready, waits for a line, calls Done.
	"member": func(args []string) error {
		wg, err := Inherited(args[0])
		if err != nil {
			return err
		}
		defer wg.Close()
		testutil.Say("ready")
		if _, err := testutil.WaitLine(); err != nil {
			return err
		}
		wg.Done()
		return nil
	},
	// waiter NAME: waits for zero, then says so.
	"waiter": func(args []string) error {
		wg, err := Inherited(args[0])
		if err != nil {
			return err
		}
		defer wg.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := wg.WaitContext(ctx); err != nil {
			return err
		}
		testutil.Say("zero")
		return nil
	},
	// go-panic: f panics in Go; Wait must not return before the crash.
	"go-panic": func(args []string) error {
		wg, err := New()
		if err != nil {
			return err
		}
		wg.Go(func() { panic("boom") })
		wg.Wait()
		testutil.Say("Wait returned")
		return nil
	},
	// receive: takes a WaitGroup from the socket on descriptor 3 and calls
	// Done.
	"receive": func(args []string) error {
		c, err := testutil.InheritedConn()
		if err != nil {
			return err
		}
		defer c.Close()
		wg, err := Receive(c)
		if err != nil {
			return err
		}
		defer wg.Close()
		wg.Done()
		return nil
	},
}

// waitingProcesses is how many processes have goroutines in Wait.
func waitingProcesses(t testing.TB, wg *WaitGroup) uint64 {
	v, err := wg.shared().waiting.Value()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Members in four children, waiters in this process and in another child:
// every waiter returns once the last member calls Done.
func TestAcrossProcesses(t *testing.T) {
	wg := newWG(t)
	const members = 4
	wg.Add(members)

	waiter := testutil.Child(t, "waiter", "wg")
	if err := wg.PassTo(waiter, "wg"); err != nil {
		t.Fatal(err)
	}
	zero := testutil.StdoutLines(t, waiter)
	testutil.Start(t, waiter)
	testutil.Eventually(t, "the waiter child waits", func() bool { return waitingProcesses(t, wg) == 1 })

	here := make(chan error, 1)
	go func() { here <- wg.WaitContext(context.Background()) }()
	blocked(t, wg, 1)

	var cmds []*exec.Cmd
	var goAhead []func()
	for range members {
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
		cmds = append(cmds, cmd)
		goAhead = append(goAhead, func() { fmt.Fprintln(in, "go") })
	}
	for i, g := range goAhead {
		g()
		if err := cmds[i].Wait(); err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		if i < members-1 {
			select {
			case err := <-here:
				t.Fatalf("Wait returned %v with %d members left", err, members-1-i)
			default:
			}
		}
	}
	if err := <-here; err != nil {
		t.Fatal(err)
	}
	zero.Expect("zero")
	if err := waiter.Wait(); err != nil {
		t.Fatal(err)
	}
	if v := value(t, wg); v != 0 {
		t.Fatalf("Value = %d, want 0", v)
	}
}

// A member killed before Done leaves the others waiting, not corrupted:
// somebody calls Done for it and everyone goes on. A waiter killed while it
// waits does not stop the group either.
func TestKilledMemberAndWaiter(t *testing.T) {
	wg := newWG(t)
	wg.Add(1)
	member := testutil.Child(t, "member", "wg")
	waiter := testutil.Child(t, "waiter", "wg")
	for _, cmd := range []*exec.Cmd{member, waiter} {
		if err := wg.PassTo(cmd, "wg"); err != nil {
			t.Fatal(err)
		}
	}
	out := testutil.StdoutLines(t, member)
	if _, err := member.StdinPipe(); err != nil { // never written: it waits
		t.Fatal(err)
	}
	testutil.Start(t, member)
	testutil.Start(t, waiter)
	out.Expect("ready")
	testutil.Eventually(t, "the waiter child waits", func() bool { return waitingProcesses(t, wg) == 1 })
	testutil.Kill(t, member, waiter)
	if v := value(t, wg); v != 1 {
		t.Fatalf("Value = %d after the member died, want 1", v)
	}
	here := make(chan error, 1)
	go func() { here <- wg.WaitContext(context.Background()) }()
	blocked(t, wg, 1)
	wg.Done() // for the member that died
	if err := <-here; err != nil {
		t.Fatal(err)
	}
	// The dead waiter is still counted, which costs later rounds a write,
	// and nothing else. This process counts itself out once its poller
	// has gone, which may be just after WaitContext returns.
	testutil.Eventually(t, "this process stops counting itself", func() bool { return waitingProcesses(t, wg) <= 1 })
	if n := waitingProcesses(t, wg); n != 1 {
		t.Fatalf("waiting processes = %d, want the dead one", n)
	}
	wg.Add(1)
	wg.Done()
	wg.Wait()
}

// Go's panic policy: if f panics, the task is not removed, so Wait cannot
// return and race the crash.
func TestGoPanic(t *testing.T) {
	cmd := testutil.Child(t, "go-panic")
	var out, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("child exited with %v, want the exit status 2 of a panic\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "panic: boom") {
		t.Fatalf("child's stderr does not show the panic:\n%s", stderr.String())
	}
	if strings.Contains(out.String(), "Wait returned") {
		t.Fatal("Wait returned before the panic was fatal")
	}
}

func TestSendReceive(t *testing.T) {
	c, theirs := testutil.SocketPair(t)

	wg := newWG(t)
	wg.Add(1)
	cmd := testutil.Child(t, "receive")
	cmd.ExtraFiles = []*os.File{theirs}
	testutil.Start(t, cmd)
	if err := wg.Send(c); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestInheritedWrongKind(t *testing.T) {
	if _, err := Inherited("not-passed"); !errors.Is(err, ErrNotInherited) {
		t.Fatalf("Inherited(unknown) = %v, want ErrNotInherited", err)
	}
	cmd := testutil.ChildWithEnv(t, "s:semaphore:0", nil, "inherited-error", "s", "ErrWrongKind")
	testutil.Start(t, cmd)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("Inherited(a semaphore): want ErrWrongKind: child: %v", err)
	}
}
