//go:build linux

package semaphore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/eventsync/eventsync/internal/kernel"
	"github.com/eventsync/eventsync/internal/testutil"
)

func init() {
	childRoles["churn"] = roleChurn
	childRoles["hold-and-pass"] = roleHoldAndPass
	childRoles["wait-then-report"] = roleWaitThenReport
	childRoles["receive-and-hold"] = roleReceiveAndHold
}

// skipWithoutPidfd skips tests of crash recovery on kernels without pidfds,
// where nothing watches members (see the README's kernel table).
func skipWithoutPidfd(t *testing.T) {
	t.Helper()
	if !kernel.Pidfd() {
		t.Skip("crash recovery watches members with pidfds: Linux " + kernel.SincePidfd)
	}
}

// What a churning child is doing, which it keeps in a word of memory it
// shares with the test (descriptor 3), so that the test knows where each
// kill landed.
const (
	phaseOther    = iota
	phaseAcquire1 // in Acquire(1) or TryAcquire(1)
	phaseWeighted // in a weighted Acquire or TryAcquire: waiting, or taking a read at a time
	phaseHolding
	phaseRelease
	phases
)

var phaseNames = [phases]string{"elsewhere", "in Acquire(1)", "in a weighted Acquire", "holding", "in Release"}

// phaseWord maps the shared word on descriptor fd.
func phaseWord(fd int) (*atomic.Uint32, []byte, error) {
	mem, err := unix.Mmap(fd, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return (*atomic.Uint32)(unsafe.Pointer(&mem[0])), mem, nil
}

// churn NAME SEED: takes the Semaphore and, until killed, acquires 1 to 3
// permits (sometimes all of them) and releases them, with TryAcquire,
// contexts cancelled at random moments by another goroutine, deadlines, and
// holds of random length; it prints "ready", then "op" every few
// operations, and keeps its phase in the word on descriptor 3.
func roleChurn(args []string) error {
	phase, _, err := phaseWord(3)
	if err != nil {
		return err
	}
	s, err := Inherited(args[0])
	if err != nil {
		return err
	}
	seed, _ := strconv.ParseUint(args[1], 10, 64)
	rng := rand.New(rand.NewPCG(seed, 1))
	size := s.size
	acquiring := func(n int64) {
		if n == 1 {
			phase.Store(phaseAcquire1)
		} else {
			phase.Store(phaseWeighted)
		}
	}
	release := func(n int64) {
		phase.Store(phaseRelease)
		s.Release(n)
		phase.Store(phaseOther)
	}
	testutil.Say("ready")
	for i := 0; ; i++ {
		n := 1 + rng.Int64N(3)
		if rng.IntN(16) == 0 {
			n = size
		}
		switch rng.IntN(4) {
		case 0:
			acquiring(n)
			if s.TryAcquire(n) {
				phase.Store(phaseHolding)
				spin(rng.IntN(64))
				release(n)
			}
		case 1:
			// Cancelled by another goroutine at a random moment: before,
			// during or after the wait.
			ctx, cancel := context.WithCancel(context.Background())
			go func(k int) {
				spin(k)
				cancel()
			}(rng.IntN(256))
			acquiring(n)
			if s.Acquire(ctx, n) == nil {
				phase.Store(phaseHolding)
				release(n)
			}
			cancel()
		default:
			// A deadline, so that a request for every permit does not wait
			// for ever for one that a kill lost.
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(1+rng.IntN(20))*time.Millisecond)
			acquiring(n)
			err := s.Acquire(ctx, n)
			cancel()
			switch {
			case err == nil:
				phase.Store(phaseHolding)
				spin(rng.IntN(256))
				release(n)
			case !errors.Is(err, context.DeadlineExceeded):
				return err
			}
		}
		phase.Store(phaseOther)
		if i%4 == 0 {
			testutil.Say("op")
		}
	}
}

// spin yields the processor k times: a hold, or a delay, of random length
// that is no clock.
func spin(k int) {
	for range k {
		runtime.Gosched()
	}
}

// Children churning on one Semaphore are killed at random moments — while
// they wait, hold, take a weighted request a read at a time, or cancel —
// four at a time, several hundred in all, while this process churns too.
// The eventfd never holds more than the size (nothing is made), and once
// all are reaped and reclaimed, every permit is back but those the record
// counts as in flight when their holder died.
func TestKilledChurnConservesPermits(t *testing.T) {
	skipWithoutPidfd(t)
	const (
		size     = 6
		parallel = 4
	)
	kills := 320
	if testing.Short() {
		kills = 40
	}
	s := newSem(t, size)
	if _, _, err := s.share(); err != nil {
		t.Fatal(err)
	}
	var (
		created atomic.Uint64 // the highest Value seen above size
		done    = make(chan struct{})
		wg      sync.WaitGroup
		errs    = make(chan error, parallel+1)
		killed  atomic.Int64
		seed    = rand.Uint64()
		where   [phases]atomic.Int64 // what the children were doing when killed
	)
	t.Logf("seed %d", seed)
	look := func() {
		if v, err := s.Value(); err == nil && v > size {
			created.Store(v)
		}
	}
	// This process churns as well, so that reclaims also serve waiters
	// queued here.
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(seed, 0))
		for {
			select {
			case <-done:
				return
			default:
			}
			n := 1 + rng.Int64N(2)
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(1+rng.IntN(20))*time.Millisecond)
			err := s.Acquire(ctx, n)
			cancel()
			switch {
			case err == nil:
				spin(rng.IntN(64))
				s.Release(n)
			case !errors.Is(err, context.DeadlineExceeded):
				errs <- fmt.Errorf("this process: Acquire(%d): %w", n, err)
				return
			}
			look()
		}
	}()
	var children sync.WaitGroup
	for slot := range parallel {
		children.Add(1)
		go func() {
			defer children.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(slot)+1))
			for killed.Add(1) <= int64(kills) {
				if err := churnAndKill(s, rng, look, &where); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	children.Wait()
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	// Every child is reaped; wait until each has been reclaimed, by this
	// process or by a sibling that outlived it.
	testutil.Eventually(t, "every dead member is reclaimed", func() bool {
		h, err := s.Holdings()
		return err == nil && h.Members == 1
	})
	v := value(t, s)
	h, err := s.Holdings()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d children killed; Value %d of %d; Holdings %+v", kills, v, size, h)
	for p := range phases {
		t.Logf("killed %s: %d", phaseNames[p], where[p].Load())
	}
	if c := created.Load(); c != 0 {
		t.Fatalf("Value reached %d, above the size %d: a permit was made", c, size)
	}
	if v > size {
		t.Fatalf("Value = %d, above the size %d: a permit was made", v, size)
	}
	if lost := size - v; lost > h.InFlight {
		t.Fatalf("%d permits lost, but only %d were in flight as members died", lost, h.InFlight)
	}
	if h.Held != 0 {
		t.Fatalf("Holdings.Held = %d with nobody holding", h.Held)
	}
}

// churnAndKill starts a churning child, lets it run for a random number of
// its progress lines, kills it, reaps it, and checks that the Semaphore
// holds no more than its size.
func churnAndKill(s *Semaphore, rng *rand.Rand, look func(), where *[phases]atomic.Int64) error {
	cmd := exec.Command(os.Args[0], "sem", strconv.FormatUint(rng.Uint64(), 10))
	cmd.Env = append(os.Environ(), "EVENTSYNC_TEST_ROLE=churn")
	cmd.Stderr = os.Stderr
	memfd, err := unix.MemfdCreate("churn-phase", unix.MFD_CLOEXEC)
	if err != nil {
		return err
	}
	phaseFile := os.NewFile(uintptr(memfd), "churn-phase")
	defer phaseFile.Close()
	if err := unix.Ftruncate(memfd, 4096); err != nil {
		return err
	}
	phase, mem, err := phaseWord(memfd)
	if err != nil {
		return err
	}
	defer unix.Munmap(mem)
	cmd.ExtraFiles = []*os.File{phaseFile} // descriptor 3
	if err := s.PassTo(cmd, "sem"); err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	for _, f := range cmd.ExtraFiles[1:] {
		f.Close()
	}
	lines := bufio.NewScanner(out)
	// 0 lines: killed as it starts, perhaps while it joins.
	for range rng.IntN(24) {
		if !lines.Scan() {
			break
		}
		look()
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		v, verr := s.Value()
		h, herr := s.Holdings()
		return fmt.Errorf("churning child ended with %v, want killed (Value %d %v, Holdings %+v %v)", err, v, verr, h, herr)
	}
	if p := phase.Load(); p < phases {
		where[p].Add(1)
	}
	look()
	return nil
}

// hold-and-pass NAME: makes a Semaphore of 2, takes both, passes it to a
// child of its own (wait-then-report), prints that child's PID, and waits to
// be killed.
func roleHoldAndPass(args []string) error {
	s, err := New(2)
	if err != nil {
		return err
	}
	if err := s.Acquire(context.Background(), 2); err != nil {
		return err
	}
	child := exec.Command(os.Args[0], args[0])
	child.Env = append(os.Environ(), "EVENTSYNC_TEST_ROLE=wait-then-report")
	child.Stdout, child.Stderr = os.Stdout, os.Stderr
	if err := s.PassTo(child, args[0]); err != nil {
		return err
	}
	if err := child.Start(); err != nil {
		return err
	}
	testutil.Say("holding 2, child %d", child.Process.Pid)
	select {}
}

// wait-then-report NAME: says it waits, acquires 2 (which its parent holds),
// and reports what it got and the Holdings.
func roleWaitThenReport(args []string) error {
	s, err := Inherited(args[0])
	if err != nil {
		return err
	}
	testutil.Say("waiting")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.Acquire(ctx, 2); err != nil {
		return err
	}
	// The reclaim's write can serve Acquire before the reclaimer has
	// counted it: wait for the count, until the context's end.
	h, err := s.Holdings()
	for err == nil && h.Reclaims == 0 && ctx.Err() == nil {
		runtime.Gosched()
		h, err = s.Holdings()
	}
	if err != nil {
		return err
	}
	testutil.Say("got 2; reclaims %d reclaimed %d members %d", h.Reclaims, h.Reclaimed, h.Members)
	return nil
}

// A process that made a Semaphore is killed while holding all of it; its
// child, waiting for those permits, gets them: the child reclaims its
// dead parent.
func TestKilledParentChildReclaims(t *testing.T) {
	skipWithoutPidfd(t)
	parent := testutil.Child(t, "hold-and-pass", "sem")
	// A pipe of the test's own, which outlives the parent: the orphaned
	// child reports through it.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	parent.Stdout = w
	testutil.Start(t, parent)
	w.Close()
	out := bufio.NewScanner(r)
	next := func() string {
		if !out.Scan() {
			t.Fatalf("reading the output: %v", out.Err())
		}
		return out.Text()
	}
	var childPID int
	if _, err := fmt.Sscanf(next(), "holding 2, child %d", &childPID); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "waiting" {
		t.Fatalf("child printed %q, want waiting", got)
	}
	testutil.Kill(t, parent)
	// The orphaned child exits by itself once served.
	if got, want := next(), "got 2; reclaims 1 reclaimed 2 members 1"; got != want {
		t.Fatalf("child printed %q, want %q", got, want)
	}
	testutil.Eventually(t, "the orphaned child exits", func() bool {
		return syscall.Kill(childPID, 0) == syscall.ESRCH
	})
}

// receive-and-hold: receives a Semaphore on descriptor 3, a Unix socket,
// acquires N and waits to be killed.
func roleReceiveAndHold(args []string) error {
	conn, err := net.FileConn(os.NewFile(3, "conn"))
	if err != nil {
		return err
	}
	s, err := Receive(conn.(*net.UnixConn))
	if err != nil {
		return err
	}
	n, _ := strconv.ParseInt(args[0], 10, 64)
	if err := s.Acquire(context.Background(), n); err != nil {
		return err
	}
	testutil.Say("holding")
	select {}
}

// A process that joined over a Unix socket, with Send and Receive, dies
// holding permits: they come back to the process waiting for them.
func TestKilledReceiverIsReclaimed(t *testing.T) {
	skipWithoutPidfd(t)
	s := newSem(t, 3)
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "mine"), os.NewFile(uintptr(fds[1]), "theirs")
	defer mine.Close()
	cmd := testutil.Child(t, "receive-and-hold", "3")
	cmd.ExtraFiles = []*os.File{theirs}
	out := testutil.StdoutLines(t, cmd)
	testutil.Start(t, cmd)
	theirs.Close()
	if err := s.Send(mine); err != nil {
		t.Fatal(err)
	}
	out.Expect("holding")
	if h, err := s.Holdings(); err != nil || h.Held != 3 || h.Holders != 1 || h.Members != 2 {
		t.Fatalf("Holdings = %+v, %v; want 3 held by the one of 2 members that received it", h, err)
	}
	acquired := make(chan error, 1)
	go func() { acquired <- s.Acquire(context.Background(), 3) }()
	testutil.Kill(t, cmd)
	if err := <-acquired; err != nil {
		t.Fatal(err)
	}
	// The reclaim's write can serve Acquire before the reclaimer has
	// counted it.
	testutil.Eventually(t, "the reclaim is counted", func() bool {
		h, err := s.Holdings()
		return err == nil && h.Reclaims == 1
	})
	h, err := s.Holdings()
	if err != nil {
		t.Fatal(err)
	}
	if h.Reclaims != 1 || h.Reclaimed != 3 || h.InFlight != 0 {
		t.Fatalf("Holdings = %+v, want one member reclaimed, 3 permits given back", h)
	}
	s.Release(3)
}

// Without pidfds (Linux before 5.3) nothing watches members, but each looks
// at the others when one joins: a member killed while holding is reclaimed
// when the next one joins.
func TestDeadMemberReclaimedAtNextJoin(t *testing.T) {
	if kernel.Pidfd() {
		t.Skip("with pidfds, members are watched: see TestKilledChildren")
	}
	s := newSem(t, 1)
	holder := testutil.Child(t, "hold", "sem", "1")
	if err := s.PassTo(holder, "sem"); err != nil {
		t.Fatal(err)
	}
	out := testutil.StdoutLines(t, holder)
	testutil.Start(t, holder)
	out.Expect("holding")
	testutil.Kill(t, holder)
	if s.TryAcquire(1) {
		t.Fatal("TryAcquire(1) succeeded before anybody looked at the dead holder")
	}
	joiner := testutil.Child(t, "wait", "sem", "5")
	if err := s.PassTo(joiner, "sem"); err != nil {
		t.Fatal(err)
	}
	jout := testutil.StdoutLines(t, joiner)
	testutil.Start(t, joiner)
	jout.Expect("waiting")
	testutil.Eventually(t, "the dead holder is reclaimed", func() bool {
		h, err := s.Holdings()
		return err == nil && h.Reclaims == 1
	})
	if err := s.Acquire(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	testutil.Kill(t, joiner)
	s.Release(1)
}
