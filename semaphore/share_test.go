//go:build linux

package semaphore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/eventsync/eventsync/internal/kernel"
	"github.com/eventsync/eventsync/internal/testutil"
	"golang.org/x/sys/unix"
)

// childRoles are what this test binary does when a test runs it again as a
// child process.
var childRoles = map[string]func(args []string) error{
	// inherited-error NAME WANT: Inherited(NAME) fails with the error named
	// WANT.
	"inherited-error": func(args []string) error {
		_, err := Inherited(args[0])
		return testutil.WantError(err, args[1], map[string]error{
			"ErrMalformed": ErrMalformed, "ErrWrongKind": ErrWrongKind, "ErrWrongMode": ErrWrongMode,
			"ErrNotInherited": ErrNotInherited, "ErrClosed": os.ErrClosed,
		})
	},
	// runtime-fds NAME...: with the netpoller running, Inherited refuses
	// every NAME, each naming a descriptor this process did not inherit,
	// one of which is the runtime's own eventfd.
	"runtime-fds": func(args []string) error {
		r, w, err := os.Pipe() // starts the netpoller, if it is not yet
		if err != nil {
			return err
		}
		r.Close()
		w.Close()
		for _, name := range args {
			if s, err := Inherited(name); err == nil {
				s.Close()
				return fmt.Errorf("Inherited(%q) adopted a descriptor it was not passed", name)
			}
		}
		testutil.Say("refused all")
		return nil
	},
	// cloexec FD...: says which of the descriptors are close-on-exec.
	"cloexec": func(args []string) error {
		for _, a := range args {
			fd, _ := strconv.Atoi(a)
			fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
			if err != nil {
				return err
			}
			if fl&unix.FD_CLOEXEC != 0 {
				testutil.Say("%d close-on-exec", fd)
			} else {
				testutil.Say("%d inheritable", fd)
			}
		}
		return nil
	},
	// weighted NAME PERMITS ROUNDS: random weighted acquires.
	"weighted": func(args []string) error {
		s, err := Inherited(args[0])
		if err != nil {
			return err
		}
		defer s.Close()
		permits, _ := strconv.ParseInt(args[1], 10, 64)
		rounds, _ := strconv.Atoi(args[2])
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for range rounds {
			n := rand.Int64N(permits) + 1
			if err := s.Acquire(ctx, n); err != nil {
				return fmt.Errorf("Acquire(%d): %w", n, err)
			}
			// While we hold n, no more than permits-n can be free.
			if v, err := s.Value(); err != nil || v > uint64(permits-n) {
				return fmt.Errorf("holding %d of %d, Value() = %d, %v", n, permits, v, err)
			}
			s.Release(n)
		}
		return nil
	},
	// hold-one-more NAME: takes 1, says so, waits for a line, takes one more,
	// then gives back 2.
	"hold-one-more": func(args []string) error {
		s, err := Inherited(args[0])
		if err != nil {
			return err
		}
		defer s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := s.Acquire(ctx, 1); err != nil {
			return err
		}
		testutil.Say("holding 1")
		if _, err := testutil.WaitLine(); err != nil {
			return err
		}
		if err := s.Acquire(ctx, 1); err != nil {
			return fmt.Errorf("second Acquire(1): %w", err)
		}
		testutil.Say("holding 2")
		s.Release(2)
		return nil
	},
	// hold NAME N: takes N, says so, and waits to be killed.
	"hold": func(args []string) error {
		s, err := Inherited(args[0])
		if err != nil {
			return err
		}
		n, _ := strconv.ParseInt(args[1], 10, 64)
		if err := s.Acquire(context.Background(), n); err != nil {
			return err
		}
		testutil.Say("holding")
		select {}
	},
	// wait NAME N: says so, then blocks in Acquire(N) until killed.
	"wait": func(args []string) error {
		s, err := Inherited(args[0])
		if err != nil {
			return err
		}
		n, _ := strconv.ParseInt(args[1], 10, 64)
		testutil.Say("waiting")
		err = s.Acquire(context.Background(), n)
		return fmt.Errorf("Acquire(%d) returned %v", n, err)
	},
	// flags NAME: reports the inherited descriptor's flags.
	"flags": func(args []string) error {
		s, err := Inherited(args[0])
		if err != nil {
			return err
		}
		defer s.Close()
		fl, _ := unix.FcntlInt(uintptr(s.fd().Sysfd()), unix.F_GETFL, 0)
		fd, _ := unix.FcntlInt(uintptr(s.fd().Sysfd()), unix.F_GETFD, 0)
		testutil.Say("nonblock=%t cloexec=%t", fl&unix.O_NONBLOCK != 0, fd&unix.FD_CLOEXEC != 0)
		return nil
	},
	// middle TAKE SKIP LEAFBIN: takes TAKE, passes it on to a leaf, starts
	// a second leaf with nothing passed, and leaves SKIP alone.
	"middle": func(args []string) error {
		a, err := Inherited(args[0])
		if err != nil {
			return err
		}
		defer a.Close()
		leaf := exec.Command(os.Args[0], args[0], args[1])
		leaf.Env = append(os.Environ(), "EVENTSYNC_TEST_ROLE=leaf")
		leaf.Stdout, leaf.Stderr = os.Stdout, os.Stderr
		if err := a.PassTo(leaf, args[0]); err != nil {
			return err
		}
		if err := leaf.Run(); err != nil {
			return fmt.Errorf("leaf: %w", err)
		}
		bare := exec.Command(os.Args[0], "", args[1])
		bare.Env = append(os.Environ(), "EVENTSYNC_TEST_ROLE=leaf")
		bare.Stdout, bare.Stderr = os.Stdout, os.Stderr
		if err := bare.Run(); err != nil {
			return fmt.Errorf("bare leaf: %w", err)
		}
		return nil
	},
	// leaf WANT SKIP: counts the eventfds it holds, and checks what it may
	// and may not inherit.
	"leaf": func(args []string) error {
		efds := eventfds()
		testutil.Say("leaf sees %d eventfds, env %q", len(efds), os.Getenv("EVENTSYNC_FDS"))
		if _, err := Inherited(args[1]); !errors.Is(err, ErrNotInherited) {
			return fmt.Errorf("Inherited(%q) not passed to the leaf = %v, want ErrNotInherited", args[1], err)
		}
		if args[0] != "" {
			s, err := Inherited(args[0])
			if err != nil {
				return err
			}
			s.Release(1)
			s.Close()
		}
		return nil
	},
	// receive: takes a Semaphore from the socket on descriptor 3, takes a
	// permit and gives back two.
	"receive": func(args []string) error {
		c, err := testutil.InheritedConn()
		if err != nil {
			return err
		}
		defer c.Close()
		s, err := Receive(c)
		if err != nil {
			return err
		}
		defer s.Close()
		fd, _ := unix.FcntlInt(uintptr(s.fd().Sysfd()), unix.F_GETFD, 0)
		if fd&unix.FD_CLOEXEC == 0 {
			return errors.New("received descriptor is not close-on-exec")
		}
		if err := s.Acquire(context.Background(), 1); err != nil {
			return err
		}
		s.Release(2)
		return nil
	},
}

// eventfds lists the eventfds open in this process.
func eventfds() []string {
	ents, _ := os.ReadDir("/proc/self/fd")
	var fds []string
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == "anon_inode:[eventfd]" {
			fds = append(fds, e.Name())
		}
	}
	return fds
}

// Weighted acquires from three processes at once on one semaphore neither
// deadlock nor lose permits.
func TestWeightedAcrossProcesses(t *testing.T) {
	const permits = 4
	s := newSem(t, permits)
	var cmds []*exec.Cmd
	for range 3 {
		cmd := testutil.Child(t, "weighted", "sem", strconv.Itoa(permits), "300")
		if err := s.PassTo(cmd, "sem"); err != nil {
			t.Fatal(err)
		}
		testutil.Start(t, cmd)
		cmds = append(cmds, cmd)
	}
	// This process joins in too.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for range 300 {
		n := rand.Int64N(permits) + 1
		if err := s.Acquire(ctx, n); err != nil {
			t.Fatalf("Acquire(%d): %v", n, err)
		}
		s.Release(n)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v", i, err)
		}
	}
	if v := value(t, s); v != permits {
		t.Fatalf("Value = %d after all processes finished, want %d", v, permits)
	}
}

// A waiting Acquire holds no permits: the parent waits for 2 of 2 while a
// child holds 1 and needs the other before it gives back both. A loop of
// single reads would take the free permit and deadlock.
func TestWaitingAcquireHoldsNothing(t *testing.T) {
	s := newSem(t, 2)
	cmd := testutil.Child(t, "hold-one-more", "sem")
	if err := s.PassTo(cmd, "sem"); err != nil {
		t.Fatal(err)
	}
	out := testutil.StdoutLines(t, cmd)
	goAhead, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	testutil.Start(t, cmd)
	out.Expect("holding 1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	acquired := make(chan error, 1)
	go func() { acquired <- s.Acquire(ctx, 2) }()
	blocked(t, s, 1)
	if v := value(t, s); v != 1 {
		t.Fatalf("a waiting Acquire(2) left Value = %d, want the 1 free permit untouched", v)
	}
	fmt.Fprintln(goAhead, "go")
	out.Expect("holding 2")
	if err := <-acquired; err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	s.Release(2)
	if v := value(t, s); v != 2 {
		t.Fatalf("Value = %d, want 2", v)
	}
}

// A child killed while it holds a permit, and one killed while it waits:
// everyone else goes on, and the held permit comes back, serving the
// Acquire(3) that waited for it.
func TestKilledChildren(t *testing.T) {
	skipWithoutPidfd(t)
	s := newSem(t, 3)
	holder := testutil.Child(t, "hold", "sem", "1")
	waiter := testutil.Child(t, "wait", "sem", "10")
	for _, cmd := range []*exec.Cmd{holder, waiter} {
		if err := s.PassTo(cmd, "sem"); err != nil {
			t.Fatal(err)
		}
	}
	hout := testutil.StdoutLines(t, holder)
	wout := testutil.StdoutLines(t, waiter)
	testutil.Start(t, holder)
	testutil.Start(t, waiter)
	hout.Expect("holding")
	wout.Expect("waiting")
	// A waiter here, for more than is free.
	acquired := make(chan error, 1)
	go func() { acquired <- s.Acquire(context.Background(), 3) }()
	blocked(t, s, 1)

	// The waiter first, and once a survivor (this process or the holder)
	// has reclaimed it, the holder: so that no reclaimer dies mid-reclaim
	// and the counts below are exact.
	testutil.Kill(t, waiter)
	testutil.Eventually(t, "the waiter is reclaimed", func() bool {
		h, err := s.Holdings()
		return err == nil && h.Reclaims == 1
	})
	testutil.Kill(t, holder)
	if err := <-acquired; err != nil {
		t.Fatalf("Acquire(3) after the holder of 1 of 3 died: %v", err)
	}
	// The reclaim's write can serve Acquire before the reclaimer has
	// counted it.
	testutil.Eventually(t, "the holder's reclaim is counted", func() bool {
		h, err := s.Holdings()
		return err == nil && h.Reclaims == 2
	})
	h, err := s.Holdings()
	if err != nil {
		t.Fatal(err)
	}
	if h.Reclaims != 2 || h.Reclaimed != 1 || h.InFlight != 0 || h.Held != 3 || h.Holders != 1 || h.Members != 1 {
		t.Fatalf("Holdings = %+v, want 2 members reclaimed, 1 permit given back, this process holding 3", h)
	}
	s.Release(3)
	if v := value(t, s); v != 3 {
		t.Fatalf("Value = %d, want 3", v)
	}
}

// The descriptor stays non-blocking on both sides after cmd.Start (which
// calls Fd()), the child's is close-on-exec, and the parent's waits stay
// cancellable.
func TestFlagsAfterStart(t *testing.T) {
	s := newSem(t, 0)
	cmd := testutil.Child(t, "flags", "sem")
	if err := s.PassTo(cmd, "sem"); err != nil {
		t.Fatal(err)
	}
	out := testutil.StdoutLines(t, cmd)
	testutil.Start(t, cmd)
	out.Expect("nonblock=true cloexec=true")
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	fl, _ := unix.FcntlInt(uintptr(s.fd().Sysfd()), unix.F_GETFL, 0)
	if fl&unix.O_NONBLOCK == 0 {
		t.Fatal("parent's descriptor lost O_NONBLOCK after cmd.Start")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Acquire(ctx, 1) }()
	blocked(t, s, 1)
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Acquire after cmd.Start = %v, want context.Canceled", err)
	}
}

// A grandchild sees only what its parent passed on: not the primitive its
// parent was given and kept to itself, and nothing at all when it was
// passed nothing.
func TestGrandchildrenSeeOnlyWhatIsPassed(t *testing.T) {
	a := newSem(t, 0)
	b := newSem(t, 0)
	cmd := testutil.Child(t, "middle", "a", "b")
	if err := a.PassTo(cmd, "a"); err != nil {
		t.Fatal(err)
	}
	if err := b.PassTo(cmd, "b"); err != nil {
		t.Fatal(err)
	}
	out := testutil.StdoutLines(t, cmd)
	testutil.Start(t, cmd)
	// The variable is gone from the environment once read: a process the
	// leaf starts with os.Environ() is not told of descriptors it lacks.
	// A Semaphore is two eventfds (its permits and its roster) and a record.
	out.Expect(`leaf sees 2 eventfds, env ""`)
	out.Expect(`leaf sees 0 eventfds, env ""`)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if v := value(t, a); v != 1 {
		t.Fatalf("the leaf's Release(1) on a: Value = %d, want 1", v)
	}
}

// Send and Receive hand a Semaphore to a process that did not inherit it.
func TestSendReceiveAcrossProcesses(t *testing.T) {
	c, theirs := testutil.SocketPair(t)

	s := newSem(t, 0)
	cmd := testutil.Child(t, "receive")
	cmd.ExtraFiles = []*os.File{theirs}
	testutil.Start(t, cmd)
	if err := s.Send(c); err != nil {
		t.Fatal(err)
	}
	s.Release(1)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if v := value(t, s); v != 2 {
		t.Fatalf("Value = %d after the receiver took 1 and gave 2, want 2", v)
	}
}

// Python, given the descriptor with PassTo, finds it through EVENTSYNC_FDS
// as any language can, takes a permit with os.eventfd_read and gives back
// two with os.eventfd_write.
func TestPythonPeer(t *testing.T) {
	py := testutil.Python(t)
	const script = `
import os, select
entries = {}
for e in os.environ["EVENTSYNC_FDS"].split():
    name, kind, fds = e.split(":")
    entries[name] = (kind, [int(fd) for fd in fds.split(",")])
kind, fds = entries["jobs"]
fd = fds[0]                          # the permits; the rest is ours
assert kind == "semaphore", kind
while True:
    try:
        got = os.eventfd_read(fd)
        break
    except BlockingIOError:          # another process was faster
        select.select([fd], [], [])  # wait, then try again
os.eventfd_write(fd, 2)
print("took", got, "gave 2")
`
	s := newSem(t, 0)
	cmd := exec.Command(py, "-c", script)
	if err := s.PassTo(cmd, "jobs"); err != nil {
		t.Fatal(err)
	}
	out := testutil.StdoutLines(t, cmd)
	cmd.Stderr = os.Stderr
	testutil.Start(t, cmd)
	s.Release(1)
	out.Expect("took 1 gave 2")
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if v := value(t, s); v != 2 {
		t.Fatalf("Value = %d, want 2", v)
	}
}

// Inherited, asked for what was not passed, or for a Signal as a Semaphore.
// Each child is told what it inherits as it starts, as a real child is.
func TestInheritedErrors(t *testing.T) {
	if _, err := Inherited("nothing-passed-by-that-name"); !errors.Is(err, ErrNotInherited) {
		t.Fatalf("Inherited(unknown) = %v, want ErrNotInherited", err)
	}
	counter := testutil.Eventfd(t, 0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	for _, c := range []struct{ env, name, want string }{
		{"sig:signal:3 bad:semaphore:x", "sig", "ErrMalformed"},
		{"sig:signal:3", "sig", "ErrWrongKind"},
		{"sem:semaphore:3,4,5", "sem", "ErrWrongMode"},
		{"sem:semaphore:3,4,5", "other", "ErrNotInherited"},
		{"sem:semaphore:999,998,997", "sem", "ErrClosed"}, // not open: nothing is passed as 999
	} {
		if c.want == "ErrWrongMode" && !kernel.ModeInFdinfo() {
			continue // the mode is taken on trust on this kernel
		}
		var files []*os.File
		for range 3 {
			files = append(files, os.NewFile(uintptr(mustDup(t, counter)), "counter"))
		}
		cmd := testutil.ChildWithEnv(t, c.env, files, "inherited-error", c.name, c.want)
		testutil.Start(t, cmd)
		if err := cmd.Wait(); err != nil {
			t.Errorf("EVENTSYNC_FDS=%q, Inherited(%q): want %s: child: %v", c.env, c.name, c.want, err)
		}
	}
}

func mustDup(t *testing.T, fd int) int {
	t.Helper()
	d, err := unix.Dup(fd)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// An entry may name a descriptor that this process did not inherit but
// that the Go runtime uses: its netpoller's own eventfd. Inherited must
// refuse it — closing it would kill the process — whether the netpoller
// started before or after start-up looked at the environment.
func TestInheritedRefusesRuntimeDescriptor(t *testing.T) {
	env := "a:semaphore:3 b:semaphore:4 c:semaphore:5 d:semaphore:6 e:semaphore:7"
	for _, early := range []bool{false, true} {
		cmd := testutil.ChildWithEnv(t, env, nil, "runtime-fds", "a", "b", "c", "d", "e")
		if early {
			// A non-blocking stdin makes package os register it with the
			// netpoller before any package of ours runs its init.
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if err := unix.SetNonblock(int(r.Fd()), true); err != nil {
				t.Fatal(err)
			}
			cmd.Stdin = r
			defer r.Close()
		}
		out := testutil.StdoutLines(t, cmd)
		testutil.Start(t, cmd)
		out.Expect("refused all")
		if err := cmd.Wait(); err != nil {
			t.Fatalf("netpoller started early: %v: child: %v", early, err)
		}
	}
}

// A malformed EVENTSYNC_FDS still has every well-formed descriptor number
// in it made close-on-exec at start-up: a bad entry must not let a
// descriptor reach an exec'd grandchild.
func TestMalformedEnvStillCloseOnExec(t *testing.T) {
	raw := testutil.Eventfd(t, 1, unix.EFD_SEMAPHORE) // inheritable, as a careless parent makes it
	f := os.NewFile(uintptr(mustDup(t, raw)), "raw")
	cmd := testutil.ChildWithEnv(t, "ok:semaphore:3 broken:semaphore:x,", []*os.File{f}, "cloexec", "3")
	out := testutil.StdoutLines(t, cmd)
	testutil.Start(t, cmd)
	out.Expect("3 close-on-exec")
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestPassToStarted(t *testing.T) {
	s := newSem(t, 0)
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("no true(1):", err)
	}
	if err := s.PassTo(cmd, "late"); err == nil {
		t.Fatal("PassTo after Start succeeded")
	}
}
