// Package counter is the count behind a Semaphore or a Signal: a number in
// the process until the primitive is first shared, then an eventfd.
//
// Until a primitive is handed out (File, PassTo, Send), nobody outside this
// process can see its count, so it lives in the process, guarded by a
// mutex: that costs what golang.org/x/sync/semaphore costs, where a system
// call costs a hundred times more. Share moves the count into a new eventfd
// once, under the mutex; from then on the eventfd is the one truth, and
// other processes, C and Python peers and the kernel may change it. A
// primitive made from a descriptor (FromFile, Inherited, Receive) is shared
// from the start.
package counter

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/eventsync/eventsync/internal/eventfd"
	"github.com/eventsync/eventsync/internal/race"
	"github.com/eventsync/eventsync/internal/waitq"
)

// A Counter is a count that reads take from, in the way of its Mode, and
// the queue of this process's goroutines waiting on it: all that a
// Semaphore or a Signal is made of.
type Counter struct {
	fd   atomic.Pointer[eventfd.FD] // nil while the count lives in local
	mode eventfd.Mode
	q    *waitq.Queue

	// A shared Semaphore-mode count hands a unit posted here straight to a
	// goroutine of this process that spins for one (see Spin), when
	// handOff allows: spinners counts those spinning and not yet handed
	// one, inHand the units handed and not yet picked up.
	spinners atomic.Int64
	inHand   atomic.Int64
	handed   atomic.Bool // the last unit a spinner got was handed
	handOff  atomic.Pointer[func() bool]
	announce atomic.Pointer[func(bool)]

	mu     sync.Mutex
	local  uint64
	limit  uint64 // the most local may hold
	closed bool
}

// ErrAboveLimit refuses a post that would take a count above its limit
// (see NewLimited).
var ErrAboveLimit = errors.New("count above its limit")

// New returns a Counter holding init in the process.
func New(init uint64, mode eventfd.Mode) *Counter {
	return NewLimited(init, eventfd.MaxCount, mode)
}

// NewLimited returns a Counter holding init in the process, whose posts
// fail with ErrAboveLimit while the count lives in the process and would
// pass limit.
func NewLimited(init, limit uint64, mode eventfd.Mode) *Counter {
	c := &Counter{local: init, limit: limit, mode: mode}
	c.q = waitq.New(nil, (*policy)(c))
	return c
}

// Shared returns a Counter on fd.
func Shared(fd *eventfd.FD) *Counter {
	c := &Counter{mode: fd.Mode()}
	c.fd.Store(fd)
	c.q = waitq.New(fd, (*policy)(c))
	return c
}

// Queue returns the queue of this process's waiters.
func (c *Counter) Queue() *waitq.Queue { return c.q }

// Race is the address at which the race detector is told of the edges
// between a post and the wait that sees it.
func (c *Counter) Race() unsafe.Pointer { return unsafe.Pointer(c) }

// FD returns the eventfd, or nil while the count lives in the process.
func (c *Counter) FD() *eventfd.FD { return c.fd.Load() }

// inProcess locks c and reports true if the count lives in the process;
// otherwise it leaves c unlocked and returns the eventfd.
func (c *Counter) inProcess() (*eventfd.FD, bool) {
	if fd := c.fd.Load(); fd != nil {
		return fd, false
	}
	c.mu.Lock()
	if fd := c.fd.Load(); fd != nil { // moved meanwhile
		c.mu.Unlock()
		return fd, false
	}
	return nil, true
}

// Take takes n from a Semaphore-mode count, all or nothing, and reports
// whether it did (see eventfd.FD.Take).
func (c *Counter) Take(n uint64, stop eventfd.Stopper) (bool, error) {
	fd, local := c.inProcess()
	if !local {
		return fd.Take(n, stop)
	}
	switch {
	case c.closed:
		c.mu.Unlock()
		return false, os.ErrClosed
	case c.local < n:
		c.mu.Unlock()
		return false, nil
	}
	c.local -= n
	c.mu.Unlock()
	return true, nil
}

// Read takes the whole of a Counter-mode count; it returns 0 when the count
// is zero.
func (c *Counter) Read() (uint64, error) {
	fd, local := c.inProcess()
	if !local {
		return fd.Read()
	}
	defer c.mu.Unlock()
	if c.closed {
		return 0, os.ErrClosed
	}
	v := c.local
	c.local = 0
	return v, nil
}

// Add adds n, or returns eventfd.ErrOverflow and adds nothing if the sum
// would pass eventfd.MaxCount.
func (c *Counter) Add(n uint64) error {
	return c.post(n, false)
}

// Saturate adds n, or as much of it as fits below eventfd.MaxCount.
func (c *Counter) Saturate(n uint64) error {
	return c.post(n, true)
}

func (c *Counter) post(n uint64, saturate bool) error {
	fd, local := c.inProcess()
	if !local {
		if n == 1 && c.spinners.Load() > 0 && c.handTo(fd) {
			return nil
		}
		err := fd.Write(n)
		if err == eventfd.ErrOverflow && saturate {
			err = fd.Saturate(n)
		}
		if err == nil {
			// Waiters of this process are served now, by this goroutine,
			// rather than after the netpoller has woken the poller. The
			// count is in the kernel first, so a waiter in another process
			// has the same chance at it.
			c.q.Serve()
		}
		return err
	}
	switch {
	case c.closed:
		c.mu.Unlock()
		return os.ErrClosed
	case n <= c.limit && c.local <= c.limit-n:
		c.local += n
	case c.limit < eventfd.MaxCount:
		c.mu.Unlock()
		return ErrAboveLimit
	case saturate:
		c.local = eventfd.MaxCount
	default:
		c.mu.Unlock()
		return eventfd.ErrOverflow
	}
	c.mu.Unlock()
	c.q.Serve()
	return nil
}

// SetHandOff lets posts of one unit go straight to a spinning goroutine of
// this process, without the kernel, whenever allow reports true.
func (c *Counter) SetHandOff(allow func() bool) { c.handOff.Store(&allow) }

// SetAnnounce makes f hear whether goroutines of this process are queued.
func (c *Counter) SetAnnounce(f func(on bool)) { c.announce.Store(&f) }

// handTo hands one unit to a spinner: it claims one spinner, which then
// picks the unit up (TakeHanded) or, if it was about to leave, waits for it.
func (c *Counter) handTo(fd *eventfd.FD) bool {
	allow := c.handOff.Load()
	// Queued waiters come first; and the record that allow reads is
	// unmapped once the descriptor is closed.
	if allow == nil || c.q.Busy() || !fd.IfOpen(*allow) {
		return false
	}
	if !takeOne(&c.spinners) {
		return false
	}
	c.inHand.Add(1)
	return true
}

// takeOne takes one from n if n is above zero, and reports whether it did.
func takeOne(n *atomic.Int64) bool {
	for {
		v := n.Load()
		if v <= 0 {
			return false
		}
		if n.CompareAndSwap(v, v-1) {
			return true
		}
	}
}

// Spin registers the caller as spinning for one unit of a shared count:
// until Unspin, a post of one may be handed to it.
func (c *Counter) Spin() { c.spinners.Add(1) }

// TakeHanded picks up a unit handed to a spinner, and reports whether there
// was one. The caller's registration is then spent: it does not Unspin.
func (c *Counter) TakeHanded() bool {
	if !takeOne(&c.inHand) {
		return false
	}
	if !c.handed.Load() {
		c.handed.Store(true)
	}
	return true
}

// HandedLately reports whether the last unit a spinner got was handed to
// it, rather than taken from the kernel.
func (c *Counter) HandedLately() bool { return c.handed.Load() }

// TookFromKernel notes that a spinner found its unit in the kernel.
func (c *Counter) TookFromKernel() {
	if c.handed.Load() {
		c.handed.Store(false)
	}
}

// Unspin ends the caller's registration and reports true, or reports false
// if every registration left has been claimed by a post: a unit is then
// owed to the caller, which must pick it up with TakeHanded.
func (c *Counter) Unspin() bool { return takeOne(&c.spinners) }

// Pending reports whether the count is above zero, without taking it.
func (c *Counter) Pending() (bool, error) {
	fd, local := c.inProcess()
	if !local {
		return fd.Pending()
	}
	defer c.mu.Unlock()
	if c.closed {
		return false, os.ErrClosed
	}
	return c.local > 0, nil
}

// Value reports the count: once shared, as the kernel reports it in
// /proc/self/fdinfo.
func (c *Counter) Value() (uint64, error) {
	fd, local := c.inProcess()
	if !local {
		return fd.Value()
	}
	defer c.mu.Unlock()
	if c.closed {
		return 0, os.ErrClosed
	}
	return c.local, nil
}

// Closed reports whether Close has begun.
func (c *Counter) Closed() bool {
	fd, local := c.inProcess()
	if !local {
		return fd.Closed()
	}
	defer c.mu.Unlock()
	return c.closed
}

// Share returns the eventfd, moving the count into a new one if it lives in
// the process. It fails only if c is closed or no eventfd can be made; the
// count then stays where it was. Waiters queued before the move keep their
// place: the queue's poller serves them from the eventfd.
func (c *Counter) Share() (*eventfd.FD, error) {
	return c.ShareWith(nil)
}

// ShareWith is Share that, when it moves the count, calls prepare with the
// new eventfd and the count it holds, before any other goroutine can use
// the eventfd; if prepare fails, the count stays in the process.
func (c *Counter) ShareWith(prepare func(fd *eventfd.FD, count uint64) error) (*eventfd.FD, error) {
	fd, local := c.inProcess()
	if !local {
		return fd, nil
	}
	if c.closed {
		c.mu.Unlock()
		return nil, os.ErrClosed
	}
	fd, err := eventfd.New(c.local, c.mode)
	if err != nil {
		c.mu.Unlock()
		return nil, err
	}
	if prepare != nil {
		if err := prepare(fd, c.local); err != nil {
			c.mu.Unlock()
			fd.Close()
			return nil, err
		}
	}
	c.local = 0
	c.fd.Store(fd)
	c.mu.Unlock()
	c.q.Share(fd)
	return fd, nil
}

// Close marks c closed, so that later posts fail with os.ErrClosed, fails
// every waiter, and closes the eventfd once nothing uses it. It returns
// os.ErrClosed if c was already closed.
func (c *Counter) Close() error {
	c.mu.Lock()
	was := c.closed
	c.closed = true
	c.mu.Unlock()
	if was {
		return os.ErrClosed
	}
	err := c.q.Close()
	if fd := c.fd.Load(); fd != nil {
		err = errors.Join(err, fd.Close())
	}
	return err
}

// policy serves c's waiters: a Semaphore-mode waiter takes what it wants,
// all or nothing; a Counter-mode waiter takes the whole count.
type policy Counter

func (p *policy) Take(want uint64, stop waitq.Stopper) (uint64, error) {
	c := (*Counter)(p)
	if c.mode == eventfd.Counter {
		return c.Read()
	}
	ok, err := c.Take(want, stop)
	if !ok {
		return 0, err
	}
	return want, nil
}

// GiveBack returns what a waiter took, for one whose context was done
// first. It cannot overflow a Semaphore: those permits were there a moment
// ago; a Signal's count saturates.
func (p *policy) GiveBack(n uint64) {
	if n > 0 {
		_ = (*Counter)(p).Saturate(n)
	}
}

func (p *policy) Waiting(on bool) {
	if f := (*Counter)(p).announce.Load(); f != nil {
		(*f)(on)
	}
}

func (p *policy) Pending() (bool, error) {
	c := (*Counter)(p)
	pending, err := c.Pending()
	if pending {
		// A receive from the Ready channel this closes sees the post.
		race.Acquire(c.Race())
	}
	return pending, err
}
