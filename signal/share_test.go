//go:build linux

package signal

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventsync/eventsync/internal/testutil"
)

// childRoles are what this test binary does when a test runs it again as a
// child process.
var childRoles = map[string]func(args []string) error{
	// writer NAME N...: the man page demo's child: notifies each N in turn.
	"writer": func(args []string) error {
		s, err := Inherited(args[0])
		if err != nil {
			return err
		}
		defer s.Close()
		for _, a := range args[1:] {
			n, err := strconv.ParseUint(a, 0, 64)
			if err != nil {
				return err
			}
			s.NotifyN(n)
		}
		return nil
	},
	// receive: takes a Signal from the socket on descriptor 3, waits for a
	// notification, and answers with twice as many.
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
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		v, err := s.Wait(ctx)
		if err != nil {
			return err
		}
		s.NotifyN(2 * v)
		return nil
	},
	// wrong-kind NAME: takes NAME, which its environment says is not a
	// Signal, through the environment as the process started with it.
	"wrong-kind": func(args []string) error {
		_, err := Inherited(args[0])
		if err != nil {
			return err
		}
		return errors.New("Inherited took an entry of another kind as a Signal")
	},
}

// The man page demo's write loop in a child, with the parent's coalesced Waits: what
// they return sums to what was written, whatever the interleaving.
func TestWriterChild(t *testing.T) {
	s := newSig(t)
	nums := []string{"1", "2", "3", "4", "5", "0x10"}
	cmd := testutil.Child(t, "writer", append([]string{"sig"}, nums...)...)
	if err := s.PassTo(cmd, "sig"); err != nil {
		t.Fatal(err)
	}
	testutil.Start(t, cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var sum uint64
	for sum < 31 {
		v, err := s.Wait(ctx)
		if err != nil {
			t.Fatalf("after %d of 31: %v", sum, err)
		}
		sum += v
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if sum != 31 {
		t.Fatalf("Waits returned %d in all, the child wrote 31", sum)
	}
	if v := value(t, s); v != 0 {
		t.Fatalf("Value = %d after all was read", v)
	}
}

// Send and Receive hand a Signal to a process that did not inherit it.
func TestSendReceiveAcrossProcesses(t *testing.T) {
	mine, theirs := testutil.SocketPair(t)
	s := newSig(t)
	cmd := testutil.Child(t, "receive")
	cmd.ExtraFiles = []*os.File{theirs}
	testutil.Start(t, cmd)
	if err := s.Send(mine); err != nil {
		t.Fatal(err)
	}
	s.NotifyN(3)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if v := value(t, s); v != 6 {
		t.Fatalf("Value = %d after the receiver took 3 and gave 6, want 6", v)
	}
}

// Inherited in the child checks the kind it was passed: a Semaphore's
// descriptor passed under a name is not a Signal.
func TestInheritedWrongKindInChild(t *testing.T) {
	if _, err := Inherited("not-passed"); !errors.Is(err, ErrNotInherited) {
		t.Fatalf("Inherited(unknown) = %v, want ErrNotInherited", err)
	}
	cmd := testutil.Child(t, "wrong-kind", "x")
	cmd.Env = append(cmd.Env, "EVENTSYNC_FDS=x:semaphore:0")
	cmd.Stderr = nil
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if want := ErrWrongKind.Error(); !strings.Contains(string(out), want) {
		t.Fatalf("child output %q does not report %q", out, want)
	}
}
