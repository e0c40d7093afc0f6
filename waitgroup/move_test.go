//go:build linux

package waitgroup

import (
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
	"testing"

	"github.com/eventsync/eventsync/internal/testutil"
	"golang.org/x/sys/unix"
)

// The move of the counter from the process into eventfds, on the first
// PassTo or Send, racing Add, Done, Go and waiters: no Wait returns before
// the Dones of its round, none hangs, and the counter ends at zero.

func init() {
	// done NAME N: calls Done N times on the WaitGroup passed as NAME.
	childRoles["done"] = func(args []string) error {
		wg, err := Inherited(args[0])
		if err != nil {
			return err
		}
		defer wg.Close()
		n, err := strconv.Atoi(args[1])
		if err != nil {
			return err
		}
		for range n {
			wg.Done()
		}
		return nil
	}
}

// unixPair returns two connected Unix sockets of this process, for Send
// and Receive between goroutines.
func unixPair(t testing.TB) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var conns [2]*net.UnixConn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c.(*net.UnixConn)
	}
	return conns[0], conns[1]
}

// How a storm shares its WaitGroup, at a random point.
const (
	bySend   = "Send"
	byPassTo = "PassTo"
)

const (
	stormRounds  = 4 // reuses of one WaitGroup
	stormMembers = 6 // goroutines that Add(1) and Done, per round
	stormGo      = 2 // tasks started with Go, per round
	stormWaiters = 3
	remote       = 2 // Dones made through the shared handle, in its round
)

// One trial: a WaitGroup reused over several rounds. In each, members
// (Add then Done, and Go) finish while waiters wait; in one round, picked
// at random, another goroutine shares the WaitGroup at a random point, and
// what it shared to (a second handle, or a child) makes remote Dones of
// that round. A Wait that returns without error has seen every Done of its
// round, and the counter at zero.
func stormTrial(t *testing.T, seed uint64, how string) {
	wg := newWG(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	root, stop := context.WithCancel(context.Background())
	defer stop()
	canc := testutil.NewCanceller(root, seed)
	shareRound := rng.IntN(stormRounds)

	var mine, theirs *net.UnixConn
	if how == bySend {
		mine, theirs = unixPair(t)
		defer mine.Close()
		defer theirs.Close()
	}
	var dones atomic.Int64 // Dones made in this process, all rounds
	var child *exec.Cmd
	for round := range stormRounds {
		local := int64(stormMembers + stormGo)
		var trig *testutil.Trigger
		shared := make(chan struct{})
		if round == shareRound {
			trig = testutil.NewTrigger(rng.Int64N(2 * stormMembers))
		} else {
			trig = testutil.NewTrigger(0)
			close(shared)
		}
		// Every Done of this round made in this process; those of a child
		// are seen through Value.
		wantDones := dones.Load() + local
		if round == shareRound && how == bySend {
			wantDones += remote
		}
		wg.Add(int(stormMembers))
		for range stormGo {
			wg.Go(func() {
				runtime.Gosched()
				dones.Add(1)
			})
		}
		if round == shareRound {
			wg.Add(remote)
		}
		var members, waiters sync.WaitGroup
		for i := range stormMembers {
			mrng := rand.New(rand.NewPCG(seed, uint64(round*100+i)))
			members.Go(func() {
				for range mrng.IntN(3) {
					runtime.Gosched()
				}
				trig.Tick()
				canc.Tick()
				dones.Add(1)
				wg.Done()
				trig.Tick()
			})
		}
		for i := range stormWaiters {
			wrng := rand.New(rand.NewPCG(seed, uint64(round*100+50+i)))
			waiters.Go(func() {
				var err error
				if wrng.IntN(3) == 0 {
					wg.Wait()
				} else {
					ctx, done := canc.Context()
					err = wg.WaitContext(ctx)
					done()
					if err != nil {
						if !errors.Is(err, context.Canceled) || ctx.Err() == nil {
							t.Errorf("round %d: WaitContext = %v", round, err)
						}
						return
					}
				}
				if d := dones.Load(); d < wantDones {
					t.Errorf("round %d: Wait returned after %d Dones in this process, want at least %d", round, d, wantDones)
				}
				if v, err := wg.Value(); err != nil || v != 0 {
					t.Errorf("round %d: Value() = %d, %v when Wait returned, want 0", round, v, err)
				}
			})
		}
		if round == shareRound {
			go func() {
				defer close(shared)
				<-trig.C()
				switch how {
				case byPassTo:
					child = testutil.Child(t, "done", "wg", strconv.Itoa(remote))
					if err := wg.PassTo(child, "wg"); err != nil {
						t.Errorf("PassTo: %v", err)
						return
					}
					err := child.Start()
					for _, f := range child.ExtraFiles {
						f.Close()
					}
					if err != nil {
						t.Errorf("starting the child: %v", err)
						child = nil
					}
				case bySend:
					received := make(chan *WaitGroup, 1)
					go func() {
						other, err := Receive(theirs)
						if err != nil {
							t.Errorf("Receive: %v", err)
						}
						received <- other
					}()
					if err := wg.Send(mine); err != nil {
						t.Errorf("Send: %v", err)
					}
					other := <-received
					if other == nil {
						return
					}
					for range remote {
						dones.Add(1)
						other.Done()
					}
					if err := other.Close(); err != nil {
						t.Errorf("closing the received WaitGroup: %v", err)
					}
				}
			}()
		}
		testutil.Join(t, "the members return", &members)
		trig.Fire()
		testutil.Await(t, "the sharer returns", shared)
		testutil.Join(t, "the waiters return", &waiters)
		// The round ends at zero, Go's tasks included, whether or not a
		// waiter saw it: only then may the next round Add.
		zero := make(chan struct{})
		go func() { wg.Wait(); close(zero) }()
		testutil.Await(t, "the counter reaches zero", zero)
		if child != nil {
			if err := child.Wait(); err != nil {
				t.Fatalf("seed %d: child: %v", seed, err)
			}
			child = nil
		}
		if t.Failed() {
			t.Fatalf("seed %d, %s, round %d: failed", seed, how, round)
		}
	}
	if v := value(t, wg); v != 0 {
		t.Fatalf("seed %d, %s: Value() = %d at the end, want 0", seed, how, v)
	}
	if wg.g.Load().fds.Load() == nil {
		t.Fatalf("seed %d, %s: never shared", seed, how)
	}
}

// Rounds of members (Add and Done, Go) and waiters (Wait, WaitContext with
// contexts cancelled before and during the call) on one WaitGroup, shared
// in one of them at a random point: through Send to a second handle, or
// through PassTo to a child, that makes some of that round's Dones. No
// Wait returns before the Dones of its round, nothing hangs, and the
// counter ends at zero.
func TestMoveStorm(t *testing.T) {
	for _, c := range []struct {
		how    string
		trials int
	}{
		{bySend, 100},
		{byPassTo, 3}, // a process per trial, about a second each under -race
	} {
		t.Run(c.how, func(t *testing.T) {
			base := rand.Uint64()
			for trial := range c.trials {
				stormTrial(t, base+uint64(trial), c.how)
			}
		})
	}
}

// Add racing the move: goroutines Add(1) then Done while another shares
// the WaitGroup (PassTo, with no child started: sharing is what counts).
// The counter ends at zero, and no Add or Done finds it negative: each
// would panic.
func TestMoveAddRace(t *testing.T) {
	const workers, loops = 8, 40
	for trial := range 100 {
		wg := newWG(t)
		trig := testutil.NewTrigger(rand.Int64N(workers * loops))
		var all sync.WaitGroup
		for range workers {
			all.Go(func() {
				for i := range loops {
					wg.Add(1)
					trig.Tick()
					if i%4 == 0 {
						runtime.Gosched()
					}
					wg.Done()
				}
			})
		}
		shared := make(chan error, 1)
		go func() {
			<-trig.C()
			cmd := exec.Command("/bin/true")
			err := wg.PassTo(cmd, "wg")
			for _, f := range cmd.ExtraFiles {
				f.Close()
			}
			shared <- err
		}()
		testutil.Join(t, "the workers return", &all)
		trig.Fire()
		if err := testutil.Await(t, "the share", shared); err != nil {
			t.Fatalf("trial %d: PassTo: %v", trial, err)
		}
		if v := value(t, wg); v != 0 {
			t.Fatalf("trial %d: Value() = %d, want 0", trial, v)
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		testutil.Await(t, "Wait returns at zero", done)
	}
}

// A zero WaitGroup, never made by New, counts two members, has waiters
// queued in the process, and is passed to a child that calls Done twice:
// the waiters, queued before the move, return.
func TestZeroValuePassTo(t *testing.T) {
	var wg WaitGroup
	defer wg.Close()
	wg.Add(2)
	const waiters = 3
	var returned sync.WaitGroup
	for range waiters {
		returned.Go(wg.Wait)
	}
	blocked(t, &wg, waiters)
	if wg.g.Load().fds.Load() != nil {
		t.Fatal("a zero WaitGroup has eventfds before it is shared")
	}
	cmd := testutil.Child(t, "done", "wg", "2")
	if err := wg.PassTo(cmd, "wg"); err != nil {
		t.Fatal(err)
	}
	testutil.Start(t, cmd)
	testutil.Join(t, fmt.Sprintf("the %d waiters return once the child calls Done twice", waiters), &returned)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if v := value(t, &wg); v != 0 {
		t.Fatalf("Value() = %d, want 0", v)
	}
	wg.Wait()
}
