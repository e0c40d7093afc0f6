//go:build linux

package eventfd

import (
	"testing"

	"github.com/eventsync/eventsync/internal/testutil"
	"golang.org/x/sys/unix"
)

// A descriptor is read with read(2) only while nobody else holds its
// description; every way of handing it out, or of getting it from
// elsewhere, switches reads to RWF_NOWAIT. (PassTo and Send hand it out
// with Export; package share tests that they do.)
func TestSharedMarking(t *testing.T) {
	fresh := func() *FD {
		fd, err := New(0, Semaphore)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fd.Close() })
		return fd
	}
	if fresh().shared.Load() {
		t.Fatal("a new FD is marked shared")
	}

	fd := fresh()
	f, err := fd.Dup()
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !fd.shared.Load() {
		t.Fatal("Dup did not mark the FD shared")
	}

	fd = fresh()
	if _, err := fd.Export(); err != nil {
		t.Fatal(err)
	}
	if !fd.shared.Load() {
		t.Fatal("Export did not mark the FD shared")
	}

	// The netpoller's own duplicate is not another holder.
	fd = fresh()
	pf, err := fd.Pollable()
	if err != nil {
		t.Fatal(err)
	}
	pf.Close()
	if fd.shared.Load() {
		t.Fatal("the poller's duplicate marked the FD shared")
	}

	_, ef := testutil.EventfdFile(t, 0, unix.EFD_SEMAPHORE|unix.EFD_CLOEXEC, "peer's")
	adopted, err := Adopt(ef, Semaphore)
	if err != nil {
		t.Fatal(err)
	}
	defer adopted.Close()
	if !adopted.shared.Load() {
		t.Fatal("an adopted FD is not marked shared")
	}
}

// Once handed out, a descriptor whose O_NONBLOCK a peer clears is still
// read without blocking. (Were it read with read(2), this test would hang.)
func TestPeerClearsNonblockAfterDup(t *testing.T) {
	fd, err := New(0, Semaphore)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	f, err := fd.Dup()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	raw.Control(func(u uintptr) { unix.SetNonblock(int(u), false) })
	if v, err := fd.Read(); v != 0 || err != nil {
		t.Fatalf("Read of an empty eventfd = %d, %v", v, err)
	}
	if ok, err := fd.Take(1, nil); ok || err != nil {
		t.Fatalf("Take(1) of an empty eventfd = %v, %v", ok, err)
	}
}
