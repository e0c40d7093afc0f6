package member

import (
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/eventsync/eventsync/internal/eventfd"
)

// The record's layout. It is part of the wire format between Go members:
// change magic if it ever changes.
const (
	magic      = "evsyrec1"
	headerSize = 128
	slotSize   = 128
	// slotCount is how many members a record holds at once. The memfd is
	// sparse: pages of slots never used take no memory.
	slotCount = 4096
	// Size is the length of a record in bytes.
	Size = headerSize + slotCount*slotSize
)

// flagStrict marks a record whose Semaphore refuses a Release beyond what
// the releasing member holds (NewWeighted, as x/sync does).
const flagStrict = 1

// The phases of a slot, in the low two bits of its state; the rest is a
// generation, bumped each time the slot is freed, so that a watcher that
// saw one member never acts on the next one to use the slot.
const (
	phaseFree       = 0
	phaseJoining    = 1 // being filled in; not yet watched
	phaseAlive      = 2
	phaseReclaiming = 3 // a survivor is giving back what it held
)

func pack(gen, phase uint64) uint64 { return gen<<2 | phase }
func phaseOf(st uint64) uint64      { return st & 3 }
func genOf(st uint64) uint64        { return st >> 2 }

type header struct {
	magic     [8]byte
	size      atomic.Int64
	flags     atomic.Uint64
	used      atomic.Uint64 // slots ever used, where scans stop
	reclaims  atomic.Uint64 // dead members reclaimed
	reclaimed atomic.Uint64 // permits given back for them
	uncertain atomic.Uint64 // permits they had in flight: perhaps lost
	// waiting counts the members with goroutines queued. It may count one
	// too many after a member died at the wrong moment, never too few.
	waiting atomic.Int64
	_       [headerSize - 64]byte
}

// lanes is how many reads one member may have under way at once; more
// wait for a lane.
const (
	lanes    = 8
	laneMask = 1<<lanes - 1
	// maxHeld is the most a member's holdings can record.
	maxHeld = 1<<(64-lanes) - 1
)

type slot struct {
	state atomic.Uint64
	pid   atomic.Int64
	start atomic.Uint64 // start time, clock ticks after boot
	pidns atomic.Uint64 // inode of the PID namespace
	// held is the holdings, shifted left by lanes, and a bit for each lane
	// with a read under way: one word, so that a read's landing is added
	// and its lane disarmed in one step.
	held atomic.Uint64
	// giving is what writes under way may give: struck from held before
	// the write, so perhaps lost if the member dies before making it.
	giving atomic.Uint64
	// waiting is 1 while the member has goroutines queued.
	waiting atomic.Uint64
	_       [8]byte
	// landing is where the reads of armed lanes land: the kernel writes
	// what it takes here, as part of the read.
	landing [lanes]uint64
}

// ErrBadRecord means a descriptor passed as a record is not one.
var ErrBadRecord = errors.New("not a membership record")

// ErrFull means a record has no free slot for another member.
var ErrFull = errors.New("membership record is full")

// A Record is one process's mapping of a shared Semaphore's record, and
// the roster eventfd that members write to when they join.
type Record struct {
	sysfd  int
	mem    []byte
	hdr    *header
	slots  *[slotCount]slot
	roster *eventfd.FD
}

// Create makes a record covering size permits.
func Create(size int64, strict bool) (*Record, error) {
	roster, err := eventfd.New(0, eventfd.Counter)
	if err != nil {
		return nil, err
	}
	sysfd, mem, err := sysCreate(Size)
	if err != nil {
		roster.Close()
		return nil, err
	}
	r := newRecord(sysfd, mem, roster)
	copy(r.hdr.magic[:], magic)
	r.hdr.size.Store(size)
	if strict {
		r.hdr.flags.Store(flagStrict)
	}
	if err := sysSeal(sysfd); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Adopt maps the record that sysfd holds, checking that it is one, and
// takes ownership of sysfd and roster: on failure both are closed.
func Adopt(sysfd int, roster *eventfd.FD) (*Record, error) {
	mem, err := sysMap(sysfd, Size)
	if err != nil {
		sysClose(sysfd)
		roster.Close()
		return nil, err
	}
	r := newRecord(sysfd, mem, roster)
	if string(r.hdr.magic[:]) != magic || r.hdr.size.Load() < 0 {
		r.Close()
		return nil, fmt.Errorf("descriptor %d: %w", sysfd, ErrBadRecord)
	}
	return r, nil
}

func newRecord(sysfd int, mem []byte, roster *eventfd.FD) *Record {
	return &Record{
		sysfd:  sysfd,
		mem:    mem,
		hdr:    (*header)(unsafe.Pointer(&mem[0])),
		slots:  (*[slotCount]slot)(unsafe.Pointer(&mem[headerSize])),
		roster: roster,
	}
}

// Close unmaps r and closes its descriptors: for a record never joined, or
// left by its last member in this process.
func (r *Record) Close() {
	sysUnmap(r.mem)
	sysClose(r.sysfd)
	r.roster.Close()
}

// Roster returns the eventfd that joiners write to.
func (r *Record) Roster() *eventfd.FD { return r.roster }

// Export returns a duplicate of the record's descriptor for another
// process; the caller owns it.
func (r *Record) Export() (int, error) { return sysDup(r.sysfd) }

// Size is the number of permits the record covers.
func (r *Record) Size() int64 { return r.hdr.size.Load() }

// Strict reports whether a Release beyond the releasing member's holdings
// is refused.
func (r *Record) Strict() bool { return r.hdr.flags.Load()&flagStrict != 0 }

// Stats is what the record knows of its members, read from memory.
type Stats struct {
	Size      int64  // permits the record covers
	Held      uint64 // permits its members hold
	Holders   int    // member processes holding at least one
	Members   int    // member processes
	Reclaims  uint64 // members that died and were reclaimed
	Reclaimed uint64 // permits given back for them
	Uncertain uint64 // permits they had in flight as they died, or that a reclaim had
}

// Stats reads the totals and scans the slots in use.
func (r *Record) Stats() Stats {
	st := Stats{
		Size:      r.hdr.size.Load(),
		Reclaims:  r.hdr.reclaims.Load(),
		Reclaimed: r.hdr.reclaimed.Load(),
		Uncertain: r.hdr.uncertain.Load(),
	}
	type proc struct{ pid, start uint64 }
	held := make(map[proc]int64)
	used := min(r.hdr.used.Load(), slotCount)
	for i := range used {
		s := &r.slots[i]
		switch phaseOf(s.state.Load()) {
		case phaseReclaiming:
			// Being given back, or stuck: the survivor giving it back
			// died before it could say whether its write was made.
			st.Uncertain += s.holdings() + s.giving.Load()
			continue
		case phaseAlive:
		default:
			continue
		}
		p := proc{uint64(s.pid.Load()), s.start.Load()}
		h := s.holdings()
		held[p] += int64(h)
		st.Held += h
	}
	st.Members = len(held)
	for _, h := range held {
		if h > 0 {
			st.Holders++
		}
	}
	return st
}

// A Member is one handle's slot in a record: the ledger of what it takes
// and gives (see eventfd.Ledger).
type Member struct {
	rec    *Record
	s      *slot
	idx    int
	gen    uint64
	size   uint64 // the record's size, up to maxHeld
	strict bool
	free   atomic.Uint32 // a bit for each lane not in use

	// permits is the eventfd a reclaim writes to, and reclaimed is called
	// after, to serve this process's waiters.
	permits   *eventfd.FD
	reclaimed func()

	// watching maps a slot index to the generation this member watches
	// there; it belongs to the watcher, under its lock.
	watching map[int]watch
}

// Join adds this process to r as a member holding held permits, and
// announces it on the roster. It takes ownership of r: Leave gives it up.
func (r *Record) Join(held int64) (*Member, error) {
	id, err := self()
	if err != nil {
		return nil, err
	}
	size := uint64(min(r.hdr.size.Load(), maxHeld))
	h := min(uint64(max(held, 0)), size)
	for i := range r.slots {
		s := &r.slots[i]
		st := s.state.Load()
		if phaseOf(st) != phaseFree || !s.state.CompareAndSwap(st, pack(genOf(st), phaseJoining)) {
			continue
		}
		s.pid.Store(id.pid)
		s.start.Store(id.start)
		s.pidns.Store(id.pidns)
		s.held.Store(h << lanes)
		s.giving.Store(0)
		s.waiting.Store(0)
		s.state.Store(pack(genOf(st), phaseAlive))
		for {
			u := r.hdr.used.Load()
			if u >= uint64(i+1) || r.hdr.used.CompareAndSwap(u, uint64(i+1)) {
				break
			}
		}
		// Every member's watcher looks at the slots again.
		_ = r.roster.Write(1)
		m := &Member{rec: r, s: s, idx: i, gen: genOf(st), size: size, strict: r.Strict()}
		m.free.Store(laneMask)
		return m, nil
	}
	return nil, ErrFull
}

// Record returns the record m belongs to.
func (m *Member) Record() *Record { return m.rec }

// Held reports what m holds.
func (m *Member) Held() uint64 { return m.s.held.Load() >> lanes }

// holdings is what the member of s holds, counting what landed in armed
// lanes: once it is dead, nothing changes under this.
func (s *slot) holdings() uint64 {
	w := s.held.Load()
	h := w >> lanes
	for i := range lanes {
		if w&(1<<i) != 0 {
			h += atomic.LoadUint64(&s.landing[i])
		}
	}
	return h
}

// Arm takes a free lane, zeroes its landing word and marks it armed, and
// returns it for one read to land in.
func (m *Member) Arm() (int, *uint64) {
	var i int
	for {
		f := m.free.Load()
		if f == 0 {
			runtime.Gosched() // lanes goroutines of this process are reading
			continue
		}
		i = bits.TrailingZeros32(f)
		if m.free.CompareAndSwap(f, f&^(1<<i)) {
			break
		}
	}
	atomic.StoreUint64(&m.s.landing[i], 0)
	m.s.held.Or(1 << i)
	return i, &m.s.landing[i]
}

// Landed adds what landed in lane i to the holdings, up to the size, and
// disarms the lane, in one compare-and-swap.
func (m *Member) Landed(i int) {
	got := atomic.LoadUint64(&m.s.landing[i])
	for {
		w := m.s.held.Load()
		h := w >> lanes
		h += min(got, m.size-min(h, m.size))
		if m.s.held.CompareAndSwap(w, h<<lanes|w&laneMask&^(1<<i)) {
			break
		}
	}
	m.free.Or(1 << i)
}

// ErrOverRelease refuses a give beyond a strict member's holdings.
var ErrOverRelease = errors.New("released more than held")

// Giving strikes n permits, or what m holds if less, from its holdings
// before the write that gives them; on a strict record it refuses to give
// more than m holds. What may be lost is marked first, so that a death at
// any point is counted.
func (m *Member) Giving(n uint64) (uint64, error) {
	mark := min(n, m.size)
	m.s.giving.Add(mark)
	for {
		w := m.s.held.Load()
		h := w >> lanes
		if m.strict && h < n {
			m.s.giving.Add(-mark)
			return 0, ErrOverRelease
		}
		debit := min(h, n)
		if m.s.held.CompareAndSwap(w, (h-debit)<<lanes|w&laneMask) {
			return debit, nil
		}
	}
}

// Gave ends a give; if the write was not made, the holdings are restored.
func (m *Member) Gave(n, debit uint64, written bool) {
	if !written {
		m.s.held.Add(debit << lanes)
	}
	m.s.giving.Add(-min(n, m.size))
}

// SetWaiting records whether m's process has goroutines queued. The header's
// count goes up before the slot says so and down after, so that a death
// between the two leaves it too high (which only stops hand-offs in other
// processes, see OthersWaiting), never too low.
func (m *Member) SetWaiting(on bool) {
	if on {
		m.rec.hdr.waiting.Add(1)
		m.s.waiting.Store(1)
		return
	}
	m.s.waiting.Store(0)
	m.rec.hdr.waiting.Add(-1)
}

// OthersWaiting reports whether another member has goroutines queued.
func (m *Member) OthersWaiting() bool {
	w := m.rec.hdr.waiting.Load()
	if m.s.waiting.Load() == 1 {
		w--
	}
	return w > 0
}

// Unwatch stops this process watching for m: call it before m's permits
// descriptor closes, so that no reclaim writes to it.
func (m *Member) Unwatch() { unwatch(m) }

// Leave ends m's membership as its handle closes: it stops watching, and
// if m holds nothing it frees the slot and unmaps the record. A member
// still holding permits stays in the record, mapped, for as long as the
// process lives, so that they come back when it dies.
func (m *Member) Leave() {
	unwatch(m)
	if m.s.held.Load() != 0 || m.s.giving.Load() != 0 {
		return
	}
	if m.s.state.CompareAndSwap(pack(m.gen, phaseAlive), pack(m.gen+1, phaseFree)) {
		m.rec.Close()
	}
}

// reclaim gives back what the member in slot i held, if it is still the
// generation gen and nobody else has begun: the compare-and-swap makes
// exactly one survivor do it. A reclaimer that dies after the swap leaves
// the slot reclaiming, for ever, and Stats counts its permits as in doubt:
// nobody can tell whether the write was made.
func (m *Member) reclaim(i int, gen uint64) {
	r := m.rec
	s := &r.slots[i]
	if !s.state.CompareAndSwap(pack(gen, phaseAlive), pack(gen, phaseReclaiming)) {
		return
	}
	held := min(s.holdings(), uint64(max(r.hdr.size.Load(), 0)))
	giving := s.giving.Load()
	if held > 0 {
		if err := m.permits.Restore(held); err != nil {
			// This handle closed under the watcher: the permits are lost,
			// and counted as such.
			giving += held
			held = 0
		}
	}
	r.hdr.reclaimed.Add(held)
	r.hdr.uncertain.Add(giving)
	r.hdr.reclaims.Add(1)
	if s.waiting.Swap(0) == 1 {
		r.hdr.waiting.Add(-1)
	}
	s.held.Store(0)
	s.giving.Store(0)
	s.state.Store(pack(gen+1, phaseFree))
	if held > 0 && m.reclaimed != nil {
		m.reclaimed()
	}
}

// Watch makes this process watch the other members of m's record, giving
// back what each held when it dies by writing to permits, then calling
// reclaimed. Without pidfds (Linux before 5.3) it does nothing.
func (m *Member) Watch(permits *eventfd.FD, reclaimed func()) error {
	m.permits = permits
	m.reclaimed = reclaimed
	return watchMember(m)
}

// identity is who a process is: a PID, told from a later process with the
// same PID by its start time, in a PID namespace.
type identity struct {
	pid   int64
	start uint64
	pidns uint64
}

var selfID struct {
	once sync.Once
	id   identity
	err  error
}

func self() (identity, error) {
	selfID.once.Do(func() {
		selfID.id, selfID.err = sysSelf()
		if selfID.err != nil {
			selfID.err = fmt.Errorf("reading this process's identity: %w", selfID.err)
		}
	})
	return selfID.id, selfID.err
}
