//go:build linux

package eventfd

import (
	"errors"
	"strconv"
	"testing"

	"github.com/eventsync/eventsync/internal/kernel"
	"github.com/eventsync/eventsync/internal/testutil"
	"golang.org/x/sys/unix"
)

// fdinfo as kernels of each era print it for an eventfd holding 5 (EFD_CLOEXEC
// | EFD_NONBLOCK, so flags 02004002): 3.8 brought eventfd-count, 5.2
// eventfd-id, 6.5 eventfd-semaphore; later kernels add an ino line to every
// fdinfo.
var fdinfoFixtures = []struct {
	kernel   string
	info     string
	id       bool
	modeLine bool
	mode     Mode
}{
	{"4.18", "pos:\t0\nflags:\t02004002\nmnt_id:\t15\neventfd-count:                5\n", false, false, 0},
	{"5.4", "pos:\t0\nflags:\t02004002\nmnt_id:\t15\neventfd-count:                5\neventfd-id: 3\n", true, false, 0},
	{"5.10", "pos:\t0\nflags:\t02004002\nmnt_id:\t15\neventfd-count:                5\neventfd-id: 3\n", true, false, 0},
	{"6.1", "pos:\t0\nflags:\t02004002\nmnt_id:\t15\nino:\t1057\neventfd-count:                5\neventfd-id: 3\n", true, false, 0},
	{"6.5 semaphore", "pos:\t0\nflags:\t02004002\nmnt_id:\t15\nino:\t1057\neventfd-count:                5\neventfd-id: 3\neventfd-semaphore: 1\n", true, true, Semaphore},
	{"6.5 counter", "pos:\t0\nflags:\t02004002\nmnt_id:\t15\nino:\t1057\neventfd-count:                5\neventfd-id: 12\neventfd-semaphore: 0\n", true, true, Counter},
	{"no trailing newline", "pos:\t0\nflags:\t02004002\nmnt_id:\t15\neventfd-count:                5", false, false, 0},
}

// The fdinfo parser reads what every supported kernel prints.
func TestFdinfoFixtures(t *testing.T) {
	for _, f := range fdinfoFixtures {
		t.Run(f.kernel, func(t *testing.T) {
			info := []byte(f.info)
			v, ok := field(info, "eventfd-count:")
			if !ok {
				t.Fatal("no eventfd-count")
			}
			// As sysCount parses it: hexadecimal.
			if n, err := strconv.ParseUint(string(v), 16, 64); err != nil || n != 5 {
				t.Errorf("eventfd-count %q = %d, %v; want 5", v, n, err)
			}
			if _, ok := field(info, "eventfd-id:"); ok != f.id {
				t.Errorf("eventfd-id present = %v, want %v", ok, f.id)
			}
			if got := kernel.HasModeLine(info); got != f.modeLine {
				t.Errorf("HasModeLine = %v, want %v", got, f.modeLine)
			}
			mode, known := modeIn(info)
			wantKnown := f.modeLine && kernel.ModeInFdinfo()
			if known != wantKnown || known && mode != f.mode {
				t.Errorf("modeIn = %v, %v; want %v, %v", mode, known, f.mode, wantKnown)
			}
		})
	}
	if _, ok := field([]byte("xeventfd-count: 5\n"), "eventfd-count:"); ok {
		t.Error("field matched a key in the middle of a line")
	}
}

// This kernel's own fdinfo agrees with what was detected.
func TestModeLineDetected(t *testing.T) {
	fd := testutil.Eventfd(t, 0, unix.EFD_SEMAPHORE|unix.EFD_CLOEXEC)
	info, err := fdinfo(fd)
	if err != nil {
		t.Fatal(err)
	}
	if kernel.ModeInFdinfo() && !kernel.HasModeLine(info) {
		t.Errorf("ModeInFdinfo, but no mode line in %q", info)
	}
	if m, ok := modeIn(info); ok != kernel.ModeInFdinfo() || ok && m != Semaphore {
		t.Errorf("modeIn = %v, %v; ModeInFdinfo = %v", m, ok, kernel.ModeInFdinfo())
	}
}

// Where the kernel does not show the mode, an eventfd in the other mode is
// adopted: its mode is taken on trust. Where it does, it is refused.
func TestModeTakenOnTrust(t *testing.T) {
	_, f := testutil.EventfdFile(t, 0, unix.EFD_CLOEXEC, "counter-mode eventfd")
	fd, err := Adopt(f, Semaphore)
	if kernel.ModeInFdinfo() {
		if !errors.Is(err, ErrWrongMode) {
			t.Fatalf("Adopt(counter mode, Semaphore) = %v, want ErrWrongMode", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Adopt(counter mode, Semaphore) without the mode line = %v, want it taken on trust", err)
	}
	fd.Close()
}

// readPolled, the read of a shared descriptor where RWF_NOWAIT is refused,
// takes what is there, and reports an empty counter without blocking even
// when a peer has cleared O_NONBLOCK.
func TestReadPolled(t *testing.T) {
	for _, mode := range []Mode{Counter, Semaphore} {
		t.Run(mode.String(), func(t *testing.T) {
			flags := unix.EFD_CLOEXEC | unix.EFD_NONBLOCK
			if mode == Semaphore {
				flags |= unix.EFD_SEMAPHORE
			}
			fd := testutil.Eventfd(t, 3, flags)
			want := uint64(3)
			if mode == Semaphore {
				want = 1
			}
			if v, err := readPolledValue(fd); v != want || err != nil {
				t.Fatalf("readPolled of 3 = %d, %v; want %d", v, err, want)
			}
			for {
				v, err := readPolledValue(fd)
				if err != nil {
					t.Fatal(err)
				}
				if v == 0 {
					break
				}
			}
			// A peer clears O_NONBLOCK: an empty counter is still reported
			// at once. (A read(2) here would hang the test.)
			if err := unix.SetNonblock(fd, false); err != nil {
				t.Fatal(err)
			}
			if v, err := readPolledValue(fd); v != 0 || err != nil {
				t.Fatalf("readPolled of an empty, blocking eventfd = %d, %v", v, err)
			}
			if err := sysWrite(fd, 2); err != nil {
				t.Fatal(err)
			}
			want = 2
			if mode == Semaphore {
				want = 1
			}
			if v, err := readPolledValue(fd); v != want || err != nil {
				t.Fatalf("readPolled of 2, blocking = %d, %v; want %d", v, err, want)
			}
		})
	}
	if _, err := readPolledValue(1 << 29); err == nil {
		t.Error("readPolled of a descriptor that is not open succeeded")
	}
}

// Without RWF_NOWAIT, a shared FD reads through readPolled: Take works,
// and an empty counter is reported even after a peer clears O_NONBLOCK. It
// runs under the 4.18 and 5.4 kernel profiles (.ci/kernels); on a kernel
// with RWF_NOWAIT, TestReadPolled tests the fallback itself.
func TestSharedReadWithoutNoWait(t *testing.T) {
	if kernel.NoWaitRead() {
		t.Skip("this kernel takes RWF_NOWAIT on an eventfd")
	}
	fd, err := New(2, Semaphore)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	f, err := fd.Dup()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ok, err := fd.Take(2, nil); !ok || err != nil {
		t.Fatalf("Take(2) of 2 = %v, %v", ok, err)
	}
	raw, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	raw.Control(func(u uintptr) { unix.SetNonblock(int(u), false) })
	if v, err := fd.Read(); v != 0 || err != nil {
		t.Fatalf("Read of an empty, blocking shared eventfd = %d, %v", v, err)
	}
}

// readPolledValue is readPolled returning what it read.
func readPolledValue(fd int) (uint64, error) {
	var v uint64
	err := readPolled(fd, &v)
	return v, err
}
