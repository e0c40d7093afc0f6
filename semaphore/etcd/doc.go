// Package etcdsem provides a counting semaphore shared by every process of
// an etcd cluster's clients, on any number of hosts: the cluster-wide
// counterpart of github.com/eventsync/eventsync/semaphore.
//
// A Semaphore has the method set of semaphore.Semaphore (and so of
// golang.org/x/sync/semaphore.Weighted): Acquire, TryAcquire, Release, Value
// and Close. Code that outgrows one host changes its constructor and nothing
// else:
//
//	sem, err := semaphore.New(4)                  // one host
//	sem, err := etcdsem.New(cli, "/myapp/gpu", 4) // every host that reaches cli's cluster
//
// It lives in its own module (github.com/eventsync/eventsync/semaphore/etcd),
// so that programs importing the eventfd packages alone pull in no etcd code.
//
// # Semantics
//
//   - Weighted and all-or-nothing. Acquire(ctx, n) takes n permits in one
//     etcd transaction; a waiting Acquire holds none.
//   - First come, first served across the cluster. A waiting Acquire puts a
//     key under prefix/w/; its creation revision is its place in line. Only
//     the first in line is granted, once its request fits beside the permits
//     held; the next is first once it is. So a large request is never
//     starved by small ones behind it: they wait for it, as in x/sync.
//     Acquire skips the line only when nobody waits, and TryAcquire
//     succeeds only then.
//   - Never more than the capacity. Every grant is a transaction that
//     compares the modification revision of every key under prefix/h/ (the
//     held permits) against the revision the caller computed its decision
//     from; if any holder key was created or changed since, the transaction
//     fails and the caller decides again. Keys that vanish (a release, an
//     expiry) only lower the sum. So no interleaving of clients, failover or
//     lease expiry puts more than the capacity under prefix/h/.
//   - Cancellation. A waiting Acquire whose context is done deletes its key
//     before it returns (if the cluster cannot be reached then, the key is
//     deleted as soon as it can be, or when its lease ends), and returns
//     ctx.Err(). A context already done fails at once, even if permits are
//     free. Acquire(ctx, 0) succeeds at once; n < 0 panics, in Release too.
//   - Leases. Every key a Semaphore writes is bound to the lease of its
//     concurrency.Session. A process that dies, or is cut off from the
//     cluster longer than the lease's TTL, gives back its permits and its
//     place in line without anyone calling anything. Done reports that the
//     lease is gone: from then on the holder holds nothing, Acquire fails with
//     an error wrapping ErrLeaseLost, and Release only settles the local
//     count. As with every lease-based lock, a holder cut off from the
//     cluster learns it (Done) about when the cluster frees its permits, not
//     before: work that must never overlap another holder's should also be
//     fenced by the resource it touches.
//   - Release of more than this handle holds panics, as x/sync's does. A
//     Release that cannot reach the cluster retries until it succeeds, the
//     lease is gone, or the Semaphore is closed.
//
// # Without quorum
//
// While the cluster has no quorum nothing changes: no permit is granted or
// given back, waiters keep waiting (until their contexts are done) and
// holders keep holding. Leases do not expire without a leader; when a new
// leader is elected it extends every lease, so no holder loses its permits to
// the outage itself. A holder whose client cannot renew its lease for a whole
// TTL sees Done close, and must assume it holds nothing. TryAcquire and Value
// give up after the request timeout (WithRequestTimeout) and report false and
// an error.
//
// # Keys
//
// Under the prefix: "capacity" (written by the first New, checked by every
// later one; not bound to a lease), h/<lease>-<handle>-<slot> (one per
// grant, its value the permits held), w/<lease>-<handle>-<slot> (one per
// waiting Acquire, its value the permits wanted) and x/<...> (a marker
// written when a request whose outcome is unknown is abandoned, so that it
// cannot take effect later). A handle reuses a slot once its request is
// over, so that the ranges every grant compares do not fill with the
// tombstones of keys used once. Nothing else should write under the prefix.
//
// # Cost
//
// When nobody waits, Acquire is one transaction and Release one delete: the
// round trips of concurrency.Mutex's Lock and Unlock. A waiter reads and
// watches only the request just ahead of it, and the first in line the
// holders, so a release wakes one waiter, not the whole line, and what a
// waiter reads does not grow with the line.
package etcdsem
