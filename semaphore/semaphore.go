// Package semaphore provides a counting semaphore that goroutines of one
// process and of many processes can share: its permits live in the process
// until it is first shared, then in a Linux eventfd.
//
// A Semaphore has the method set of golang.org/x/sync/semaphore.Weighted.
// Waiting is done by the Go runtime's netpoller, so a blocked Acquire holds
// no OS thread, and it honours its context.
//
// Once shared, the permits are the counter of an eventfd in semaphore mode
// (EFD_SEMAPHORE): one read(2) takes one permit, one write(2) of n gives back
// n. A C or Python process holding the descriptor takes and gives permits
// with those calls (see File and the README's wire contract).
//
// # Sharing with other processes
//
// PassTo hands a Semaphore to a child started with os/exec, which takes it
// with Inherited; Send and Receive hand it to an unrelated process over a
// Unix socket. File and FromFile trade the bare eventfd with programs in
// other languages. The formats, for those programs, are in the README's
// "Sharing with other processes" section.
//
// # Switching from golang.org/x/sync/semaphore
//
// Change the import path: Weighted and NewWeighted are this package's
// Semaphore and a constructor with x/sync's rules on the size (a Release of
// more than is held panics; an Acquire larger than the size waits for its
// context alone), which panics where New returns an error (on a system
// without eventfd). Everything else behaves as x/sync documents it, with
// the differences stated on each method. New's Semaphores also allow a
// Release of permits never acquired, to hand permits between processes or
// to signal.
//
// # When a process dies
//
// Every Go process holding a shared Semaphore is a member of a record of
// what each holds, and when one dies another gives back what it held; see
// the Semaphore type and Holdings.
package semaphore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/eventsync/eventsync/internal/counter"
	"github.com/eventsync/eventsync/internal/eventfd"
	"github.com/eventsync/eventsync/internal/member"
	"github.com/eventsync/eventsync/internal/race"
	"github.com/eventsync/eventsync/internal/share"
	"github.com/eventsync/eventsync/internal/waitq"
)

// Errors returned when adopting a descriptor with FromFile, Inherited or
// Receive. They are the same values in every eventsync package.
var (
	// ErrNotEventfd means the descriptor is not an eventfd.
	ErrNotEventfd = eventfd.ErrNotEventfd
	// ErrWrongMode means the eventfd is in counter mode, not semaphore mode.
	ErrWrongMode = eventfd.ErrWrongMode
)

// A Semaphore bounds concurrent access to a resource, across goroutines and
// across processes. Make one with New, NewWeighted, FromFile, Inherited or
// Receive; the zero value is not usable, and its methods panic saying so.
//
// In this process, goroutines that must wait are served in the order they
// arrived, as with x/sync: a large request at the front is not starved by
// small ones behind it, and it also holds them up. Between processes there
// is no queue: whichever process reads first wins a free permit, so under
// load a large request may wait longer than small ones, without bound.
//
// The rule between processes: a Release puts the permit in the kernel,
// where every process competes for it, before this process's queued
// goroutines are served. One exception makes a hand-off between two
// goroutines of one process as fast as a channel: while no other member
// process has goroutines queued, a Release(1) hands its permit straight to
// a goroutine of this process that is trying again in Acquire(1) (for a few
// microseconds, before it queues), without a system call; the permit never
// leaves the process. So a goroutine of another Go process waits at most
// for its own tries before it queues and stops these hand-offs. C and
// Python peers are not members: they are not seen waiting.
//
// A waiting Acquire holds no permits. A weighted Acquire(ctx, n) takes n
// permits one read at a time once it sees n free, and gives back what it
// took if another process was faster; so weighted requests never deadlock
// each other, nor a small request whose holder would release what they
// need. Taking n permits costs n system calls.
//
// A Release synchronizes before the Acquire or TryAcquire that it serves,
// in the sense of the Go memory model, as with x/sync.
//
// # When a process dies
//
// Every Go process that holds a shared Semaphore is a member: what it has
// acquired and not released is recorded, and when it dies, for any reason,
// another member gives those permits back. A member's holdings are the
// permits it acquired minus those it released, never below zero and never
// above the size, n of New or NewWeighted: a Release beyond them hands
// permits to somebody else (a Semaphore used to signal, or permits handed
// between processes) and is nobody's holding; nothing acquired beyond the
// size comes back either. So a crash never makes a permit. A process killed
// between the system call that takes or gives permits and the record of it
// loses those permits: that window is one system call wide, and Holdings
// counts what was in flight. C and Python peers that hold only the eventfd,
// and Semaphores adopted with FromFile, are outside the record. See the
// README's "When a process dies".
//
// A Semaphore that becomes unreachable closes its descriptors; Close does it
// at once.
type Semaphore struct {
	c       *counter.Counter // see package counter
	ms      *membership
	size    int64 // the permits the record covers
	strict  bool  // made by NewWeighted: x/sync's rules on size and Release
	adopted bool  // made by FromFile: peers outside the record are likely
	// handOff is set once shared Acquire(1) calls may be handed a permit
	// by a Release of this process (see spinShared).
	handOff atomic.Bool
	cleanup runtime.Cleanup
}

// membership is s's place in the record of its members, made when s is
// first shared.
type membership struct {
	mu      sync.Mutex
	m       atomic.Pointer[member.Member]
	watched bool
	// closed is closed by Close; a request larger than a NewWeighted
	// Semaphore's size waits on it and on its context only.
	closed    chan struct{}
	closeOnce sync.Once
}

// kind describes a Semaphore to the sharing protocols: its permits, the
// roster that members write to when they join, and the record of members.
// Its ID is part of the wire format.
var kind = share.Kind{Name: "semaphore", Type: "Semaphore", ID: 1, Modes: []eventfd.Mode{eventfd.Semaphore, eventfd.Counter}, Record: true}

// New returns a Semaphore with n free permits. n may exceed 2^32-1. New
// returns an error wrapping os.ErrInvalid if n is negative, and one
// satisfying errors.Is(err, errors.ErrUnsupported) on systems other than
// Linux.
//
// The permits live in this process, at the cost of a mutex, until the
// Semaphore is first shared with File, PassTo or Send, which moves them into
// a new eventfd (close-on-exec and non-blocking) that is the one truth from
// then on.
func New(n int64) (*Semaphore, error) {
	if n < 0 {
		return nil, fmt.Errorf("semaphore: New(%d): negative permit count: %w", n, os.ErrInvalid)
	}
	if err := eventfd.Supported(eventfd.Semaphore); err != nil {
		return nil, fmt.Errorf("semaphore: New: %w", err)
	}
	return newLocal(n, false, "New")
}

func newLocal(n int64, strict bool, op string) (*Semaphore, error) {
	s := newSemaphore(nil, n, strict)
	if shareAtNew {
		if _, _, err := s.share(); err != nil {
			return nil, fmt.Errorf("semaphore: %s: %w", op, err)
		}
	}
	return s, nil
}

// shareAtNew makes New move the permits into an eventfd at once. The tests
// set it, from EVENTSYNC_TEST_SHARED, to run every test on both states.
var shareAtNew bool

// FromFile returns a Semaphore on the eventfd that f holds, for example one
// made by a C program. f must be an eventfd in semaphore mode
// (EFD_SEMAPHORE): otherwise FromFile returns an error wrapping
// ErrNotEventfd or ErrWrongMode. FromFile duplicates the descriptor, as
// net.FileConn does: the caller still closes f, and Close leaves f open.
//
// The mode is checked where the kernel shows it (Linux 6.5 and later). Older
// kernels do not, and it cannot be told without taking from the counter, so
// there FromFile takes it on trust: a counter-mode eventfd is accepted, and
// one Acquire(1) on it takes the whole count.
//
// FromFile sets O_NONBLOCK on the descriptor. The flag belongs to the open
// file description, so every process holding it sees the change: a C peer
// must poll(2) before it reads (see the README). A Semaphore adopted this
// way keeps every guarantee of one made by New but one: its size is not
// known, so what this process holds is not recorded, and permits it holds
// when it dies are not given back (see "When a process dies" above).
func FromFile(f *os.File) (*Semaphore, error) {
	fd, err := eventfd.Adopt(f, eventfd.Semaphore)
	if err != nil {
		return nil, fmt.Errorf("semaphore: FromFile: %w", err)
	}
	s := newSemaphore(fd, 0, false)
	s.adopted = true
	return s, nil
}

// newSemaphore returns a Semaphore on fd, or with n permits in the process
// if fd is nil; n is also the size its record will cover.
func newSemaphore(fd *eventfd.FD, n int64, strict bool) *Semaphore {
	s := &Semaphore{ms: &membership{}, size: n, strict: strict}
	if strict {
		s.ms.closed = make(chan struct{})
		s.c = counter.NewLimited(uint64(n), uint64(n), eventfd.Semaphore)
	} else {
		s.c = counter.New(uint64(n), eventfd.Semaphore)
	}
	if fd != nil {
		s.c = counter.Shared(fd)
	}
	// Nobody can be waiting on a Semaphore that is collected.
	s.cleanup = runtime.AddCleanup(s, func(h closer) { _ = h.close() }, closer{s.c, s.ms})
	return s
}

// fromParts returns the Semaphore that Inherited or Receive got: this
// process joins its record as a member holding nothing.
func fromParts(p share.Parts) (*Semaphore, error) {
	permits, roster := p.FDs[0], p.FDs[1]
	rec, err := member.Adopt(p.Record, roster)
	if err != nil {
		permits.Close()
		if errors.Is(err, member.ErrBadRecord) {
			err = fmt.Errorf("%w: %w", share.ErrMalformed, err)
		}
		return nil, err
	}
	m, err := rec.Join(0)
	if err != nil {
		rec.Close()
		permits.Close()
		return nil, err
	}
	if rec.Size() > 0 {
		permits.SetLedger(m)
	}
	s := newSemaphore(permits, rec.Size(), rec.Strict())
	s.ms.m.Store(m)
	if _, _, err := s.share(); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// share moves the permits into an eventfd if they live in the process,
// makes the record of members if there is none yet, with this process in
// it holding what its goroutines hold, and watches the other members.
func (s *Semaphore) share() (*eventfd.FD, *member.Member, error) {
	c := s.counter()
	ms := s.ms
	ms.mu.Lock()
	defer ms.mu.Unlock()
	m := ms.m.Load()
	fd, err := c.ShareWith(func(fd *eventfd.FD, free uint64) error {
		// The permits not free are held by this process's goroutines.
		held := s.size - int64(min(free, uint64(s.size)))
		joined, err := s.join(held)
		if err != nil {
			return err
		}
		if s.size > 0 {
			fd.SetLedger(joined)
		}
		m = joined
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if m == nil {
		// Adopted with FromFile: a record covering no permits, so that
		// members can still be told of each other.
		if m, err = s.join(0); err != nil {
			return nil, nil, err
		}
	}
	ms.m.Store(m)
	if !ms.watched {
		if err := m.Watch(fd, c.Queue().Serve); err != nil {
			return nil, nil, err
		}
		ms.watched = true
		if !s.adopted {
			s.enableHandOff(c, m)
		}
	}
	return fd, m, nil
}

// enableHandOff lets a Release(1) of this process hand its permit straight
// to a goroutine of this process spinning in Acquire(1), without the kernel,
// while no other member process has goroutines queued: a permit handed so
// never leaves this process, so its holdings are unchanged. On a Semaphore
// from NewWeighted it must be held, so that a Release beyond the holdings
// still panics.
func (s *Semaphore) enableHandOff(c *counter.Counter, m *member.Member) {
	strict := s.strict
	c.SetAnnounce(m.SetWaiting)
	c.SetHandOff(func() bool { return !m.OthersWaiting() && (!strict || m.Held() >= 1) })
	s.handOff.Store(true)
}

// join makes a record covering s's size and joins it holding held.
func (s *Semaphore) join(held int64) (*member.Member, error) {
	rec, err := member.Create(s.size, s.strict)
	if err != nil {
		return nil, err
	}
	m, err := rec.Join(held)
	if err != nil {
		rec.Close()
		return nil, err
	}
	return m, nil
}

// closer is what Close and the cleanup of an unreachable Semaphore close.
type closer struct {
	c  *counter.Counter
	ms *membership
}

// close leaves the record after the descriptor is closed, having stopped
// watching before, so that no reclaim writes to a closing descriptor.
func (h closer) close() error {
	h.ms.mu.Lock()
	m := h.ms.m.Load()
	h.ms.mu.Unlock()
	if m != nil {
		m.Unwatch()
	}
	err := h.c.Close()
	if err == nil {
		if m != nil {
			m.Leave()
		}
		if h.ms.closed != nil {
			h.ms.closeOnce.Do(func() { close(h.ms.closed) })
		}
	}
	return err
}

// counter returns s's count, or panics if s was not made by a constructor.
func (s *Semaphore) counter() *counter.Counter {
	if s == nil || s.c == nil {
		panic("semaphore: use of a Semaphore not made by New, NewWeighted, FromFile, Inherited or Receive")
	}
	return s.c
}

// Acquire takes n permits, blocking until they are free, ctx is done, or
// the Semaphore is closed. On success it returns nil. On failure it returns
// ctx.Err(), or an error wrapping os.ErrClosed, and takes nothing.
//
// If ctx is already done, Acquire fails even when permits are free. A
// permit taken as ctx becomes done is given back, and Acquire fails. Acquire
// with n == 0 succeeds at once; with n < 0 it panics.
//
// On a Semaphore made by New, a request larger than the permits that can
// ever be free waits until its context is done, holding up the requests of
// this process queued behind it (permits released beyond the size could
// still serve it). On one made by NewWeighted, as in x/sync, a request
// larger than the size waits for its context, or Close, alone, holding up
// nobody.
// Taking n permits is n system calls, made once n are free; a very large
// take stops between chunks of reads, giving back what it took, when ctx is
// done or s is closed. Before it queues, an Acquire that finds no permit
// tries again a few times, yielding the processor between tries (a weighted
// one on a shared Semaphore does not: each try would cost three system
// calls).
func (s *Semaphore) Acquire(ctx context.Context, n int64) error {
	if n < 0 {
		panic("semaphore: Acquire with negative n")
	}
	c := s.counter()
	if done, err := s.tryAcquire(ctx, c, n); done {
		return err
	}
	if _, err := c.Queue().Wait(ctx, uint64(n)); err != nil {
		if err == ctx.Err() {
			return err
		}
		return opError("Acquire", err)
	}
	race.Acquire(c.Race())
	return nil
}

// tryAcquire is Acquire up to its wait: it reports done, with Acquire's
// result, or that the request must queue. It is kept out of Acquire's frame,
// which every waiting goroutine keeps on its stack.
func (s *Semaphore) tryAcquire(ctx context.Context, c *counter.Counter, n int64) (done bool, err error) {
	if ctx.Err() != nil || n == 0 || s.strict && n > s.size {
		return s.acquireAtOnce(ctx, c, n)
	}
	q := c.Queue()
	if q.Busy() {
		return false, nil
	}
	var stop eventfd.Stopper
	if n > 1 {
		stop = ctxStopper{ctx}
	}
	tries := spinTakes
	if n > 1 && c.FD() != nil {
		// A weighted take on a shared count reads /proc first: trying
		// again would cost three system calls a try.
		tries = 0
	}
	var ok bool
	if n == 1 && s.handOff.Load() && c.HandedLately() {
		// Permits pass between goroutines here: wait for one without
		// a system call first.
		ok, err = spinShared(c, q)
	} else {
		ok, err = c.Take(uint64(n), stop)
		if !ok && err == nil && n == 1 && s.handOff.Load() {
			ok, err = spinShared(c, q)
		}
	}
	for i := 0; !ok && err == nil && i < tries && !q.Busy() && !s.handOff.Load(); i++ {
		runtime.Gosched()
		ok, err = c.Take(uint64(n), stop)
	}
	if ok || err != nil {
		return true, tookOrFailed(ctx, c, err)
	}
	return false, nil
}

// acquireAtOnce is Acquire for a context already done, n == 0, and a
// request that can never be served on a Semaphore made by NewWeighted.
func (s *Semaphore) acquireAtOnce(ctx context.Context, c *counter.Counter, n int64) (bool, error) {
	switch {
	case ctx.Err() != nil:
		return true, ctx.Err()
	case n == 0:
		if c.Closed() {
			return true, errClosed("Acquire")
		}
		return true, nil
	}
	// As x/sync: a request that can never be served waits for its
	// context alone, holding up nobody.
	select {
	case <-ctx.Done():
		return true, ctx.Err()
	case <-s.ms.closed:
		return true, errClosed("Acquire")
	}
}

// tookOrFailed is Acquire's result after a take that succeeded (err nil)
// or failed.
func tookOrFailed(ctx context.Context, c *counter.Counter, err error) error {
	switch {
	case err == nil:
		race.Acquire(c.Race())
		return nil
	case errors.Is(err, eventfd.ErrInterrupted):
		return ctx.Err()
	}
	return opError("Acquire", err)
}

// spinTakes is how many more times an Acquire that finds no permit tries
// again, yielding the processor between tries, before it queues. A permit
// handed back within microseconds, as in a hand-off between two goroutines
// or two processes, is then taken without parking and waking anybody, which
// is several times faster than any wakeup; a wait that lasts longer pays
// these tries once (a few microseconds of CPU, and the system calls of a
// shared Semaphore; a weighted request on a shared Semaphore, whose take
// reads /proc first, does not try again). Tries stop as soon as a
// goroutine of this process is queued, so that nobody overtakes the queue.
const spinTakes = 20

// spinShared is the tries of an Acquire(1) on a shared Semaphore: it
// registers to be handed a permit released by a goroutine of this process
// (no system call on either side), and looks at the kernel, for permits
// from elsewhere, at every try — or only at the last, while permits pass
// between goroutines here, so that those tries cost no system call.
//
// It is never registered while it takes from the kernel, so that it cannot
// end up with two permits, one of which it would have to give back, perhaps
// after Close.
func spinShared(c *counter.Counter, q *waitq.Queue) (bool, error) {
	every := 1
	if c.HandedLately() {
		every = spinTakes // once, at the last try
	}
	c.Spin()
	for i := 0; i < spinTakes && !q.Busy(); i++ {
		if c.TakeHanded() {
			return true, nil // the registration is spent
		}
		runtime.Gosched()
		if (i+1)%every != 0 {
			continue
		}
		if !c.Unspin() {
			return takeOwed(c)
		}
		if ok, err := c.Take(1, nil); ok || err != nil {
			c.TookFromKernel()
			return ok, err
		}
		c.Spin()
	}
	if !c.Unspin() {
		return takeOwed(c)
	}
	return false, nil
}

// takeOwed picks up the permit that a Release claimed this goroutine for as
// it left: it is, or is about to be, in hand.
func takeOwed(c *counter.Counter) (bool, error) {
	for !c.TakeHanded() {
		runtime.Gosched()
	}
	return true, nil
}

// ctxStopper stops a long take when its context is done.
type ctxStopper struct{ ctx context.Context }

func (c ctxStopper) Stopped() bool { return c.ctx.Err() != nil }

// TryAcquire takes n permits if they are free now and no goroutine of this
// process is waiting ahead; it reports whether it did, and on failure takes
// nothing. It returns false on a closed Semaphore. It panics if n < 0.
func (s *Semaphore) TryAcquire(n int64) bool {
	if n < 0 {
		panic("semaphore: TryAcquire with negative n")
	}
	c := s.counter()
	if n == 0 {
		return !c.Closed()
	}
	if c.Queue().Busy() {
		return false
	}
	if ok, _ := c.Take(uint64(n), nil); ok {
		race.Acquire(c.Race())
		return true
	}
	return false
}

// Release gives back n permits, waking waiters in any process. It panics if
// n < 0, if the Semaphore is closed, or if the counter would pass
// 0xfffffffffffffffe, the most an eventfd holds; it never blocks, unless a
// process holding the descriptor has cleared O_NONBLOCK on it and the counter
// is full (see the README's limits).
//
// On a Semaphore made by NewWeighted, Release panics, as x/sync's does, when
// n is more than this process holds ("semaphore: released more than held").
// On one made by New, such a Release is allowed: it gives permits this
// process did not acquire — for another process, or to signal — and the
// counter simply grows; what goes beyond this process's holdings is not
// anybody's holding (see "When a process dies").
func (s *Semaphore) Release(n int64) {
	if n < 0 {
		panic("semaphore: Release with negative n")
	}
	c := s.counter()
	if n == 0 {
		if c.Closed() {
			panic("semaphore: Release on closed Semaphore")
		}
		return
	}
	race.ReleaseMerge(c.Race())
	switch err := c.Add(uint64(n)); err {
	case nil:
	case counter.ErrAboveLimit, member.ErrOverRelease:
		panic("semaphore: released more than held")
	case os.ErrClosed:
		panic("semaphore: Release on closed Semaphore")
	case eventfd.ErrOverflow:
		panic(fmt.Sprintf("semaphore: Release(%d) would overflow the counter", n))
	default:
		panic("semaphore: Release: " + err.Error())
	}
}

// Value reports the permits free now: once s is shared, as the kernel
// reports them in /proc/self/fdinfo. Other processes may change it at any
// moment.
func (s *Semaphore) Value() (uint64, error) {
	v, err := s.counter().Value()
	if err != nil {
		return 0, opError("Value", err)
	}
	return v, nil
}

// File returns a new descriptor for the Semaphore's eventfd, for a process
// that does not use this package. The caller closes it; closing it does not
// affect s. It is close-on-exec: to hand it to a child, pass it in
// exec.Cmd.ExtraFiles.
func (s *Semaphore) File() (*os.File, error) {
	fd, _, err := s.share()
	if err != nil {
		return nil, opError("File", err)
	}
	f, err := fd.Dup()
	if err != nil {
		return nil, opError("File", err)
	}
	return f, nil
}

// Close closes this process's handle. Goroutines blocked in Acquire return an
// error wrapping os.ErrClosed, as do later calls; Release panics. Other
// processes holding the eventfd are not affected. Close returns an error
// wrapping os.ErrClosed if s is already closed.
func (s *Semaphore) Close() error {
	if err := (closer{s.counter(), s.ms}).close(); err != nil {
		return opError("Close", err)
	}
	s.cleanup.Stop()
	return nil
}

func errClosed(op string) error {
	return fmt.Errorf("semaphore: %s: %w", op, eventfd.Closed("Semaphore"))
}

// opError names the operation that failed, and says "use of closed
// Semaphore" for a descriptor closed under it.
func opError(op string, err error) error {
	if errors.Is(err, os.ErrClosed) {
		return errClosed(op)
	}
	return fmt.Errorf("semaphore: %s: %w", op, err)
}

// Holdings is what the record of a Semaphore's members says, for metrics.
// It is read from memory shared by the members: no system call per member.
type Holdings struct {
	// Size is the number of permits the record covers: n of New or
	// NewWeighted, 0 for a Semaphore adopted with FromFile.
	Size int64
	// Held is the number of permits the members hold now.
	Held uint64
	// Holders is the number of member processes holding at least one
	// permit, and Members the number of member processes.
	Holders, Members int
	// Reclaims is the number of members that died and whose holdings
	// were given back; Reclaimed is the number of permits given back.
	Reclaims, Reclaimed uint64
	// InFlight is the number of permits that members were giving, in the
	// system call that does it, as they died, and those of a member whose
	// reclaimer died before it could say whether it gave them back: each
	// may have been lost (see "When a process dies"). For a moment it also
	// counts the holdings of a member being reclaimed: their write can
	// serve an Acquire before the reclaim is counted.
	InFlight uint64
}

// Holdings reports what the members of s hold. Before s is first shared,
// this process is its one member, and its goroutines hold what is not free.
func (s *Semaphore) Holdings() (Holdings, error) {
	c := s.counter()
	if m := s.ms.m.Load(); m != nil {
		if c.Closed() {
			return Holdings{}, errClosed("Holdings")
		}
		st := m.Record().Stats()
		return Holdings{
			Size: st.Size, Held: st.Held, Holders: st.Holders, Members: st.Members,
			Reclaims: st.Reclaims, Reclaimed: st.Reclaimed, InFlight: st.Uncertain,
		}, nil
	}
	free, err := c.Value()
	if err != nil {
		return Holdings{}, opError("Holdings", err)
	}
	h := Holdings{Size: s.size, Members: 1}
	if uint64(s.size) > free {
		h.Held, h.Holders = uint64(s.size)-free, 1
	}
	return h, nil
}
