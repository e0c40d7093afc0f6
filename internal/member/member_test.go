//go:build linux

package member

import (
	"os"
	"os/exec"
	"testing"
	"unsafe"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/eventsync/eventsync/internal/eventfd"
	"github.com/eventsync/eventsync/internal/kernel"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// record returns a record of size and an eventfd of permits holding free.
func record(t *testing.T, size int64, free uint64) (*Record, *eventfd.FD) {
	t.Helper()
	rec, err := Create(size, false)
	if err != nil {
		t.Fatal(err)
	}
	permits, err := eventfd.New(free, eventfd.Semaphore)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { permits.Close() })
	return rec, permits
}

// join adds a member to rec; the test leaves it at the end.
func join(t *testing.T, rec *Record) *Member {
	t.Helper()
	m, err := rec.Join(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Unwatch)
	return m
}

// process starts cat, which lives until its input closes, and returns its
// PID, its start time, and a function that ends and reaps it.
func process(t *testing.T) (pid int, start uint64, end func()) {
	t.Helper()
	cmd := exec.Command("cat")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	start, err = startTime(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	ended := false
	end = func() {
		if !ended {
			ended = true
			in.Close()
			cmd.Wait()
		}
	}
	t.Cleanup(end)
	return cmd.Process.Pid, start, end
}

// pretend makes m's slot say that it belongs to process pid, started at
// start, holding held.
func pretend(m *Member, pid int, start, held uint64) {
	m.s.pid.Store(int64(pid))
	m.s.start.Store(start)
	m.s.held.Store(held << lanes)
}

func value(t *testing.T, fd *eventfd.FD) uint64 {
	t.Helper()
	v, err := fd.Value()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func skipWithoutPidfd(t *testing.T) {
	if !kernel.Pidfd() {
		t.Skip("members are watched with pidfds: Linux " + kernel.SincePidfd)
	}
}

// A live member is watched, not reclaimed; when it exits, a survivor gives
// back what it held, once.
func TestReclaimWhenMemberExits(t *testing.T) {
	skipWithoutPidfd(t)
	rec, permits := record(t, 3, 1)
	pid, start, end := process(t)
	pretend(join(t, rec), pid, start, 2)
	reclaimed := make(chan struct{}, 4)
	watcher := join(t, rec)
	if err := watcher.Watch(permits, func() { reclaimed <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	if st := rec.Stats(); st.Reclaims != 0 || st.Held != 2 || st.Holders != 1 || st.Members != 2 {
		t.Fatalf("Stats with the member alive = %+v", st)
	}
	end()
	<-reclaimed
	if v := value(t, permits); v != 3 {
		t.Fatalf("permits = %d after the member holding 2 exited, want 3", v)
	}
	if st := rec.Stats(); st.Reclaims != 1 || st.Reclaimed != 2 || st.Uncertain != 0 || st.Held != 0 || st.Members != 1 {
		t.Fatalf("Stats = %+v", st)
	}
}

// A process that has the member's PID but started at another time is a
// later process that reuses the number: the member is dead. The same holds
// for this process's own PID.
func TestReusedPIDIsDeath(t *testing.T) {
	skipWithoutPidfd(t)
	rec, permits := record(t, 4, 0)
	pid, start, _ := process(t)
	pretend(join(t, rec), pid, start+1, 1)
	self, err := self()
	if err != nil {
		t.Fatal(err)
	}
	pretend(join(t, rec), int(self.pid), self.start-1, 2)
	watcher := join(t, rec)
	if err := watcher.Watch(permits, nil); err != nil {
		t.Fatal(err)
	}
	// The first look, as Watch begins, settles both.
	if st := rec.Stats(); st.Reclaims != 2 || st.Reclaimed != 3 {
		t.Fatalf("Stats = %+v, want both impostors' members reclaimed", st)
	}
	if v := value(t, permits); v != 3 {
		t.Fatalf("permits = %d, want 3", v)
	}
}

// A read that landed in an armed lane is the member's, even if it died
// before it could add it to its holdings; one whose lane is armed but empty
// took nothing.
func TestLandedReadIsReclaimed(t *testing.T) {
	skipWithoutPidfd(t)
	rec, permits := record(t, 4, 2)
	dead := join(t, rec)
	for range 2 {
		_, dst := dead.Arm()
		if _, err := unix.Read(permits.Sysfd(), (*[8]byte)(unsafe.Pointer(dst))[:]); err != nil {
			t.Fatal(err)
		}
	}
	dead.Arm() // the read it was about to make, when it died
	if v := value(t, permits); v != 0 {
		t.Fatalf("permits = %d, want 0 after two reads", v)
	}
	pid, start, end := process(t)
	end()
	pretend(dead, pid, start, 0)
	dead.s.held.Or(1<<0 | 1<<1 | 1<<2) // pretend overwrote the armed lanes
	watcher := join(t, rec)
	if err := watcher.Watch(permits, nil); err != nil {
		t.Fatal(err)
	}
	if v := value(t, permits); v != 2 {
		t.Fatalf("permits = %d, want the 2 that landed back", v)
	}
	if st := rec.Stats(); st.Reclaimed != 2 || st.Uncertain != 0 {
		t.Fatalf("Stats = %+v", st)
	}
}

// A member that died between striking permits from its holdings and the
// write that gives them leaves them in doubt: not given back twice, and
// counted.
func TestGiveInFlightIsCounted(t *testing.T) {
	skipWithoutPidfd(t)
	rec, permits := record(t, 4, 0)
	dead := join(t, rec)
	pid, start, end := process(t)
	end()
	pretend(dead, pid, start, 3)
	if debit, err := dead.Giving(2); err != nil || debit != 2 {
		t.Fatalf("Giving(2) = %d, %v", debit, err)
	}
	watcher := join(t, rec)
	if err := watcher.Watch(permits, nil); err != nil {
		t.Fatal(err)
	}
	if v := value(t, permits); v != 1 {
		t.Fatalf("permits = %d, want the 1 still held", v)
	}
	if st := rec.Stats(); st.Reclaimed != 1 || st.Uncertain != 2 {
		t.Fatalf("Stats = %+v, want 1 given back and 2 in doubt", st)
	}
}

// Holdings never pass the size: what is taken beyond it (permits some
// process gave without holding them) is nobody's.
func TestHoldingsCappedAtSize(t *testing.T) {
	rec, permits := record(t, 2, 5)
	m := join(t, rec)
	permits.SetLedger(m)
	if ok, err := permits.Take(5, nil); !ok || err != nil {
		t.Fatalf("Take(5) = %v, %v", ok, err)
	}
	if h := m.Held(); h != 2 {
		t.Fatalf("Held = %d after taking 5 of a record of size 2, want 2", h)
	}
	if err := permits.Write(5); err != nil {
		t.Fatal(err)
	}
	if h := m.Held(); h != 0 {
		t.Fatalf("Held = %d after giving 5, want 0", h)
	}
}

// A strict member refuses to give more than it holds, and changes nothing.
func TestStrictRefusesOverRelease(t *testing.T) {
	rec, err := Create(2, true)
	if err != nil {
		t.Fatal(err)
	}
	m := join(t, rec)
	permits, err := eventfd.New(2, eventfd.Semaphore)
	if err != nil {
		t.Fatal(err)
	}
	defer permits.Close()
	permits.SetLedger(m)
	if ok, err := permits.Take(1, nil); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if err := permits.Write(2); err != ErrOverRelease {
		t.Fatalf("Write(2) holding 1 = %v, want ErrOverRelease", err)
	}
	if v := value(t, permits); v != 1 || m.Held() != 1 || m.s.giving.Load() != 0 {
		t.Fatalf("after the refusal: permits %d, held %d, giving %d", v, m.Held(), m.s.giving.Load())
	}
}

// A record made elsewhere is checked: a memfd that is not sealed, or of
// another size, is refused.
func TestAdoptChecks(t *testing.T) {
	roster := func() *eventfd.FD {
		fd, err := eventfd.New(0, eventfd.Counter)
		if err != nil {
			t.Fatal(err)
		}
		return fd
	}
	fd, err := unix.MemfdCreate("not-a-record", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Ftruncate(fd, Size); err != nil {
		t.Fatal(err)
	}
	if _, err := Adopt(fd, roster()); err == nil {
		t.Fatal("Adopt of an unsealed memfd succeeded")
	}
	f, err := os.CreateTemp(t.TempDir(), "record")
	if err != nil {
		t.Fatal(err)
	}
	dup, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Adopt(dup, roster()); err == nil {
		t.Fatal("Adopt of a regular file succeeded")
	}
}
