package testutil

import (
	"errors"
	"github.com/eventsync/eventsync/internal/kernel"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Descriptor kinds for fuzzing FromFile.
const (
	KindEventfdCounter = iota
	KindEventfdSemaphore
	KindPipe
	KindSocket
	KindRegularFile
	KindDevNull
	KindMemfd
	KindEpoll
	KindClosed // an eventfd in the right mode, closed before FromFile
	NumKinds
)

// Flags for fuzzing FromFile: bit 0 sets O_NONBLOCK, bit 1 FD_CLOEXEC.
const (
	FlagNonblock = 1 << iota
	FlagCloexec
)

// Adopted is what a package's FromFile returned, for CheckAdopt.
type Adopted interface {
	Value() (uint64, error)
	Close() error
}

// AdoptSeeds adds to f every kind with every flag combination.
func AdoptSeeds(f *testing.F) {
	for kind := range NumKinds {
		for flags := range 4 {
			f.Add(uint8(kind), uint8(flags), uint32(kind*7+flags))
		}
	}
}

// CheckAdopt makes a descriptor of kind (taken modulo NumKinds) with flags,
// holding init if it is an eventfd, and hands it to adopt, a package's
// FromFile. The package wants an eventfd in semaphore mode if semaphore is
// true, else in counter mode. CheckAdopt fails the test if adopt panics, if
// it succeeds for anything but an eventfd of the right mode, if it fails
// for one, or fails with anything but os.ErrClosed for a closed
// descriptor, ErrWrongMode (wrongMode) for an eventfd of the other mode,
// and ErrNotEventfd (notEventfd) for anything else; and if, once the file
// and the adopted handle are closed, more descriptors are open than before.
func CheckAdopt(t *testing.T, kind, flags uint8, init uint32, semaphore bool,
	adopt func(*os.File) (Adopted, error), notEventfd, wrongMode error) {
	kind %= NumKinds
	before := len(OpenFDs(t))
	f := makeKind(t, kind, flags, init, semaphore)
	var (
		a   Adopted
		err error
	)
	if msg := PanicMessage(func() { a, err = adopt(f) }); msg != "" {
		t.Fatalf("kind %d, flags %d: FromFile panicked: %s", kind, flags, msg)
	}
	a = checkAdoptResult(t, kind, flags, init, semaphore, a, err, notEventfd, wrongMode)
	if a != nil {
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	// Fewer is no leak: handles of earlier tests, collected meanwhile,
	// close theirs (runtime.AddCleanup).
	if after := len(OpenFDs(t)); after > before {
		t.Fatalf("kind %d, flags %d: %d descriptors open after FromFile and Close, %d before", kind, flags, after, before)
	}
}

func makeKind(t *testing.T, kind, flags uint8, init uint32, semaphore bool) *os.File {
	t.Helper()
	fd, err := openKind(t, kind, init, semaphore)
	if err != nil {
		t.Fatalf("making descriptor kind %d: %v", kind, err)
	}
	if err := unix.SetNonblock(fd, flags&FlagNonblock != 0); err != nil {
		t.Fatal(err)
	}
	cloexec := 0
	if flags&FlagCloexec != 0 {
		cloexec = unix.FD_CLOEXEC
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, cloexec); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "adopt")
	if kind == KindClosed {
		f.Close()
	}
	return f
}

// openKind opens a descriptor of the given kind.
func openKind(t *testing.T, kind uint8, init uint32, semaphore bool) (int, error) {
	switch kind {
	case KindEventfdCounter:
		return unix.Eventfd(uint(init), 0)
	case KindEventfdSemaphore:
		return unix.Eventfd(uint(init), unix.EFD_SEMAPHORE)
	case KindPipe:
		var p [2]int
		err := unix.Pipe(p[:])
		if err == nil {
			unix.Close(p[1])
		}
		return p[0], err
	case KindSocket:
		return unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	case KindRegularFile:
		return unix.Open(filepath.Join(t.TempDir(), "regular"), unix.O_RDWR|unix.O_CREAT, 0o600)
	case KindDevNull:
		return unix.Open("/dev/null", unix.O_RDWR, 0)
	case KindMemfd:
		return unix.MemfdCreate("adopt", 0)
	case KindEpoll:
		return unix.EpollCreate1(0)
	}
	// KindClosed: an eventfd of the right mode, closed once it is a file.
	mode := 0
	if semaphore {
		mode = unix.EFD_SEMAPHORE
	}
	return unix.Eventfd(uint(init), mode)
}

// checkAdoptResult checks what adopting a descriptor of the given kind
// returned (see CheckAdopt), and returns the handle still to be closed.
func checkAdoptResult(t *testing.T, kind, flags uint8, init uint32, semaphore bool, a Adopted, err, notEventfd, wrongMode error) Adopted {
	t.Helper()
	right := KindEventfdCounter
	if semaphore {
		right = KindEventfdSemaphore
	}
	switch {
	case int(kind) == right:
		if err != nil {
			t.Fatalf("kind %d, flags %d: FromFile of an eventfd in the right mode: %v", kind, flags, err)
		}
		if v, err := a.Value(); err != nil || v != uint64(init) {
			t.Fatalf("kind %d, flags %d: Value after FromFile = %d, %v; want %d", kind, flags, v, err, init)
		}
	case err == nil && (kind == KindEventfdCounter || kind == KindEventfdSemaphore) && !kernel.ModeInFdinfo():
		// This kernel does not show the mode: it is taken on trust.
		a.Close()
		a = nil
	case err == nil:
		a.Close()
		t.Fatalf("kind %d, flags %d: FromFile succeeded", kind, flags)
	default:
		checkAdoptError(t, kind, flags, err, notEventfd, wrongMode)
	}
	return a
}

// checkAdoptError checks the error of adopting a descriptor of the given
// kind that is not an eventfd of the right mode.
func checkAdoptError(t *testing.T, kind, flags uint8, err, notEventfd, wrongMode error) {
	t.Helper()
	switch {
	case kind == KindClosed:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("FromFile of a closed file: %v, want os.ErrClosed", err)
		}
	case kind == KindEventfdCounter || kind == KindEventfdSemaphore:
		if !errors.Is(err, wrongMode) {
			t.Fatalf("kind %d, flags %d: FromFile of an eventfd in the other mode: %v, want ErrWrongMode", kind, flags, err)
		}
	default:
		if !errors.Is(err, notEventfd) {
			t.Fatalf("kind %d, flags %d: FromFile of a non-eventfd: %v, want ErrNotEventfd", kind, flags, err)
		}
	}
}
