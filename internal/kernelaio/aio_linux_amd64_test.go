//go:build linux && amd64

package kernelaio

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestKernelWritesEventfd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data")
	want := "hello, kernel"
	if err := os.WriteFile(path, []byte(want), 0o600); err != nil {
		t.Fatal(err)
	}

	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)

	// Nothing has signalled the eventfd yet.
	var b [8]byte
	if _, err := unix.Read(efd, b[:]); err != unix.EAGAIN {
		t.Fatalf("eventfd read before AIO: err=%v, want EAGAIN", err)
	}

	buf := make([]byte, 5)
	n, err := Read(efd, path, buf)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if n != 5 || string(buf[:n]) != want[:5] {
		t.Fatalf("Read = %d, %q; want 5, %q", n, buf[:n], want[:5])
	}

	// The only writer of efd is the kernel's AIO completion path.
	m, err := unix.Read(efd, b[:])
	if err != nil {
		t.Fatalf("eventfd read: %v", err)
	}
	if m != 8 {
		t.Fatalf("eventfd read %d bytes, want 8", m)
	}
	if v := binary.NativeEndian.Uint64(b[:]); v != 1 {
		t.Fatalf("eventfd counter = %d, want 1", v)
	}
	// And it was signalled exactly once.
	if _, err := unix.Read(efd, b[:]); err != unix.EAGAIN {
		t.Fatalf("second eventfd read: err=%v, want EAGAIN", err)
	}
}

func TestErrors(t *testing.T) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	buf := make([]byte, 1)
	if _, err := Read(efd, filepath.Join(t.TempDir(), "missing"), buf); !os.IsNotExist(err) {
		t.Errorf("Read of a missing file = %v, want a not-exist error", err)
	}
	path := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(efd, path, nil); err == nil {
		t.Error("Read into an empty buffer succeeded")
	}
	// A descriptor that is not an eventfd: io_submit refuses the request
	// and the kernel writes nothing.
	if _, err := Read(int(os.Stdin.Fd()), path, buf); err == nil {
		t.Error("Read with a non-eventfd result descriptor succeeded")
	}
	var b [8]byte
	if _, err := unix.Read(efd, b[:]); err != unix.EAGAIN {
		t.Fatalf("eventfd read after failed requests: err=%v, want EAGAIN", err)
	}
}
