//go:build linux

package waitgroup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"

	"github.com/eventsync/eventsync/internal/kernel"
	"github.com/eventsync/eventsync/internal/share"
	"github.com/eventsync/eventsync/internal/testutil"
)

func init() {
	// no-done NAME: takes the WaitGroup and exits without Done.
	childRoles["no-done"] = func(args []string) error {
		wg, err := Inherited(args[0])
		if err != nil {
			return err
		}
		return wg.Close()
	}
	// done-n NAME N: takes the WaitGroup, says it is ready, waits for a
	// line, and calls Done N times.
	childRoles["done-n"] = func(args []string) error {
		wg, err := Inherited(args[0])
		if err != nil {
			return err
		}
		defer wg.Close()
		n, err := strconv.Atoi(args[1])
		if err != nil {
			return err
		}
		testutil.Say("ready")
		if _, err := testutil.WaitLine(); err != nil {
			return err
		}
		for range n {
			wg.Done()
		}
		return nil
	}
}

func needPidfd(t *testing.T) {
	t.Helper()
	if !kernel.Pidfd() {
		t.Skip("no pidfd_open on this kernel: Start refuses (TestStartWithoutPidfd)")
	}
}

// child is a process started with Start: its output, and the way to give
// it the go-ahead.
type child struct {
	cmd *exec.Cmd
	out *testutil.Lines
	in  io.WriteCloser
}

// start starts a child in role as a member of wg, under name "wg".
func start(t *testing.T, wg *WaitGroup, role string, args ...string) *child {
	t.Helper()
	s := &child{cmd: testutil.Child(t, role, append([]string{"wg"}, args...)...)}
	s.out = testutil.StdoutLines(t, s.cmd)
	in, err := s.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.in = in
	if err := wg.Start(s.cmd, "wg"); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *child) goAhead() { fmt.Fprintln(s.in, "go") }

func (s *child) wait(t *testing.T) {
	t.Helper()
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("child %d: %v", s.cmd.Process.Pid, err)
	}
}

// wantExited checks that err is an *ExitError naming exactly pids.
func wantExited(t *testing.T, err error, pids ...int) {
	t.Helper()
	var e *ExitError
	if !errors.As(err, &e) || !errors.Is(err, ErrExited) {
		t.Fatalf("WaitContext = %v, want an *ExitError for %v", err, pids)
	}
	got := slices.Sorted(slices.Values(e.PIDs))
	if want := slices.Sorted(slices.Values(pids)); !slices.Equal(got, want) {
		t.Fatalf("ExitError.PIDs = %v, want %v (%v)", e.PIDs, want, err)
	}
}

// unwatched waits until wg has seen the exit of every process it started.
func unwatched(t *testing.T, wg *WaitGroup) {
	t.Helper()
	testutil.Eventually(t, "every exit is seen", func() bool { return wg.watched() == 0 })
}

// settledFDs returns this process's descriptors once the pollers of earlier
// tests, which close their own descriptors as they leave, are gone.
func settledFDs(t *testing.T) []string {
	t.Helper()
	testutil.Eventually(t, "earlier pollers are gone", func() bool {
		return testutil.CountGoroutines("member.(*poller).run") == 0 && testutil.CountGoroutines("waitq.(*Queue).poll") == 0
	})
	return testutil.OpenFDs(t)
}

// A child started with Start that exits normally without Done: the
// WaitGroup does its Done, and WaitContext says which process it was, once.
func TestStartExitWithoutDone(t *testing.T) {
	needPidfd(t)
	wg := newWG(t)
	cmd := testutil.Child(t, "no-done", "wg")
	if err := wg.Start(cmd, "wg"); err != nil {
		t.Fatal(err)
	}
	for _, f := range cmd.ExtraFiles {
		if _, err := f.Stat(); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Start left %s open in this process: %v", f.Name(), err)
		}
	}
	wantExited(t, wg.WaitContext(context.Background()), cmd.Process.Pid)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := wg.WaitContext(context.Background()); err != nil {
		t.Fatalf("second WaitContext = %v, want nil: the exit was reported", err)
	}
	if v := value(t, wg); v != 0 {
		t.Fatalf("Value = %d, want 0", v)
	}
	unwatched(t, wg)
}

// A child started with Start that calls Done, then exits: its share is done
// once. A child that calls Done twice does its share and one Add of the
// parent's. The WaitGroup is then reused.
func TestStartDoneThenExit(t *testing.T) {
	needPidfd(t)
	wg := newWG(t)
	wg.Add(2) // the parent's own, one of which the second child does
	once := start(t, wg, "done-n", "1")
	twice := start(t, wg, "done-n", "2")
	for _, c := range []*child{once, twice} {
		c.out.Expect("ready")
	}
	if v := value(t, wg); v != 4 {
		t.Fatalf("Value = %d with two children started, want 4", v)
	}
	for _, c := range []*child{once, twice} {
		c.goAhead()
		c.wait(t)
	}
	unwatched(t, wg)
	if v := value(t, wg); v != 1 {
		t.Fatalf("Value = %d once both children's exits were seen, want 1: a share was done twice or not at all", v)
	}
	returned := make(chan error, 1)
	go func() { returned <- wg.WaitContext(context.Background()) }()
	blocked(t, wg, 1)
	wg.Done()
	if err := <-returned; err != nil {
		t.Fatalf("WaitContext = %v, want nil: every child did its Done", err)
	}
	wg.Add(1)
	wg.Done()
	if err := wg.WaitContext(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Four children started with Start, two killed before Done, two calling
// Done: every waiter, in this process and in another, returns, and
// WaitContext names the two killed.
func TestStartKilledBeforeDone(t *testing.T) {
	needPidfd(t)
	wg := newWG(t)
	waiter := testutil.Child(t, "waiter", "wg")
	if err := wg.PassTo(waiter, "wg"); err != nil {
		t.Fatal(err)
	}
	zero := testutil.StdoutLines(t, waiter)

	var children []*child
	for range 4 {
		children = append(children, start(t, wg, "member"))
	}
	for _, c := range children {
		c.out.Expect("ready")
	}
	testutil.Start(t, waiter)
	testutil.Eventually(t, "the waiter child waits", func() bool { return waitingProcesses(t, wg) == 1 })
	returned := make(chan error, 1)
	go func() { returned <- wg.WaitContext(context.Background()) }()
	blocked(t, wg, 1)

	killed := []int{children[0].cmd.Process.Pid, children[2].cmd.Process.Pid}
	testutil.Kill(t, children[0].cmd, children[2].cmd)
	for _, c := range []*child{children[1], children[3]} {
		c.goAhead()
		c.wait(t)
	}
	wantExited(t, <-returned, killed...)
	zero.Expect("zero")
	if err := waiter.Wait(); err != nil {
		t.Fatal(err)
	}
	unwatched(t, wg)
	if v := value(t, wg); v != 0 {
		t.Fatalf("Value = %d, want 0", v)
	}
}

// A Start that fails starts nothing and leaves the counter as it was.
func TestStartFails(t *testing.T) {
	needPidfd(t)
	wg := newWG(t)
	wg.Add(2)
	wg.shared()
	before := settledFDs(t)

	cmd := exec.Command("/nonexistent/eventsync-test")
	if err := wg.Start(cmd, "wg"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Start of a missing program = %v, want os.ErrNotExist", err)
	}
	if cmd.Process != nil {
		t.Error("cmd.Process is set after a failed Start")
	}

	cmd = exec.Command("true")
	if err := wg.Start(cmd, "bad name"); !errors.Is(err, os.ErrInvalid) {
		t.Errorf("Start with a bad name = %v, want os.ErrInvalid", err)
	}
	cmd = exec.Command("true")
	if err := wg.PassTo(cmd, "wg"); err != nil {
		t.Fatal(err)
	}
	if err := wg.Start(cmd, "wg"); !errors.Is(err, share.ErrPassed) {
		t.Errorf("Start with a name already passed = %v, want the error of PassTo", err)
	}
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}
	if err := wg.Start(nil, "wg"); !errors.Is(err, os.ErrInvalid) {
		t.Errorf("Start(nil) = %v, want os.ErrInvalid", err)
	}

	if v := value(t, wg); v != 2 {
		t.Fatalf("Value = %d after failed Starts, want 2", v)
	}
	if wg.watched() != 0 {
		t.Fatal("a failed Start watches a process")
	}
	if after := testutil.OpenFDs(t); !slices.Equal(before, after) {
		t.Fatalf("descriptors before %v, after %v", before, after)
	}
	wg.Add(-2)
	if err := wg.WaitContext(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Without pidfds (emulated Linux 4.18), Start refuses before it starts
// anything.
func TestStartWithoutPidfd(t *testing.T) {
	if kernel.Pidfd() {
		t.Skip("this kernel has pidfd_open; EVENTSYNC_KERNEL_PROFILE=4.18 takes it away")
	}
	wg := newWG(t)
	cmd := testutil.Child(t, "no-done", "wg")
	if err := wg.Start(cmd, "wg"); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("Start without pidfds = %v, want errors.ErrUnsupported", err)
	}
	if cmd.Process != nil || len(cmd.ExtraFiles) != 0 {
		t.Fatal("Start without pidfds started the process or passed descriptors")
	}
	if v := value(t, wg); v != 0 {
		t.Fatalf("Value = %d, want 0", v)
	}
}

// Children started with Start leave no descriptor behind, in this process,
// once they are reaped and their exits seen, whether they called Done, were
// killed, or exited without it.
func TestStartNoDescriptorLeak(t *testing.T) {
	needPidfd(t)
	wg := newWG(t)
	wg.shared()
	before := settledFDs(t)
	for range 3 {
		done := start(t, wg, "done-n", "1")
		killed := start(t, wg, "member")
		noDone := testutil.Child(t, "no-done", "wg")
		if err := wg.Start(noDone, "wg"); err != nil {
			t.Fatal(err)
		}
		done.out.Expect("ready")
		killed.out.Expect("ready")
		done.goAhead()
		done.wait(t)
		testutil.Kill(t, killed.cmd)
		if err := noDone.Wait(); err != nil {
			t.Fatal(err)
		}
		wantExited(t, wg.WaitContext(context.Background()), killed.cmd.Process.Pid, noDone.Process.Pid)
	}
	unwatched(t, wg)
	testutil.Eventually(t, "the descriptors are closed", func() bool {
		return slices.Equal(before, testutil.OpenFDs(t))
	})
}

// Close stops watching: a child killed afterwards is a member as one
// passed with PassTo is, and nothing runs on the closed WaitGroup.
func TestStartThenClose(t *testing.T) {
	needPidfd(t)
	wg, err := New()
	if err != nil {
		t.Fatal(err)
	}
	other := adoptHandle(t, wg)
	c := start(t, wg, "member")
	c.out.Expect("ready")
	if err := wg.Close(); err != nil {
		t.Fatal(err)
	}
	if wg.watched() != 0 {
		t.Fatal("a closed WaitGroup still watches")
	}
	testutil.Kill(t, c.cmd)
	if v := value(t, other); v != 1 {
		t.Fatalf("Value = %d after the child died unwatched, want 1", v)
	}
	other.Done()
	if err := other.WaitContext(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A zero WaitGroup starts members too.
func TestStartZeroValue(t *testing.T) {
	needPidfd(t)
	var wg WaitGroup
	defer wg.Close()
	cmd := testutil.Child(t, "no-done", "wg")
	if err := wg.Start(cmd, "wg"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	wantExited(t, wg.WaitContext(context.Background()), cmd.Process.Pid)
}
