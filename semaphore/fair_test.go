//go:build linux

package semaphore

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventsync/eventsync/internal/testutil"
)

func init() {
	childRoles["hammer"] = roleHammer
}

// hammer NAME EVERY: acquires and releases one permit of the Semaphore in
// a loop until killed, printing "n" every EVERY acquisitions.
func roleHammer(args []string) error {
	s, err := Inherited(args[0])
	if err != nil {
		return err
	}
	every, _ := strconv.Atoi(args[1])
	ctx := context.Background()
	for i := 1; ; i++ {
		if err := s.Acquire(ctx, 1); err != nil {
			return err
		}
		s.Release(1)
		if i%every == 0 {
			testutil.Say("n")
		}
	}
}

// Two processes hammer one permit: this one with four goroutines, whose
// releases could hand the permit straight to each other, and a child with
// one. Both make progress: a release puts the permit in the kernel before
// this process's waiters are served, so the child's read competes for it
// on equal terms, and this process's goroutines do not hold it among
// themselves.
func TestTwoProcessesBothProgress(t *testing.T) {
	s := newSem(t, 1)
	cmd := testutil.Child(t, "hammer", "sem", "50")
	if err := s.PassTo(cmd, "sem"); err != nil {
		t.Fatal(err)
	}
	out := testutil.StdoutLines(t, cmd)
	testutil.Start(t, cmd)
	defer testutil.Kill(t, cmd)

	var (
		mine atomic.Int64
		stop atomic.Bool
		wg   sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				if err := s.Acquire(ctx, 1); err != nil {
					t.Error(err)
					return
				}
				mine.Add(1)
				s.Release(1)
			}
		})
	}
	// The child's 1,000 acquisitions, while this process hammers on.
	for range 20 {
		out.Expect("n")
	}
	stop.Store(true)
	wg.Wait()
	if mine.Load() == 0 {
		t.Fatal("this process made no progress while the child hammered")
	}
	t.Logf("this process: %d acquisitions while the child made 1000", mine.Load())
}
