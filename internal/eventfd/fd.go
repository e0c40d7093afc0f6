package eventfd

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventsync/eventsync/internal/kernel"
)

// FD is one eventfd, shared by the goroutines of this process.
//
// Reads and writes go straight to the kernel with non-blocking system calls,
// not through an *os.File, whose locking and scheduler hand-offs cost more
// than the system call itself.
//
// O_NONBLOCK belongs to the open file description, which every holder
// shares, and a peer may clear it. A read of a descriptor that has been
// handed out (Export) or that came from elsewhere (Adopt, Own) is therefore
// made with preadv2(RWF_NOWAIT), which never blocks whatever the flag says.
// A descriptor that no other holder has ever seen, whose flag only this
// package sets, is read with the cheaper read(2).
//
// The descriptor is not registered with the netpoller: while it is, every
// write wakes the thread sleeping in epoll_wait, whether or not anybody
// waits. Package waitq registers a duplicate only while it has waiters.
type FD struct {
	// mu is held for reading around every system call that names sysfd, and
	// for writing by Close. Descriptor numbers are reused as soon as they are
	// closed: a write through a stale number would land in somebody else's
	// file, so no number is used once Close has begun.
	mu     sync.RWMutex
	closed bool
	sysfd  int
	// closing is set as Close begins, before it waits for mu: a long Take
	// sees it between chunks and gives back what it took, so that Close is
	// not held up by it and loses nothing.
	closing atomic.Bool

	mode Mode
	// shared is set once another holder may have the description: from
	// then on reads use RWF_NOWAIT.
	shared atomic.Bool

	// ledger, when set, is told of every take and give of a Semaphore-mode
	// counter, around the system call that makes it (see Ledger).
	ledger Ledger
}

// A Ledger records what this process takes from and gives to a counter, so
// that what it holds when it dies can be given back by another process.
//
// Its calls bracket each system call, under the descriptor's lock: Close
// waits for them. Arm returns the word a read must land in, zeroed and
// marked as in flight, and Landed records what landed there: the kernel's
// copy of what it took is part of the read, so the ledger never misses a
// take. Giving(n) and Gave surround one write of n. Giving returns what it
// struck from the holdings, which Gave puts back if the write failed, or an
// error that refuses the give (a Semaphore that tells permits never
// acquired from those that were): the write is then not made.
type Ledger interface {
	Arm() (lane int, dst *uint64)
	Landed(lane int)
	Giving(n uint64) (debit uint64, err error)
	Gave(n, debit uint64, written bool)
}

// SetLedger makes l the ledger of fd's takes and gives. Call it before fd
// is used by more than one goroutine.
func (fd *FD) SetLedger(l Ledger) { fd.ledger = l }

func newFD(sysfd int, mode Mode, shared bool) *FD {
	fd := &FD{sysfd: sysfd, mode: mode}
	if shared {
		learnSharedRead()
	}
	fd.shared.Store(shared)
	return fd
}

// learnSharedRead makes the kernel probe that chooses how a shared
// descriptor is read (see sysRead) before any read needs it. Left to the
// first read, it would hold up every goroutine that reads meanwhile, each
// asleep in its sync.Once, and the calls of that sleep would grow the stack
// each keeps while it waits.
func learnSharedRead() { _ = kernel.NoWaitRead() }

// New creates an eventfd holding init, close-on-exec and non-blocking.
// Values above 2^32-1, which eventfd(2) cannot take as its initial value,
// are written after creation.
func New(init uint64, mode Mode) (*FD, error) {
	if init > MaxCount {
		return nil, ErrOverflow
	}
	sysfd, err := sysCreate(init, mode)
	if err != nil {
		return nil, err
	}
	return newFD(sysfd, mode, false), nil
}

// Adopt takes a duplicate of f, checks that it is an eventfd in the given
// mode, and makes it non-blocking. The caller keeps f and closes it as
// before; the flag, which belongs to the open file description, is seen by
// every holder of f too.
func Adopt(f *os.File, mode Mode) (*FD, error) {
	if f == nil {
		return nil, os.ErrInvalid
	}
	raw, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var sysfd int
	var derr error
	if err := raw.Control(func(fd uintptr) { sysfd, derr = sysAdopt(int(fd), mode) }); err != nil {
		// The only way Control fails is a closed file ("use of closed file").
		return nil, fmt.Errorf("%s: %w", f.Name(), os.ErrClosed)
	}
	if derr != nil {
		return nil, derr
	}
	return newFD(sysfd, mode, true), nil
}

// Own takes ownership of sysfd, a descriptor number this process was handed
// (inherited at exec or received over a socket): it checks that it is an
// eventfd in the given mode and makes it close-on-exec and non-blocking. On
// failure sysfd is left open, and the caller still owns it.
func Own(sysfd int, mode Mode) (*FD, error) {
	if err := sysOwn(sysfd, mode); err != nil {
		return nil, err
	}
	return newFD(sysfd, mode, true), nil
}

// Mode reports how reads take from the counter.
func (fd *FD) Mode() Mode { return fd.mode }

// Read takes from the counter without blocking: all of it in Counter mode,
// one in Semaphore mode. It returns 0 when the counter is zero.
func (fd *FD) Read() (uint64, error) {
	fd.mu.RLock()
	defer fd.mu.RUnlock()
	if fd.closed {
		return 0, os.ErrClosed
	}
	return sysRead(fd.sysfd, fd.shared.Load())
}

// takeChunk is how many reads a Take makes between two looks at whether it
// should stop.
const takeChunk = 1024

// Take takes n from a Semaphore-mode counter, all or nothing, and reports
// whether it did. It never holds part of n when it returns.
//
// An eventfd gives one per read, so Take is n reads. It first looks at the
// counter and reads only when n are there, so that a request that cannot be
// served does not make the counter dip for other processes; if the look
// itself fails (at the descriptor limit /proc cannot be opened) it reads
// anyway. If another process wins some of the n in between, what was taken
// is written back: the counter was at least that much higher a moment ago,
// so the write cannot overflow.
//
// A Stopper tells a long Take whether to give up.
type Stopper interface {
	Stopped() bool
}

// Between chunks of reads, Take stops if Close has begun (os.ErrClosed) or
// if stop, when not nil, reports true (ErrInterrupted), giving back what it
// took.
func (fd *FD) Take(n uint64, stop Stopper) (bool, error) {
	fd.mu.RLock()
	defer fd.mu.RUnlock()
	if fd.closed {
		return false, os.ErrClosed
	}
	shared := fd.shared.Load()
	if n == 1 {
		v, err := fd.read1(shared)
		return v != 0, err
	}
	return fd.takeNLocked(n, shared, stop)
}

// takeNLocked is Take for n > 1, in a frame of its own: Take(1) runs at the
// bottom of every waiting goroutine's deepest call, and each byte of its
// frame is a byte of every such goroutine's stack.
func (fd *FD) takeNLocked(n uint64, shared bool, stop Stopper) (bool, error) {
	if count, err := sysCount(fd.sysfd); err == nil && count < n {
		return false, nil
	}
	got, halt := fd.takeLocked(n, shared, stop)
	if got == n {
		return true, nil
	}
	if got > 0 {
		if err := fd.writeLocked(got); err != nil {
			return false, err
		}
	}
	return false, halt
}

// read1 is one read of a Semaphore-mode counter, told to the ledger.
func (fd *FD) read1(shared bool) (uint64, error) {
	l := fd.ledger
	if l == nil {
		return sysRead(fd.sysfd, shared)
	}
	lane, dst := l.Arm()
	err := sysReadInto(fd.sysfd, shared, dst)
	v := atomic.LoadUint64(dst)
	l.Landed(lane)
	return v, err
}

// writeLocked is one write, told to the ledger, which may refuse it.
func (fd *FD) writeLocked(v uint64) error {
	l := fd.ledger
	if l == nil {
		return sysWrite(fd.sysfd, v)
	}
	debit, err := l.Giving(v)
	if err != nil {
		return err
	}
	err = sysWriteRaw(fd.sysfd, v)
	l.Gave(v, debit, err == nil)
	return err
}

// takeLocked reads up to n, one at a time, and returns what it got and why
// it stopped short: nil for an empty counter, or the reason it gave up.
func (fd *FD) takeLocked(n uint64, shared bool, stop Stopper) (uint64, error) {
	var got uint64
	for got < n {
		if got > 0 && got%takeChunk == 0 {
			if fd.closing.Load() {
				return got, os.ErrClosed
			}
			if stop != nil && stop.Stopped() {
				return got, ErrInterrupted
			}
		}
		v, err := fd.read1(shared)
		if err != nil || v == 0 {
			return got, err
		}
		got++
	}
	return got, nil
}

// Write adds v to the counter without blocking. It returns ErrOverflow,
// and adds nothing, when the sum would pass MaxCount, or the ledger's error
// if it refuses the give.
func (fd *FD) Write(v uint64) error {
	fd.mu.RLock()
	defer fd.mu.RUnlock()
	if fd.closed {
		return os.ErrClosed
	}
	return fd.writeLocked(v)
}

// Restore adds v to the counter for somebody else, outside the ledger: the
// holdings of a member process that died.
func (fd *FD) Restore(v uint64) error {
	fd.mu.RLock()
	defer fd.mu.RUnlock()
	if fd.closed {
		return os.ErrClosed
	}
	return sysWriteRaw(fd.sysfd, v) // as a give: see sysWriteRaw
}

// Saturate adds v, or as much of it as fits below MaxCount.
func (fd *FD) Saturate(v uint64) error {
	fd.mu.RLock()
	defer fd.mu.RUnlock()
	if fd.closed {
		return os.ErrClosed
	}
	for v > 0 {
		err := fd.writeLocked(v)
		if err != ErrOverflow {
			return err
		}
		count, err := sysCount(fd.sysfd)
		if err != nil {
			return err
		}
		if count >= MaxCount {
			return nil
		}
		v = min(v, MaxCount-count)
	}
	return nil
}

// Pending reports whether the counter is above zero, without taking anything.
func (fd *FD) Pending() (bool, error) {
	fd.mu.RLock()
	defer fd.mu.RUnlock()
	if fd.closed {
		return false, os.ErrClosed
	}
	return sysPending(fd.sysfd)
}

// PendingPair reports, in one system call, whether the counters of a and b
// are above zero.
func PendingPair(a, b *FD) (bool, bool, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	b.mu.RLock()
	defer b.mu.RUnlock()
	if a.closed || b.closed {
		return false, false, os.ErrClosed
	}
	return sysPendingPair(a.sysfd, b.sysfd)
}

// Value reports the counter as the kernel shows it in /proc/self/fdinfo.
func (fd *FD) Value() (uint64, error) {
	fd.mu.RLock()
	defer fd.mu.RUnlock()
	if fd.closed {
		return 0, os.ErrClosed
	}
	return sysCount(fd.sysfd)
}

// Dup returns a new close-on-exec descriptor for the same eventfd, for
// another holder.
//
// The *os.File registers it with the netpoller, and while it stays open
// every write to the eventfd wakes the netpoller: close it when done.
func (fd *FD) Dup() (*os.File, error) {
	dup, err := fd.Export()
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(dup), "eventfd"), nil
}

// Export returns a duplicate descriptor number for another holder, and from
// then on reads with RWF_NOWAIT (see FD). The caller owns the duplicate.
func (fd *FD) Export() (int, error) {
	// Under the write lock, so that no read(2) chosen before the switch is
	// still under way when another holder can clear O_NONBLOCK.
	learnSharedRead()
	fd.mu.Lock()
	fd.shared.Store(true)
	fd.mu.Unlock()
	return fd.dup()
}

// Pollable returns a duplicate for the netpoller. A peer may have cleared
// O_NONBLOCK on the shared description, and os.NewFile registers only a
// non-blocking descriptor, so the flag is set again first; if a peer clears
// it again in between, the file is not registered (it takes no deadline)
// and the duplicate is made anew.
func (fd *FD) Pollable() (*os.File, error) {
	for try := 0; ; try++ {
		dup, err := fd.dup()
		if err != nil {
			return nil, err
		}
		if err := sysSetNonblock(dup); err != nil {
			sysClose(dup)
			return nil, err
		}
		f := os.NewFile(uintptr(dup), "eventfd")
		err = f.SetReadDeadline(time.Time{})
		if err == nil {
			return f, nil
		}
		f.Close()
		if try == 2 {
			return nil, fmt.Errorf("registering with the netpoller: %w", err)
		}
	}
}

func (fd *FD) dup() (int, error) {
	fd.mu.RLock()
	defer fd.mu.RUnlock()
	if fd.closed {
		return -1, os.ErrClosed
	}
	return sysDup(fd.sysfd)
}

// IfOpen runs f under the descriptor's read lock and returns what it
// returns, or false once Close has begun: what f uses that Close tears
// down after the descriptor cannot go away under it.
func (fd *FD) IfOpen(f func() bool) bool {
	fd.mu.RLock()
	defer fd.mu.RUnlock()
	return !fd.closed && f()
}

// Shared reports whether another holder may have the descriptor.
func (fd *FD) Shared() bool { return fd.shared.Load() }

// Closed reports whether Close has begun.
func (fd *FD) Closed() bool {
	fd.mu.RLock()
	defer fd.mu.RUnlock()
	return fd.closed
}

// Close closes the descriptor, once no system call on it is under way. A
// second Close returns os.ErrClosed.
func (fd *FD) Close() error {
	fd.closing.Store(true)
	fd.mu.Lock()
	defer fd.mu.Unlock()
	if fd.closed {
		return os.ErrClosed
	}
	fd.closed = true
	return sysClose(fd.sysfd)
}

// Sysfd returns the descriptor number, for tests that look at its flags.
func (fd *FD) Sysfd() int { return fd.sysfd }
