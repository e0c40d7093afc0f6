//go:build linux

package share

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/eventsync/eventsync/internal/eventfd"
	"github.com/eventsync/eventsync/internal/testutil"
)

// joinFDs writes descriptor numbers as an entry lists them: 3,4,5.
func joinFDs(fds []int) string {
	s := make([]string, len(fds))
	for i, fd := range fds {
		s[i] = strconv.Itoa(fd)
	}
	return strings.Join(s, ",")
}

// A kind's optional descriptors: PassTo writes an entry with or without
// them, and Inherited takes either, in the modes the kind says.
func TestOptionalPassToInherited(t *testing.T) {
	fds := newFDs(t, kindWaitGroupToken.Modes...)
	for _, n := range []int{3, 4} {
		cmd := exec.Command("true")
		cmd.Env = []string{}
		closeExtraFiles(t, cmd)
		if err := PassTo(cmd, "wg", kindWaitGroupToken, ex(fds[:n])...); err != nil {
			t.Fatalf("PassTo of %d descriptors: %v", n, err)
		}
		want := EnvVar + "=wg:waitgroup:3,4,5"
		if n == 4 {
			want += ",6"
		}
		if !slices.Equal(cmd.Env, []string{want}) || len(cmd.ExtraFiles) != n {
			t.Fatalf("PassTo of %d: Env %q, %d files", n, cmd.Env, len(cmd.ExtraFiles))
		}
	}
	for _, n := range []int{2, 5} {
		cmd := exec.Command("true")
		cmd.Env = []string{}
		closeExtraFiles(t, cmd)
		list := ex(fds)
		if n == 5 {
			list = append(list, fds[0])
		}
		if err := PassTo(cmd, "wg", kindWaitGroupToken, list[:n]...); !errors.Is(err, os.ErrInvalid) {
			t.Errorf("PassTo of %d descriptors = %v, want os.ErrInvalid", n, err)
		}
	}

	for _, n := range []int{3, 4} {
		raw := make([]int, n)
		for i := range raw {
			raw[i] = rawEventfd(t, uint(i), kindWaitGroupToken.Modes[i])
		}
		name := uniqueName("wg")
		startWith(t, name+":waitgroup:"+joinFDs(raw))
		got, err := inheritedFDs(name, kindWaitGroupToken)
		if err != nil {
			for _, fd := range raw {
				unix.Close(fd)
			}
			t.Fatalf("Inherited of %d descriptors: %v", n, err)
		}
		if len(got) != n {
			t.Errorf("Inherited of %d descriptors returned %d", n, len(got))
		}
		for i, fd := range got {
			if fd.Sysfd() != raw[i] || fd.Mode() != kindWaitGroupToken.Modes[i] {
				t.Errorf("descriptor %d = %d in %v mode, want %d in %v", i, fd.Sysfd(), fd.Mode(), raw[i], kindWaitGroupToken.Modes[i])
			}
			wantCloexecNonblock(t, raw[i])
		}
		closeFDs(t, got)
	}
}

// Inherited refuses an entry with fewer descriptors than the kind needs
// without its optional ones, or more than it has with them, and a token in
// the wrong mode; it opens nothing and takes nothing.
func TestOptionalInheritedErrors(t *testing.T) {
	sem := rawEventfd(t, 0, eventfd.Semaphore)
	sem2 := rawEventfd(t, 0, eventfd.Semaphore)
	sem3 := rawEventfd(t, 0, eventfd.Semaphore)
	ctr := rawEventfd(t, 0, eventfd.Counter)
	ctr2 := rawEventfd(t, 0, eventfd.Counter)
	closeRaw(t, sem, sem2, sem3, ctr, ctr2)
	cases := []struct {
		name string
		fds  []int
		want error
	}{
		{"two", []int{sem, ctr}, ErrMalformed},
		{"five", []int{sem, ctr, sem2, sem3, ctr2}, ErrMalformed},
		{"token in counter mode", []int{sem, ctr, sem2, ctr2}, eventfd.ErrWrongMode},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			testutil.SkipUnlessModeShown(t, c.want == eventfd.ErrWrongMode)
			name := uniqueName("wg")
			startWith(t, name+":waitgroup:"+joinFDs(c.fds))
			done := noLeak(t)
			got, err := inheritedFDs(name, kindWaitGroupToken)
			if err == nil {
				closeFDs(t, got)
				t.Fatalf("Inherited of %v succeeded", c.fds)
			}
			if !errors.Is(err, c.want) {
				t.Errorf("Inherited of %v = %v, want %v", c.fds, err, c.want)
			}
			done()
		})
	}
	for _, fd := range []int{sem, sem2, sem3, ctr, ctr2} {
		if !isOpen(fd) {
			t.Errorf("descriptor %d was closed by a failed Inherited", fd)
		}
	}
}

// Send and Receive never carry the optional descriptors: Send refuses
// them, and a message that has them is not one Send wrote.
func TestOptionalNotSent(t *testing.T) {
	forSockTypes(t, func(t *testing.T, a, b *net.UnixConn) {
		fds := newFDs(t, kindWaitGroupToken.Modes...)
		done := noLeak(t)
		if err := Send(a, kindWaitGroupToken, ex(fds)...); !errors.Is(err, os.ErrInvalid) {
			t.Errorf("Send with the optional descriptor = %v, want os.ErrInvalid", err)
		}
		done()
		if err := Send(a, kindWaitGroupToken, ex(fds[:3])...); err != nil {
			t.Fatal(err)
		}
		got, err := receiveFDs(b, kindWaitGroupToken)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 {
			t.Errorf("Receive returned %d descriptors, want 3", len(got))
		}
		closeFDs(t, got)

		nums := make([]int, len(fds))
		for i, fd := range fds {
			nums[i] = fd.Sysfd()
		}
		if _, _, err := a.WriteMsgUnix(header(kindWaitGroupToken, 4), unix.UnixRights(nums...), nil); err != nil {
			t.Fatal(err)
		}
		receiveFails(t, b, kindWaitGroupToken, ErrMalformed)
	})
}
