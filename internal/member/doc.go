// Package member records which processes hold a shared Semaphore's permits,
// so that when one dies, a survivor gives back what it held.
//
// # The record
//
// A Semaphore shared with other processes carries, beside its eventfd, a
// record: a small memfd that every member process maps. Its header holds
// the size the record covers (the n the Semaphore was made with) and
// running totals; each member has a 64-byte slot holding who it is (process
// ID, start time, PID namespace) and what it holds. A process joins when it
// shares the Semaphore (File, PassTo, Send) or takes it (Inherited,
// Receive), and each of its handles is one member.
//
// # Holdings
//
// A member's holdings are the permits it took and has not given back, up
// to the size. A take is recorded after the read that made it, a give
// before the write that makes it, so a process killed between the two
// loses the permits in flight and never makes one: the window is one
// system call wide, and the slot marks what was in flight so that the loss
// can be counted. Gives beyond the holdings (a Semaphore used to signal,
// permits handed to another process) are not anybody's holdings; nor are
// takes beyond the size: nothing they take comes back.
//
// # Watching
//
// Each member process watches every other member of the records it
// belongs to: a pidfd per member, all in one epoll instance that the Go
// netpoller waits on, so a thousand members cost a thousand descriptors,
// one goroutine and no thread. A joiner writes to the record's roster
// eventfd, which every member's epoll instance has edge-triggered, so each
// looks at the slots again. A pidfd names one process whatever becomes of
// its number; the start time in /proc/PID/stat, read after the pidfd is
// open, tells whether that process is the member or a later one that got
// its number. Members in another PID namespace are not watched.
//
// # Reclaim
//
// When a pidfd becomes readable, the watcher moves the slot from alive to
// reclaiming with one compare-and-swap, so exactly one survivor reclaims
// it; writes the holdings to the eventfd; adds them to the totals; and
// frees the slot under a new generation. A reclaimer killed between the
// swap and the write loses those permits, again one system call wide.
//
// Kernels before 5.3 have no pidfd: there the record is kept and read
// (Holdings), but nothing watches, and a dead member's permits stay lost.
package member
