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
// to the size. A read lands in the member's slot: the kernel copies what it
// took there as part of the read, and one compare-and-swap then adds it to
// the holdings, so a process killed at any moment leaves each permit it
// took either in the counter or in its record. A give is struck from the
// holdings before the write that makes it and marked as in flight, so a
// process killed between the two loses those permits and never makes one:
// that window is the few instructions before the write's system call, and
// what was in flight is counted. Gives beyond the holdings (a Semaphore used to signal,
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
// Kernels before 5.3 have no pidfd: there each member looks at the others
// (by start time) when it joins and whenever another joins, and reclaims
// those it finds dead then; between joins nothing watches, so a dead
// member's permits come back at the next join, not at its death.
package member
