//go:build linux

package share

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/eventsync/eventsync/internal/eventfd"
	"github.com/eventsync/eventsync/internal/testutil"
)

// ---------------------------------------------------------------------------
// helpers

// nameSeq makes names unique across tests and across -count runs: the names
// Inherited hands out are remembered for the life of the process.
var nameSeq atomic.Int64

func uniqueName(base string) string {
	return fmt.Sprintf("%s-%d", base, nameSeq.Add(1))
}

// rawEventfd makes an eventfd the way a parent that is not us might: not
// close-on-exec and blocking, so that a test can see Inherited set both flags.
// The caller owns it (and hands it to Inherited on success).
func rawEventfd(t *testing.T, init uint, mode eventfd.Mode) int {
	t.Helper()
	flags := 0
	if mode == eventfd.Semaphore {
		flags |= unix.EFD_SEMAPHORE
	}
	fd, err := unix.Eventfd(init, flags)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// closeRaw closes descriptors the test owns, at the end of the test.
func closeRaw(t *testing.T, fds ...int) {
	t.Helper()
	t.Cleanup(func() {
		for _, fd := range fds {
			if err := unix.Close(fd); err != nil {
				t.Errorf("close %d: %v", fd, err)
			}
		}
	})
}

// rawPipe returns a pipe's two ends, closed at the end of the test.
func rawPipe(t *testing.T) (r, w int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	closeRaw(t, p[0], p[1])
	return p[0], p[1]
}

// newFDs makes eventfds in the given modes, closed at the end of the test.
func newFDs(t *testing.T, modes ...eventfd.Mode) []*eventfd.FD {
	t.Helper()
	fds := make([]*eventfd.FD, len(modes))
	for i, m := range modes {
		fd, err := eventfd.New(uint64(10*(i+1)), m)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fd.Close() })
		fds[i] = fd
	}
	return fds
}

func closeFDs(t *testing.T, fds []*eventfd.FD) {
	t.Helper()
	for _, fd := range fds {
		if err := fd.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

// fdFlags returns the descriptor flags (F_GETFD) and the file status flags
// (F_GETFL) of fd.
func fdFlags(t *testing.T, fd int) (fdfl, fl int) {
	t.Helper()
	fdfl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatalf("F_GETFD %d: %v", fd, err)
	}
	fl, err = unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		t.Fatalf("F_GETFL %d: %v", fd, err)
	}
	return fdfl, fl
}

func wantCloexecNonblock(t *testing.T, fd int) {
	t.Helper()
	fdfl, fl := fdFlags(t, fd)
	if fdfl&unix.FD_CLOEXEC == 0 {
		t.Errorf("descriptor %d is not close-on-exec", fd)
	}
	if fl&unix.O_NONBLOCK == 0 {
		t.Errorf("descriptor %d is not non-blocking", fd)
	}
}

func isOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

// noLeak returns a function that fails the test if the set of open
// descriptors differs from what it is now.
//
// Descriptors that earlier tests leave to be closed by goroutines still on
// their way out (a queue's poller closes its duplicate as it leaves) come
// and go by themselves: both listings wait until the set holds still.
func noLeak(t *testing.T) func() {
	t.Helper()
	before := settledFDs(t, nil)
	return func() {
		t.Helper()
		if after := settledFDs(t, before); !slices.Equal(before, after) {
			t.Errorf("open descriptors changed:\nbefore %v\nafter  %v", before, after)
		}
	}
}

// settledFDs lists the open descriptors once two listings a moment apart
// agree, or at once when a listing equals want; it gives up after a while
// and returns the last.
func settledFDs(t *testing.T, want []string) []string {
	t.Helper()
	fds := testutil.OpenFDs(t)
	for range 200 {
		if want != nil && slices.Equal(fds, want) {
			return fds
		}
		time.Sleep(time.Millisecond)
		again := testutil.OpenFDs(t)
		if slices.Equal(fds, again) && want == nil {
			return fds
		}
		fds = again
	}
	return fds
}

// roundTrip checks that a and b are the same eventfd: what is written on one
// is read on the other.
func roundTrip(t *testing.T, a, b *eventfd.FD) {
	t.Helper()
	// Empty both first, whatever their mode.
	for _, fd := range []*eventfd.FD{a, b} {
		for {
			v, err := fd.Read()
			if err != nil {
				t.Fatal(err)
			}
			if v == 0 {
				break
			}
		}
	}
	if err := a.Write(7); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Value(); err != nil || v != 7 {
		t.Fatalf("after writing 7 on one, the other's counter is %d, %v", v, err)
	}
	if err := b.Write(2); err != nil {
		t.Fatal(err)
	}
	if v, err := a.Value(); err != nil || v != 9 {
		t.Fatalf("after writing 2 more on the other, the counter is %d, %v", v, err)
	}
	want := uint64(9)
	if a.Mode() == eventfd.Semaphore {
		want = 1
	}
	if v, err := b.Read(); err != nil || v != want {
		t.Fatalf("Read = %d, %v; want %d", v, err, want)
	}
}

// ---------------------------------------------------------------------------
// parseEnv and formatEnv

var envSeeds = []string{
	"",
	" ",
	"\t\n ",
	"jobs:semaphore:3",
	"jobs:semaphore:3 done:waitgroup:4,5,6",
	"  jobs:semaphore:3\t\tready:signal:4\n",
	"a-b_c.D9:signal:0",
	"x:unknownkind:7",
	strings.Repeat("n", 255) + ":semaphore:3",
	strings.Repeat("n", 256) + ":semaphore:3",
	"a:b:",
	"a::3",
	":semaphore:3",
	"a:semaphore",
	"a:semaphore:3:4",
	"a:semaphore:03",
	"a:semaphore:+3",
	"a:semaphore:-1",
	"a:semaphore:-0",
	"a:semaphore:3,",
	"a:semaphore:,3",
	"a:semaphore:3,,4",
	"a:semaphore:0x3",
	"a:semaphore:9223372036854775807",
	"a:semaphore:9223372036854775808",
	"a:semaphore:99999999999999999999999999",
	"a:semaphore:4294967299",
	"a:waitgroup:" + fdList(16),
	"a:waitgroup:" + fdList(17),
	"é:semaphore:3",
	"a:semaphore:٣",
	"a b:semaphore:3",
	"a\u00a0b:semaphore:3",
	"a:semaphore:3 a:semaphore:4",
	"a:semaphore:3 b:signal:4 a:waitgroup:5,6,7",
	"a:semaphore:3 b:semaphore:3",
	"a!:semaphore:3",
	"a:semaphore:3 junk",
	"\xff:semaphore:3",
}

func fdList(n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = strconv.Itoa(3 + i)
	}
	return strings.Join(s, ",")
}

func FuzzParseEnv(f *testing.F) {
	for _, s := range envSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		entries, err := parseEnv(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("parseEnv(%q) = %v, not ErrMalformed", s, err)
			}
			if entries != nil {
				t.Fatalf("parseEnv(%q) returned entries with an error", s)
			}
			return
		}
		seen := make(map[string]bool)
		for _, e := range entries {
			if !validName(e.name) {
				t.Fatalf("parseEnv(%q) accepted the name %q", s, e.name)
			}
			if seen[e.name] {
				t.Fatalf("parseEnv(%q) accepted the name %q twice", s, e.name)
			}
			seen[e.name] = true
			if e.kind == "" || strings.ContainsAny(e.kind, ":") {
				t.Fatalf("parseEnv(%q) accepted the kind %q", s, e.kind)
			}
			if len(e.fds) == 0 || len(e.fds) > 16 {
				t.Fatalf("parseEnv(%q) accepted %d descriptors", s, len(e.fds))
			}
			for _, fd := range e.fds {
				if fd < 0 {
					t.Fatalf("parseEnv(%q) accepted descriptor %d", s, fd)
				}
			}
		}
		formatted := formatEnv(entries)
		if canon := strings.Join(strings.Fields(s), " "); formatted != canon {
			t.Fatalf("formatEnv(parseEnv(%q)) = %q, want %q", s, formatted, canon)
		}
		again, err := parseEnv(formatted)
		if err != nil {
			t.Fatalf("parseEnv(%q) accepted, but not its formatEnv %q: %v", s, formatted, err)
		}
		if !slices.EqualFunc(entries, again, func(a, b entry) bool {
			return a.name == b.name && a.kind == b.kind && slices.Equal(a.fds, b.fds)
		}) {
			t.Fatalf("parseEnv(%q) = %v, but parseEnv(formatEnv) = %v", s, entries, again)
		}
	})
}

func TestParseEnvExamples(t *testing.T) {
	entries, err := parseEnv("jobs:semaphore:3 done:waitgroup:4,5,6")
	if err != nil {
		t.Fatal(err)
	}
	want := []entry{{"jobs", "semaphore", []int{3}}, {"done", "waitgroup", []int{4, 5, 6}}}
	if fmt.Sprint(entries) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", entries, want)
	}
	for _, bad := range []string{
		"a:b:", "a::3", "a:semaphore:03", "a:semaphore:-1", "a:semaphore:+1",
		"a:semaphore:99999999999999999999", "a:waitgroup:" + fdList(17),
		"é:semaphore:3", "a:semaphore:3 a:signal:4", "a:semaphore", "a:semaphore:3:4",
		strings.Repeat("n", 256) + ":semaphore:3",
	} {
		if _, err := parseEnv(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("parseEnv(%q) = %v, want ErrMalformed", bad, err)
		}
	}
	for _, good := range []string{"", "   ", "a:x:0", strings.Repeat("n", 255) + ":semaphore:3", "a:waitgroup:" + fdList(16)} {
		if _, err := parseEnv(good); err != nil {
			t.Errorf("parseEnv(%q) = %v", good, err)
		}
	}
}

// ---------------------------------------------------------------------------
// Inherited

// withoutInheritance hides what this process itself inherited, for the
// length of the test.
func withoutInheritance(t *testing.T) {
	startWith(t, "")
	inheritance.Lock()
	inheritance.ok = false
	inheritance.Unlock()
}

func TestInheritedUnset(t *testing.T) {
	withoutInheritance(t)
	done := noLeak(t)
	fds, err := inheritedFDs(uniqueName("unset"), kindSemaphore)
	if !errors.Is(err, ErrNotInherited) || fds != nil {
		t.Fatalf("Inherited with %s unset = %v, %v; want ErrNotInherited", EnvVar, fds, err)
	}
	done()
}

// TestInheritedFromStart checks that Inherited still finds what the process
// started with after init removed it from the environment.
func TestInheritedFromStart(t *testing.T) {
	raw := rawEventfd(t, 3, eventfd.Semaphore)
	name := uniqueName("start")
	startWith(t, name+":semaphore:"+strconv.Itoa(raw))

	fds, err := inheritedFDs(name, kindSemaphore)
	if err != nil {
		unix.Close(raw)
		t.Fatal(err)
	}
	defer closeFDs(t, fds)
	if v, err := fds[0].Value(); err != nil || v != 3 {
		t.Fatalf("Value = %d, %v; want 3", v, err)
	}
}

func TestInheritedSemaphore(t *testing.T) {
	raw := rawEventfd(t, 2, eventfd.Semaphore)
	if fdfl, fl := fdFlags(t, raw); fdfl&unix.FD_CLOEXEC != 0 || fl&unix.O_NONBLOCK != 0 {
		t.Fatalf("test setup: raw eventfd already has flags %#x, %#x", fdfl, fl)
	}
	name := uniqueName("sem")
	startWith(t, "other:signal:999 "+name+":semaphore:"+strconv.Itoa(raw))
	done := noLeak(t)
	fds, err := inheritedFDs(name, kindSemaphore)
	if err != nil {
		unix.Close(raw)
		t.Fatal(err)
	}
	done() // Inherited opens nothing: it takes the number it was given
	if len(fds) != 1 || fds[0].Sysfd() != raw || fds[0].Mode() != eventfd.Semaphore {
		t.Fatalf("Inherited = %+v, want one semaphore-mode FD on %d", fds, raw)
	}
	wantCloexecNonblock(t, raw)
	fd := fds[0]
	for i := range 2 {
		if v, err := fd.Read(); err != nil || v != 1 {
			t.Fatalf("Read %d = %d, %v; want 1", i, v, err)
		}
	}
	if v, err := fd.Read(); err != nil || v != 0 {
		t.Fatalf("Read of an empty semaphore = %d, %v; want 0 (no blocking)", v, err)
	}
	if err := fd.Write(5); err != nil {
		t.Fatal(err)
	}
	if v, err := fd.Value(); err != nil || v != 5 {
		t.Fatalf("Value = %d, %v; want 5", v, err)
	}

	// Taken once only, whether or not it is still open.
	if again, err := inheritedFDs(name, kindSemaphore); !errors.Is(err, ErrTaken) {
		t.Errorf("second Inherited = %v, %v; want ErrTaken", again, err)
	}
	if err := fd.Close(); err != nil {
		t.Fatal(err)
	}
	if isOpen(raw) {
		t.Errorf("descriptor %d still open after Close", raw)
	}
	if again, err := inheritedFDs(name, kindSemaphore); !errors.Is(err, ErrTaken) {
		t.Errorf("Inherited after Close = %v, %v; want ErrTaken", again, err)
	}
}

func TestInheritedSignalAndWaitGroup(t *testing.T) {
	sig := rawEventfd(t, 4, eventfd.Counter)
	w := []int{rawEventfd(t, 1, eventfd.Semaphore), rawEventfd(t, 0, eventfd.Counter), rawEventfd(t, 0, eventfd.Semaphore)}
	sname, wname := uniqueName("sig"), uniqueName("wg")
	startWith(t, fmt.Sprintf("%s:signal:%d %s:waitgroup:%d,%d,%d", sname, sig, wname, w[0], w[1], w[2]))

	sfds, err := inheritedFDs(sname, kindSignal)
	if err != nil {
		unix.Close(sig)
		t.Fatal(err)
	}
	defer closeFDs(t, sfds)
	wantCloexecNonblock(t, sig)
	sfds[0].Write(3)
	if v, err := sfds[0].Read(); err != nil || v != 7 {
		t.Fatalf("signal Read = %d, %v; want 7", v, err)
	}

	wfds, err := inheritedFDs(wname, kindWaitGroup)
	if err != nil {
		for _, fd := range w {
			unix.Close(fd)
		}
		t.Fatal(err)
	}
	defer closeFDs(t, wfds)
	for i, fd := range wfds {
		if fd.Sysfd() != w[i] || fd.Mode() != kindWaitGroup.Modes[i] {
			t.Errorf("waitgroup fd %d = %d in %v mode, want %d in %v", i, fd.Sysfd(), fd.Mode(), w[i], kindWaitGroup.Modes[i])
		}
		wantCloexecNonblock(t, w[i])
	}
	if v, err := wfds[0].Value(); err != nil || v != 1 {
		t.Errorf("waitgroup counter = %d, %v; want 1", v, err)
	}
}

// TestInheritedErrors: every wrong input is a clear error, never a panic,
// opens nothing, and leaves the name free to be taken later.
func TestInheritedErrors(t *testing.T) {
	sem := rawEventfd(t, 0, eventfd.Semaphore)
	sem2 := rawEventfd(t, 0, eventfd.Semaphore)
	sem3 := rawEventfd(t, 0, eventfd.Semaphore)
	ctr := rawEventfd(t, 0, eventfd.Counter)
	closeRaw(t, sem, sem2, sem3, ctr)
	pr, _ := rawPipe(t)
	const notOpen = 1 << 29 // above any descriptor this process has

	type tc struct {
		name string
		env  string // %[1]s stands for the name asked for
		kind Kind
		want []error // any of these
	}
	d := strconv.Itoa
	cases := []tc{
		{"unknown name", "other-%[1]s:semaphore:" + d(sem), kindSemaphore, []error{ErrNotInherited}},
		{"empty variable", "", kindSemaphore, []error{ErrNotInherited}},
		{"spaces only", "   ", kindSemaphore, []error{ErrNotInherited}},
		{"wrong kind", "%[1]s:signal:" + d(ctr), kindSemaphore, []error{ErrWrongKind}},
		{"unknown kind", "%[1]s:mutex:" + d(sem), kindSemaphore, []error{ErrWrongKind}},
		{"waitgroup asked as semaphore", "%[1]s:waitgroup:" + d(sem) + "," + d(ctr) + "," + d(sem2), kindSemaphore, []error{ErrWrongKind}},
		{"not open", "%[1]s:semaphore:" + d(notOpen), kindSemaphore, []error{os.ErrClosed}},
		{"not open in a waitgroup", "%[1]s:waitgroup:" + d(sem) + "," + d(ctr) + "," + d(notOpen), kindWaitGroup, []error{os.ErrClosed}},
		{"pipe", "%[1]s:semaphore:" + d(pr), kindSemaphore, []error{eventfd.ErrNotEventfd}},
		{"stdin", "%[1]s:signal:0", kindSignal, []error{eventfd.ErrNotEventfd, os.ErrClosed}},
		{"counter mode as semaphore", "%[1]s:semaphore:" + d(ctr), kindSemaphore, []error{eventfd.ErrWrongMode}},
		{"semaphore mode as signal", "%[1]s:signal:" + d(sem), kindSignal, []error{eventfd.ErrWrongMode}},
		{"waitgroup modes wrong", "%[1]s:waitgroup:" + d(sem) + "," + d(sem2) + "," + d(sem3), kindWaitGroup, []error{eventfd.ErrWrongMode}},
		{"two for a semaphore", "%[1]s:semaphore:" + d(sem) + "," + d(sem2), kindSemaphore, []error{ErrMalformed}},
		{"one for a waitgroup", "%[1]s:waitgroup:" + d(sem), kindWaitGroup, []error{ErrMalformed}},
		{"missing fds", "%[1]s:semaphore", kindSemaphore, []error{ErrMalformed}},
		{"empty fds", "%[1]s:semaphore:", kindSemaphore, []error{ErrMalformed}},
		{"missing kind", "%[1]s::" + d(sem), kindSemaphore, []error{ErrMalformed}},
		{"too many fields", "%[1]s:semaphore:" + d(sem) + ":1", kindSemaphore, []error{ErrMalformed}},
		{"bad number", "%[1]s:semaphore:x", kindSemaphore, []error{ErrMalformed}},
		{"leading zero", "%[1]s:semaphore:0" + d(sem), kindSemaphore, []error{ErrMalformed}},
		{"negative", "%[1]s:semaphore:-1", kindSemaphore, []error{ErrMalformed}},
		{"huge", "%[1]s:semaphore:99999999999999999999", kindSemaphore, []error{ErrMalformed}},
		{"bad name elsewhere", "b@d:semaphore:9 %[1]s:semaphore:" + d(sem), kindSemaphore, []error{ErrMalformed}},
		{"junk elsewhere", "%[1]s:semaphore:" + d(sem) + " junk", kindSemaphore, []error{ErrMalformed}},
		{"name twice", "%[1]s:semaphore:" + d(sem) + " %[1]s:semaphore:" + d(sem2), kindSemaphore, []error{ErrMalformed}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			testutil.SkipUnlessModeShown(t, slices.Contains(c.want, eventfd.ErrWrongMode))
			name := uniqueName("err")
			startWith(t, strings.ReplaceAll(c.env, "%[1]s", name))
			done := noLeak(t)
			fds, err := inheritedFDs(name, c.kind)
			if err == nil {
				closeFDs(t, fds) // it took the descriptors; the cleanup will complain
				t.Fatalf("Inherited(%q) with %s=%q succeeded", name, EnvVar, os.Getenv(EnvVar))
			}
			if fds != nil {
				t.Errorf("Inherited returned descriptors with the error %v", err)
			}
			if !slices.ContainsFunc(c.want, func(w error) bool { return errors.Is(err, w) }) {
				t.Errorf("Inherited with %s=%q = %v; want one of %v", EnvVar, os.Getenv(EnvVar), err, c.want)
			}
			done()
		})
	}
	for _, fd := range []int{sem, sem2, sem3, ctr, pr} {
		if !isOpen(fd) {
			t.Errorf("descriptor %d was closed by a failed Inherited", fd)
		}
	}
}

// TestInheritedFailureLeavesNameFree: a failed Inherited does not take the
// name; once the entry is right, it succeeds.
func TestInheritedFailureLeavesNameFree(t *testing.T) {
	ctr := rawEventfd(t, 0, eventfd.Counter)
	closeRaw(t, ctr)
	sem := rawEventfd(t, 0, eventfd.Semaphore)
	testutil.SkipUnlessModeShown(t, true)
	name := uniqueName("retry")
	startWith(t, name+":semaphore:"+strconv.Itoa(ctr))
	if _, err := inheritedFDs(name, kindSemaphore); !errors.Is(err, eventfd.ErrWrongMode) {
		t.Fatalf("Inherited = %v, want eventfd.ErrWrongMode", err)
	}
	startWith(t, name+":semaphore:"+strconv.Itoa(sem))
	fds, err := inheritedFDs(name, kindSemaphore)
	if err != nil {
		unix.Close(sem)
		t.Fatalf("Inherited after a failure = %v", err)
	}
	closeFDs(t, fds)
}

// TestInheritedDescriptorAboveInt32: descriptor numbers are 32-bit in the
// kernel. A number above that is not an open descriptor, and must be
// reported as one (or as malformed), not be taken for the number its low 32
// bits make.
func TestInheritedDescriptorAboveInt32(t *testing.T) {
	sem := rawEventfd(t, 0, eventfd.Semaphore)
	closeRaw(t, sem)
	name := uniqueName("wide")
	startWith(t, name+":semaphore:"+strconv.Itoa(1<<32+sem))
	done := noLeak(t)
	_, err := inheritedFDs(name, kindSemaphore)
	if err == nil {
		t.Fatalf("Inherited took descriptor %d", 1<<32+sem)
	}
	if !errors.Is(err, os.ErrClosed) && !errors.Is(err, ErrMalformed) {
		t.Errorf("Inherited = %v; want os.ErrClosed or ErrMalformed", err)
	}
	done()
}

// TestInheritedSameDescriptorTwice: an entry that names one descriptor
// number twice, or two entries that share one, would give two FDs the same
// number; closing both closes whatever the kernel gave that number in
// between. PassTo never writes that, so it is malformed.
func TestInheritedSameDescriptorTwice(t *testing.T) {
	t.Run("two names", func(t *testing.T) {
		sem := rawEventfd(t, 0, eventfd.Semaphore)
		a, b := uniqueName("twice-a"), uniqueName("twice-b")
		startWith(t, fmt.Sprintf("%s:semaphore:%d %s:semaphore:%d", a, sem, b, sem))
		fa, errA := inheritedFDs(a, kindSemaphore)
		fb, errB := inheritedFDs(b, kindSemaphore)
		owned := false
		for _, fds := range [][]*eventfd.FD{fa, fb} {
			for _, fd := range fds {
				if owned {
					continue // do not close the number twice
				}
				owned = true
				t.Cleanup(func() { fd.Close() })
			}
		}
		if !owned {
			unix.Close(sem)
		}
		if errA == nil && errB == nil {
			t.Errorf("descriptor %d taken under two names", sem)
		}
	})
	t.Run("one entry", func(t *testing.T) {
		s := rawEventfd(t, 0, eventfd.Semaphore)
		c := rawEventfd(t, 0, eventfd.Counter)
		name := uniqueName("twice-wg")
		startWith(t, fmt.Sprintf("%s:waitgroup:%d,%d,%d", name, s, c, s))
		fds, err := inheritedFDs(name, kindWaitGroup)
		if err != nil {
			unix.Close(s)
			unix.Close(c)
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("Inherited = %v, want ErrMalformed", err)
			}
			return
		}
		closeFDs(t, fds[:2])
		t.Errorf("descriptor %d taken twice in one waitgroup", s)
	})
}

// ---------------------------------------------------------------------------
// PassTo

func closeExtraFiles(t *testing.T, cmd *exec.Cmd) {
	t.Cleanup(func() {
		for _, f := range cmd.ExtraFiles {
			if f != nil {
				f.Close()
			}
		}
	})
}

// testBinary returns a command that runs no test and exits.
func testBinary() *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{}
	return cmd
}

func TestPassToRefuses(t *testing.T) {
	fds := newFDs(t, eventfd.Semaphore)
	closed := newFDs(t, eventfd.Semaphore, eventfd.Counter, eventfd.Semaphore)
	closed[2].Close()
	done := noLeak(t)
	if err := PassTo(nil, "jobs", kindSemaphore, ex(fds)...); err == nil {
		t.Error("PassTo(nil) succeeded")
	}
	for _, name := range []string{"", "a b", "a:b", "a,b", "é", "a\x00", strings.Repeat("n", 256)} {
		cmd := exec.Command("true")
		cmd.Env = []string{"A=1"}
		if err := PassTo(cmd, name, kindSemaphore, ex(fds)...); !errors.Is(err, os.ErrInvalid) {
			t.Errorf("PassTo(name %q) = %v, want os.ErrInvalid", name, err)
		}
		if len(cmd.ExtraFiles) != 0 || !slices.Equal(cmd.Env, []string{"A=1"}) {
			t.Errorf("PassTo(name %q) changed the command: %v %v", name, cmd.ExtraFiles, cmd.Env)
		}
	}
	cmd := exec.Command("true")
	if err := PassTo(cmd, "wg", kindWaitGroup, ex(closed)...); !errors.Is(err, os.ErrClosed) {
		t.Errorf("PassTo of a closed FD = %v, want os.ErrClosed", err)
	}
	if len(cmd.ExtraFiles) != 0 || cmd.Env != nil {
		t.Errorf("failed PassTo changed the command: %v %v", cmd.ExtraFiles, cmd.Env)
	}
	done()
}

func TestPassToStarted(t *testing.T) {
	fds := newFDs(t, eventfd.Semaphore)
	cmd := testBinary()
	closeExtraFiles(t, cmd)
	if err := PassTo(cmd, "jobs", kindSemaphore, ex(fds)...); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	err := PassTo(cmd, "more", kindSemaphore, ex(fds)...)
	if werr := cmd.Wait(); werr != nil {
		t.Errorf("child: %v", werr)
	}
	if err == nil {
		t.Error("PassTo on a started command succeeded")
	}
	if len(cmd.ExtraFiles) != 1 {
		t.Errorf("PassTo on a started command changed ExtraFiles: %v", cmd.ExtraFiles)
	}
	// exec calls Fd() on the ExtraFiles: the shared description must stay
	// non-blocking (golang/go#43894).
	wantCloexecNonblock(t, fds[0].Sysfd())
}

func TestPassToSeveral(t *testing.T) {
	sem := newFDs(t, eventfd.Semaphore)
	sig := newFDs(t, eventfd.Counter)
	wg := newFDs(t, eventfd.Semaphore, eventfd.Counter, eventfd.Semaphore)
	cmd := exec.Command("true")
	cmd.Env = []string{"A=1", "B=2"}
	closeExtraFiles(t, cmd)
	steps := []struct {
		name string
		kind Kind
		fds  []*eventfd.FD
		want string
	}{
		{"jobs", kindSemaphore, sem, "jobs:semaphore:3"},
		{"ready", kindSignal, sig, "jobs:semaphore:3 ready:signal:4"},
		{"done", kindWaitGroup, wg, "jobs:semaphore:3 ready:signal:4 done:waitgroup:5,6,7"},
	}
	for _, s := range steps {
		if err := PassTo(cmd, s.name, s.kind, ex(s.fds)...); err != nil {
			t.Fatalf("PassTo(%s): %v", s.name, err)
		}
		if want := []string{"A=1", "B=2", EnvVar + "=" + s.want}; !slices.Equal(cmd.Env, want) {
			t.Fatalf("after PassTo(%s), Env = %q, want %q", s.name, cmd.Env, want)
		}
	}
	if len(cmd.ExtraFiles) != 5 {
		t.Fatalf("ExtraFiles has %d files, want 5", len(cmd.ExtraFiles))
	}
	all := append(append(slices.Clone(sem), sig...), wg...)
	for i, f := range cmd.ExtraFiles {
		fdExtraSame(t, f, all[i])
	}

	// A name passed twice is an error, and changes nothing.
	env := slices.Clone(cmd.Env)
	done := noLeak(t)
	if err := PassTo(cmd, "ready", kindSignal, ex(sig)...); err == nil {
		t.Error("PassTo of a name already passed succeeded")
	}
	if err := PassTo(cmd, "ready", kindSemaphore, ex(sem)...); err == nil {
		t.Error("PassTo of a name already passed, as another kind, succeeded")
	}
	done()
	if len(cmd.ExtraFiles) != 5 || !slices.Equal(cmd.Env, env) {
		t.Errorf("failed PassTo changed the command: %d files, Env %q", len(cmd.ExtraFiles), cmd.Env)
	}
}

// fdExtraSame checks that f, a file PassTo put in ExtraFiles, is a
// close-on-exec, non-blocking duplicate of fd (without calling f.Fd, which
// may change the flags).
func fdExtraSame(t *testing.T, f *os.File, fd *eventfd.FD) {
	t.Helper()
	raw, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var num int
	raw.Control(func(u uintptr) { num = int(u) })
	if num == fd.Sysfd() {
		t.Fatalf("ExtraFiles holds the FD's own descriptor %d, not a duplicate", num)
	}
	wantCloexecNonblock(t, num)
	dup, err := eventfd.Adopt(f, fd.Mode())
	if err != nil {
		t.Fatal(err)
	}
	defer dup.Close()
	roundTrip(t, dup, fd)
}

func TestPassToAfterExtraFiles(t *testing.T) {
	_, w := rawPipe(t)
	user := os.NewFile(uintptr(mustDup(t, w)), "user")
	cmd := exec.Command("true")
	cmd.Env = []string{"A=1", EnvVar + "=old:semaphore:3"}
	cmd.ExtraFiles = []*os.File{user, nil}
	closeExtraFiles(t, cmd)
	sem := newFDs(t, eventfd.Semaphore)
	wg := newFDs(t, eventfd.Semaphore, eventfd.Counter, eventfd.Semaphore)
	if err := PassTo(cmd, "jobs", kindSemaphore, ex(sem)...); err != nil {
		t.Fatal(err)
	}
	if err := PassTo(cmd, "done", kindWaitGroup, ex(wg)...); err != nil {
		t.Fatal(err)
	}
	want := []string{"A=1", EnvVar + "=jobs:semaphore:5 done:waitgroup:6,7,8"}
	if !slices.Equal(cmd.Env, want) {
		t.Fatalf("Env = %q, want %q", cmd.Env, want)
	}
	if len(cmd.ExtraFiles) != 6 || cmd.ExtraFiles[0] != user || cmd.ExtraFiles[1] != nil {
		t.Fatalf("ExtraFiles = %v", cmd.ExtraFiles)
	}
	for i, fd := range append(slices.Clone(sem), wg...) {
		fdExtraSame(t, cmd.ExtraFiles[2+i], fd)
	}
}

func mustDup(t *testing.T, fd int) int {
	t.Helper()
	d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestPassToOneFDSeveralCommands(t *testing.T) {
	sem := newFDs(t, eventfd.Semaphore)
	var cmds []*exec.Cmd
	for i := range 3 {
		cmd := exec.Command("true")
		cmd.Env = []string{}
		closeExtraFiles(t, cmd)
		if err := PassTo(cmd, "jobs", kindSemaphore, ex(sem)...); err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
		if want := []string{EnvVar + "=jobs:semaphore:3"}; !slices.Equal(cmd.Env, want) {
			t.Fatalf("command %d: Env = %q, want %q", i, cmd.Env, want)
		}
		cmds = append(cmds, cmd)
	}
	for i, cmd := range cmds {
		if len(cmd.ExtraFiles) != 1 {
			t.Fatalf("command %d: %d ExtraFiles", i, len(cmd.ExtraFiles))
		}
		for j := range i {
			if cmd.ExtraFiles[0] == cmds[j].ExtraFiles[0] {
				t.Fatalf("commands %d and %d share one *os.File", i, j)
			}
		}
		fdExtraSame(t, cmd.ExtraFiles[0], sem[0])
	}
}

func TestPassToEnviron(t *testing.T) {
	t.Setenv("EVENTSYNC_TEST_MARK", "here")
	startWith(t, "old:semaphore:3 older:signal:4") // as a process's own inheritance would be
	sem := newFDs(t, eventfd.Semaphore)
	cmd := exec.Command("true")
	closeExtraFiles(t, cmd)
	if err := PassTo(cmd, "jobs", kindSemaphore, ex(sem)...); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EnvVar+"=") {
			want = append(want, kv)
		}
	}
	want = append(want, EnvVar+"=jobs:semaphore:3")
	if !slices.Equal(cmd.Env, want) {
		t.Fatalf("Env = %q,\nwant %q", cmd.Env, want)
	}
	if !slices.Contains(cmd.Env, "EVENTSYNC_TEST_MARK=here") {
		t.Error("Env did not start from os.Environ()")
	}
}

func TestPassToDropsStale(t *testing.T) {
	for _, stale := range []string{
		"old:semaphore:3",
		"old:waitgroup:3,4,5",
		"jobs:semaphore:3", // even under the name about to be passed
		"garbage",
		"",
	} {
		t.Run(stale, func(t *testing.T) {
			sem := newFDs(t, eventfd.Semaphore)
			cmd := exec.Command("true")
			cmd.Env = []string{"A=1", EnvVar + "=" + stale, "B=2", EnvVar + "=old2:signal:4"}
			closeExtraFiles(t, cmd)
			if err := PassTo(cmd, "jobs", kindSemaphore, ex(sem)...); err != nil {
				t.Fatal(err)
			}
			want := []string{"A=1", "B=2", EnvVar + "=jobs:semaphore:3"}
			if !slices.Equal(cmd.Env, want) {
				t.Fatalf("Env = %q, want %q", cmd.Env, want)
			}
		})
	}

	// An Env copied from another command, without its files, is stale too.
	sem := newFDs(t, eventfd.Semaphore)
	sig := newFDs(t, eventfd.Counter)
	first := exec.Command("true")
	first.Env = []string{}
	closeExtraFiles(t, first)
	if err := PassTo(first, "jobs", kindSemaphore, ex(sem)...); err != nil {
		t.Fatal(err)
	}
	second := exec.Command("true")
	second.Env = slices.Clone(first.Env)
	closeExtraFiles(t, second)
	if err := PassTo(second, "ready", kindSignal, ex(sig)...); err != nil {
		t.Fatal(err)
	}
	if want := []string{EnvVar + "=ready:signal:3"}; !slices.Equal(second.Env, want) {
		t.Fatalf("Env = %q, want %q", second.Env, want)
	}
	// ... unless its files came along.
	third := exec.Command("true")
	third.Env = slices.Clone(first.Env)
	third.ExtraFiles = slices.Clone(first.ExtraFiles) // closed through first
	if err := PassTo(third, "ready", kindSignal, ex(sig)...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { third.ExtraFiles[1].Close() })
	if want := []string{EnvVar + "=jobs:semaphore:3 ready:signal:4"}; !slices.Equal(third.Env, want) {
		t.Fatalf("Env = %q, want %q", third.Env, want)
	}
}

// TestPassToWrongCount: PassTo must never write an entry that parseEnv
// rejects, or every primitive passed to that command is lost with it.
func TestPassToWrongCount(t *testing.T) {
	sem := newFDs(t, eventfd.Semaphore)
	for _, c := range []struct {
		kind Kind
		fds  []*eventfd.FD
	}{{kindSemaphore, nil}, {kindWaitGroup, sem}} {
		cmd := exec.Command("true")
		cmd.Env = []string{}
		closeExtraFiles(t, cmd)
		if err := PassTo(cmd, "jobs", kindSemaphore, ex(sem)...); err != nil {
			t.Fatal(err)
		}
		if err := PassTo(cmd, "bad", c.kind, ex(c.fds)...); err == nil {
			t.Errorf("PassTo of %d descriptors as a %s succeeded: Env %q", len(c.fds), c.kind.Name, cmd.Env)
		}
		v, _ := strings.CutPrefix(cmd.Env[len(cmd.Env)-1], EnvVar+"=")
		if _, err := parseEnv(v); err != nil {
			t.Errorf("PassTo wrote %q, which parseEnv rejects: %v", v, err)
		}
	}
}

// ---------------------------------------------------------------------------
// Send and Receive

func socketPair(t *testing.T, typ int) (a, b *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "socketpair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}

var sockTypes = []struct {
	name string
	typ  int
}{{"stream", unix.SOCK_STREAM}, {"seqpacket", unix.SOCK_SEQPACKET}}

func forSockTypes(t *testing.T, f func(t *testing.T, a, b *net.UnixConn)) {
	for _, st := range sockTypes {
		t.Run(st.name, func(t *testing.T) {
			a, b := socketPair(t, st.typ)
			f(t, a, b)
		})
	}
}

func header(kind Kind, n int) []byte {
	return []byte{magic[0], magic[1], magic[2], magic[3], 1, kind.ID, byte(n), 0}
}

// receiveFails checks that Receive fails with one of want and that every
// descriptor that arrived was closed.
func receiveFails(t *testing.T, b *net.UnixConn, kind Kind, want ...error) {
	t.Helper()
	done := noLeak(t)
	fds, err := receiveFDs(b, kind)
	if err == nil {
		closeFDs(t, fds)
		t.Fatalf("Receive succeeded with %d descriptors", len(fds))
	}
	if fds != nil {
		t.Errorf("Receive returned descriptors with the error %v", err)
	}
	if !slices.ContainsFunc(want, func(w error) bool { return errors.Is(err, w) }) {
		t.Errorf("Receive = %v, want one of %v", err, want)
	}
	done()
}

func TestSendReceiveSemaphore(t *testing.T) {
	forSockTypes(t, func(t *testing.T, a, b *net.UnixConn) {
		sem := newFDs(t, eventfd.Semaphore)
		done := noLeak(t)
		if err := Send(a, kindSemaphore, ex(sem)...); err != nil {
			t.Fatal(err)
		}
		got, err := receiveFDs(b, kindSemaphore)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Mode() != eventfd.Semaphore || got[0].Sysfd() == sem[0].Sysfd() {
			t.Fatalf("Receive = %+v", got)
		}
		wantCloexecNonblock(t, got[0].Sysfd())
		if v, err := got[0].Value(); err != nil || v != 10 {
			t.Errorf("received counter = %d, %v; want 10", v, err)
		}
		roundTrip(t, sem[0], got[0])
		roundTrip(t, got[0], sem[0])
		closeFDs(t, got)
		done() // Send closed its duplicates
	})
}

func TestSendReceiveWaitGroup(t *testing.T) {
	forSockTypes(t, func(t *testing.T, a, b *net.UnixConn) {
		wg := newFDs(t, kindWaitGroup.Modes...)
		done := noLeak(t)
		if err := Send(a, kindWaitGroup, ex(wg)...); err != nil {
			t.Fatal(err)
		}
		got, err := receiveFDs(b, kindWaitGroup)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 {
			t.Fatalf("received %d descriptors", len(got))
		}
		for i := range got {
			if got[i].Mode() != kindWaitGroup.Modes[i] {
				t.Errorf("descriptor %d in %v mode", i, got[i].Mode())
			}
			wantCloexecNonblock(t, got[i].Sysfd())
			if v, err := got[i].Value(); err != nil || v != uint64(10*(i+1)) {
				t.Errorf("descriptor %d: counter %d, %v; want %d (order kept)", i, v, err, 10*(i+1))
			}
			roundTrip(t, wg[i], got[i])
		}
		closeFDs(t, got)
		done()
	})
}

func TestReceiveWrongKind(t *testing.T) {
	forSockTypes(t, func(t *testing.T, a, b *net.UnixConn) {
		sig := newFDs(t, eventfd.Counter)
		if err := Send(a, kindSignal, ex(sig)...); err != nil {
			t.Fatal(err)
		}
		receiveFails(t, b, kindSemaphore, ErrWrongKind)
	})
}

func TestReceiveForeign(t *testing.T) {
	for _, st := range sockTypes {
		t.Run(st.name, func(t *testing.T) {
			pr, _ := rawPipe(t)
			sem := newFDs(t, eventfd.Semaphore)
			ctr := newFDs(t, eventfd.Counter)
			cases := []struct {
				name string
				data []byte
				fds  []int
				want []error
			}{
				{"hello", []byte("hello"), nil, []error{ErrMalformed}},
				{"hello with a pipe", []byte("hello"), []int{pr}, []error{ErrMalformed, eventfd.ErrNotEventfd}},
				{"header with a pipe", header(kindSemaphore, 1), []int{pr}, []error{eventfd.ErrNotEventfd}},
				{"header without descriptors", header(kindSemaphore, 1), nil, []error{ErrMalformed}},
				{"header counting 2", header(kindSemaphore, 2), []int{sem[0].Sysfd()}, []error{ErrMalformed}},
				{"two descriptors for a semaphore", header(kindSemaphore, 1), []int{sem[0].Sysfd(), sem[0].Sysfd()}, []error{ErrMalformed}},
				{"counter mode as semaphore", header(kindSemaphore, 1), []int{ctr[0].Sysfd()}, []error{eventfd.ErrWrongMode}},
				{"unknown kind", append(header(kindSemaphore, 1)[:5:5], 9, 1, 0), []int{sem[0].Sysfd()}, []error{ErrWrongKind}},
				{"bad version", append(header(kindSemaphore, 1)[:4:4], 2, 1, 1, 0), []int{sem[0].Sysfd()}, []error{ErrMalformed}},
				{"bad magic", append([]byte("EVSY"), header(kindSemaphore, 1)[4:]...), []int{sem[0].Sysfd()}, []error{ErrMalformed}},
				{"truncated header", []byte("evs"), nil, []error{ErrMalformed}},
				{"truncated header with a descriptor", header(kindSemaphore, 1)[:3], []int{sem[0].Sysfd()}, []error{ErrMalformed}},
				{"six descriptors", header(kindWaitGroup, 6), slices.Repeat([]int{sem[0].Sysfd()}, 6), []error{ErrMalformed}},
				{"six pipes", []byte("hello"), slices.Repeat([]int{pr}, 6), []error{ErrMalformed}},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					testutil.SkipUnlessModeShown(t, slices.Contains(c.want, eventfd.ErrWrongMode))
					a, b := socketPair(t, st.typ)
					var oob []byte
					if len(c.fds) > 0 {
						oob = unix.UnixRights(c.fds...)
					}
					if _, _, err := a.WriteMsgUnix(c.data, oob, nil); err != nil {
						t.Fatal(err)
					}
					receiveFails(t, b, kindSemaphore, c.want...)
				})
			}
		})
	}
}

// TestReceiveTrailingBytes: on a socket that keeps message boundaries, a
// message longer than Send's header is not one Send wrote.
func TestReceiveTrailingBytes(t *testing.T) {
	a, b := socketPair(t, unix.SOCK_SEQPACKET)
	sem := newFDs(t, eventfd.Semaphore)
	msg := append(header(kindSemaphore, 1), "and more"...)
	if _, _, err := a.WriteMsgUnix(msg, unix.UnixRights(sem[0].Sysfd()), nil); err != nil {
		t.Fatal(err)
	}
	receiveFails(t, b, kindSemaphore, ErrMalformed)
}

func TestSendReceiveClosedAndNil(t *testing.T) {
	sem := newFDs(t, eventfd.Semaphore)
	a, b := socketPair(t, unix.SOCK_STREAM)
	done := noLeak(t)
	if err := Send(nil, kindSemaphore, ex(sem)...); err == nil {
		t.Error("Send(nil) succeeded")
	}
	if fds, err := receiveFDs(nil, kindSemaphore); err == nil || fds != nil {
		t.Errorf("receiveFDs(nil) = %v, %v", fds, err)
	}
	closed := newFDs(t, eventfd.Semaphore)
	closed[0].Close()
	if err := Send(a, kindWaitGroup, sem[0], sem[0], closed[0]); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Send of a closed FD = %v, want os.ErrClosed", err)
	}
	done()
	a.Close()
	b.Close()
	done = noLeak(t)
	if err := Send(a, kindSemaphore, ex(sem)...); err == nil {
		t.Error("Send on a closed conn succeeded")
	}
	if fds, err := receiveFDs(b, kindSemaphore); err == nil || fds != nil {
		t.Errorf("Receive on a closed conn = %v, %v", fds, err)
	}
	done()

	// The peer gone: end of stream is an error too.
	a, b = socketPair(t, unix.SOCK_STREAM)
	a.Close()
	if fds, err := receiveFDs(b, kindSemaphore); err == nil || fds != nil {
		t.Errorf("Receive after the peer closed = %v, %v", fds, err)
	}
}

// Kinds of one to three eventfds, named as the public packages name theirs,
// and a waitgroup with its optional fourth, the share token.
var (
	kindSemaphore      = Kind{"semaphore", "Semaphore", 1, []eventfd.Mode{eventfd.Semaphore}, false, 0}
	kindSignal         = Kind{"signal", "Signal", 2, []eventfd.Mode{eventfd.Counter}, false, 0}
	kindWaitGroup      = Kind{"waitgroup", "WaitGroup", 3, []eventfd.Mode{eventfd.Semaphore, eventfd.Counter, eventfd.Semaphore}, false, 0}
	kindWaitGroupToken = Kind{"waitgroup", "WaitGroup", 3, []eventfd.Mode{eventfd.Semaphore, eventfd.Counter, eventfd.Semaphore, eventfd.Semaphore}, false, 1}
)

// startWith makes v this process's inheritance, as if it had started with
// EVENTSYNC_FDS=v, for the length of the test.
func startWith(t *testing.T, v string) {
	t.Helper()
	inheritance.Lock()
	saved := struct {
		value         string
		ok            bool
		open, claimed map[int]bool
		taken         map[string]bool
	}{inheritance.value, inheritance.ok, inheritance.open, inheritance.claimed, inheritance.taken}
	// A new start: no descriptor is claimed yet. Names stay taken, as the
	// tests use each name once.
	inheritance.claimed = nil
	inheritance.Unlock()
	t.Cleanup(func() {
		inheritance.Lock()
		inheritance.value, inheritance.ok, inheritance.open = saved.value, saved.ok, saved.open
		inheritance.claimed = saved.claimed
		inheritance.Unlock()
	})
	start(v)
}

// PassTo and Send hand a descriptor out, so its reads switch to RWF_NOWAIT.
func TestSharingMarksShared(t *testing.T) {
	fd := newFDs(t, eventfd.Semaphore)
	cmd := exec.Command("true")
	if err := PassTo(cmd, "x", kindSemaphore, ex(fd)...); err != nil {
		t.Fatal(err)
	}
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}
	if !fd[0].Shared() {
		t.Fatal("PassTo did not mark the FD shared")
	}
	fd = newFDs(t, eventfd.Semaphore)
	mine, _ := testutil.SocketPair(t)
	if err := Send(mine, kindSemaphore, ex(fd)...); err != nil {
		t.Fatal(err)
	}
	if !fd[0].Shared() {
		t.Fatal("Send did not mark the FD shared")
	}
}

// inheritedFDs is Inherited for kinds without a record.
func inheritedFDs(name string, k Kind) ([]*eventfd.FD, error) {
	p, err := Inherited(name, k)
	return p.FDs, err
}

// receiveFDs is Receive for kinds without a record.
func receiveFDs(conn syscall.Conn, k Kind) ([]*eventfd.FD, error) {
	p, err := Receive(conn, k)
	return p.FDs, err
}

// ex lists fds as the Exporters PassTo and Send take.
func ex(fds []*eventfd.FD) []Exporter {
	out := make([]Exporter, len(fds))
	for i, fd := range fds {
		out[i] = fd
	}
	return out
}
