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
	"os"
	"sync"
	"sync/atomic"

	"github.com/eventsync/eventsync/internal/eventfd"
)

// A Counter is a count that reads take from, in the way of its Mode.
type Counter struct {
	fd     atomic.Pointer[eventfd.FD] // nil while the count lives in local
	mode   eventfd.Mode
	posted func() // called after a post to local, to serve waiters

	mu     sync.Mutex
	local  uint64
	closed bool
}

// New returns a Counter holding init in the process. posted is called
// after every post (Add, Saturate) to the count in the process, outside
// the lock: it serves the waiters the post may satisfy.
func New(init uint64, mode eventfd.Mode, posted func()) *Counter {
	return &Counter{local: init, mode: mode, posted: posted}
}

// Shared returns a Counter on fd.
func Shared(fd *eventfd.FD, posted func()) *Counter {
	c := &Counter{mode: fd.Mode(), posted: posted}
	c.fd.Store(fd)
	return c
}

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
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return false, os.ErrClosed
	case c.local < n:
		return false, nil
	}
	c.local -= n
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
		err := fd.Write(n)
		if err == eventfd.ErrOverflow && saturate {
			err = fd.Saturate(n)
		}
		if err == nil {
			// Waiters of this process are served now, by this goroutine,
			// rather than after the netpoller has woken the poller. The
			// count is in the kernel first, so a waiter in another process
			// has the same chance at it.
			c.posted()
		}
		return err
	}
	switch {
	case c.closed:
		c.mu.Unlock()
		return os.ErrClosed
	case n <= eventfd.MaxCount && c.local <= eventfd.MaxCount-n:
		c.local += n
	case saturate:
		c.local = eventfd.MaxCount
	default:
		c.mu.Unlock()
		return eventfd.ErrOverflow
	}
	c.mu.Unlock()
	c.posted()
	return nil
}

// Pending reports whether the count is above zero, without taking it.
func (c *Counter) Pending() (bool, error) {
	v, err := c.peek(func(fd *eventfd.FD) (uint64, error) {
		pending, err := fd.Pending()
		if pending {
			return 1, err
		}
		return 0, err
	})
	return v > 0, err
}

// Value reports the count: once shared, as the kernel reports it in
// /proc/self/fdinfo.
func (c *Counter) Value() (uint64, error) {
	return c.peek((*eventfd.FD).Value)
}

func (c *Counter) peek(shared func(*eventfd.FD) (uint64, error)) (uint64, error) {
	fd, local := c.inProcess()
	if !local {
		return shared(fd)
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
// count then stays where it was.
func (c *Counter) Share() (*eventfd.FD, error) {
	fd, local := c.inProcess()
	if !local {
		return fd, nil
	}
	defer c.mu.Unlock()
	if c.closed {
		return nil, os.ErrClosed
	}
	fd, err := eventfd.New(c.local, c.mode)
	if err != nil {
		return nil, err
	}
	c.local = 0
	c.fd.Store(fd)
	return fd, nil
}

// Close marks c closed: later posts fail with os.ErrClosed. It returns the
// eventfd, for the caller to close once nothing waits on it any more, and
// whether c was already closed.
func (c *Counter) Close() (*eventfd.FD, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	was := c.closed
	c.closed = true
	return c.fd.Load(), was
}
