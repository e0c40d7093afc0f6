package etcdsem

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var (
	// ErrLeaseLost means the lease that binds this Semaphore's keys has
	// expired or was revoked: the permits it held are free again, and it can
	// take no more. Make a new Semaphore to go on.
	ErrLeaseLost = errors.New("lease lost")
	// ErrCapacityMismatch means the prefix already holds a semaphore of
	// another capacity.
	ErrCapacityMismatch = errors.New("capacity differs from the one stored under the prefix")
)

// Option configures New.
type Option func(*options)

type options struct {
	ctx        context.Context
	ttl        int
	sess       *concurrency.Session
	reqTimeout time.Duration
}

// WithTTL sets the TTL, in seconds, of the lease that New grants: how long a
// holder may be dead or cut off before its permits are given back. The
// default is 60, as for concurrency.NewSession; the server raises values
// below its minimum (about 1.5 election timeouts).
func WithTTL(seconds int) Option { return func(o *options) { o.ttl = seconds } }

// WithSession binds the Semaphore's keys to an existing session instead of a
// lease of its own, for example to share one lease with a concurrency.Mutex.
// Close then deletes the Semaphore's keys and leaves the session open.
func WithSession(s *concurrency.Session) Option { return func(o *options) { o.sess = s } }

// WithContext bounds the requests New makes (the lease grant and the
// capacity check). The default is the client's context.
func WithContext(ctx context.Context) Option { return func(o *options) { o.ctx = ctx } }

// WithRequestTimeout bounds each request of the calls that take no context:
// TryAcquire, Value, and the clean-up after a cancelled Acquire. The
// default is 5 seconds.
func WithRequestTimeout(d time.Duration) Option { return func(o *options) { o.reqTimeout = d } }

// A Semaphore bounds concurrent access to a resource across every client of
// an etcd cluster. Its methods are safe for concurrent use. Each Semaphore
// is a handle with its own lease: permits it acquires are released through
// it, and end with its lease.
type Semaphore struct {
	cli        *clientv3.Client
	sess       *concurrency.Session
	ownSess    bool
	sessCancel context.CancelFunc
	prefix     string
	capacity   int64
	id         string // unique among the handles that share a lease
	reqTimeout time.Duration

	life     context.Context // done at Close or when the lease is lost
	endLife  context.CancelCauseFunc
	lostDone chan struct{}
	seq      atomic.Uint64
	wg       sync.WaitGroup // in-flight calls and clean-ups

	mu       sync.Mutex
	closed   bool
	lost     bool
	held     []hold // permits this handle holds, oldest first
	free     []int  // slots free for new requests
	slots    int    // slots made so far
	heldSum  int64
	cacheRev int64            // a revision at which ...
	cache    map[string]int64 // ... the holder keys were at most these
}

type hold struct {
	key    string
	slot   int
	n      int64
	modRev int64
}

var errClosed = fmt.Errorf("semaphore closed: %w", os.ErrClosed)

// New returns a Semaphore with capacity permits on the cluster cli talks to,
// keeping its keys under prefix. Every Semaphore with the same prefix, in
// any process, shares the permits; the first New stores the capacity and
// later ones fail with an error wrapping ErrCapacityMismatch if theirs
// differs. New grants a lease (see WithTTL) unless given WithSession. A
// negative capacity is an error wrapping os.ErrInvalid.
func New(cli *clientv3.Client, prefix string, capacity int64, opts ...Option) (*Semaphore, error) {
	prefix, err := checkNewArgs(cli, prefix, capacity)
	if err != nil {
		return nil, err
	}
	o := options{ctx: cli.Ctx(), ttl: 60, reqTimeout: 5 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	var idb [8]byte
	rand.Read(idb[:])
	s := &Semaphore{
		cli:        cli,
		prefix:     prefix,
		capacity:   capacity,
		id:         hex.EncodeToString(idb[:]),
		reqTimeout: o.reqTimeout,
		lostDone:   make(chan struct{}),
	}
	if err := s.openSession(o); err != nil {
		return nil, fmt.Errorf("etcdsem: New: %w", err)
	}
	resp, err := s.claimCapacity(o.ctx)
	if err != nil {
		if s.ownSess {
			s.sess.Close()
			s.sessCancel()
		}
		return nil, fmt.Errorf("etcdsem: New: %w", err)
	}
	s.cacheRev = resp.Header.Revision
	s.cache = holderMap(resp.Responses[1].GetResponseRange().Kvs)

	s.life, s.endLife = context.WithCancelCause(context.Background())
	go s.watchLease()
	return s, nil
}

// checkNewArgs rejects the arguments New cannot work with, before anything
// is asked of the cluster, and returns prefix ending in "/", so that a
// prefix's keys never share a range with a longer prefix's.
func checkNewArgs(cli *clientv3.Client, prefix string, capacity int64) (string, error) {
	if cli == nil {
		return "", fmt.Errorf("etcdsem: New: nil client: %w", os.ErrInvalid)
	}
	if capacity < 0 {
		return "", fmt.Errorf("etcdsem: New: negative capacity %d: %w", capacity, os.ErrInvalid)
	}
	if prefix == "" {
		return "", fmt.Errorf("etcdsem: New: empty prefix: %w", os.ErrInvalid)
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return prefix, nil
}

// openSession sets the session the Semaphore's keys are bound to: the one
// given by WithSession, or one on a lease of its own, which Close revokes.
func (s *Semaphore) openSession(o options) error {
	if o.sess != nil {
		s.sess = o.sess
		return nil
	}
	// The grant is bounded by o.ctx; the session's context outlives it,
	// and is cancelled at Close, after the lease is revoked.
	g, err := s.cli.Grant(o.ctx, int64(o.ttl))
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(o.ctx))
	sess, err := concurrency.NewSession(s.cli, concurrency.WithLease(g.ID), concurrency.WithTTL(o.ttl), concurrency.WithContext(sctx))
	if err != nil {
		cancel()
		return err
	}
	s.sess, s.ownSess, s.sessCancel = sess, true, cancel
	return nil
}

// claimCapacity stores the capacity under the prefix if none is there, or
// checks it against the one stored, and reads the holders in the same
// transaction, so that the first Acquire can take the fast path.
func (s *Semaphore) claimCapacity(ctx context.Context) (*clientv3.TxnResponse, error) {
	capKey := s.prefix + "capacity"
	want := strconv.FormatInt(s.capacity, 10)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(capKey), "=", 0)).
		Then(clientv3.OpPut(capKey, want), clientv3.OpGet(s.holdersPrefix(), clientv3.WithPrefix())).
		Else(clientv3.OpGet(capKey), clientv3.OpGet(s.holdersPrefix(), clientv3.WithPrefix())).
		Commit()
	if err == nil && !resp.Succeeded {
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 1 && string(kvs[0].Value) != want {
			err = fmt.Errorf("%w: %s holds %q, New was given %d", ErrCapacityMismatch, capKey, kvs[0].Value, s.capacity)
		}
	}
	return resp, err
}

// watchLease marks the Semaphore lost and ends its life when the session's
// lease is gone, so that waiting calls stop at once; it returns at Close.
func (s *Semaphore) watchLease() {
	select {
	case <-s.sess.Done():
		s.mu.Lock()
		s.lost = true
		s.mu.Unlock()
		s.endLife(ErrLeaseLost)
	case <-s.life.Done():
	}
	close(s.lostDone)
}

func (s *Semaphore) holdersPrefix() string { return s.prefix + "h/" }
func (s *Semaphore) waitersPrefix() string { return s.prefix + "w/" }

// A request's keys. Holder and waiter keys are named after a slot that
// the handle reuses once the request is over, so that the ranges every
// grant compares do not fill with the tombstones of keys used once; the
// marker is unique to the request.
type req struct {
	h, w, x string
	slot    int
}

// newReq returns the keys of a new request, in a free slot.
func (s *Semaphore) newReq() req {
	s.mu.Lock()
	var slot int
	if k := len(s.free); k > 0 {
		slot, s.free = s.free[k-1], s.free[:k-1]
	} else {
		slot = s.slots
		s.slots++
	}
	s.mu.Unlock()
	id := fmt.Sprintf("%x-%s-", int64(s.sess.Lease()), s.id)
	return req{
		h:    s.prefix + "h/" + id + strconv.Itoa(slot),
		w:    s.prefix + "w/" + id + strconv.Itoa(slot),
		x:    s.prefix + "x/" + id + "m" + strconv.FormatUint(s.seq.Add(1), 10),
		slot: slot,
	}
}

// freeSlot makes a slot available again: no key of its last request exists
// or can come to exist.
func (s *Semaphore) freeSlot(slot int) {
	s.mu.Lock()
	s.free = append(s.free, slot)
	s.mu.Unlock()
}

// Lease returns the lease every key of this Semaphore is bound to.
func (s *Semaphore) Lease() clientv3.LeaseID { return s.sess.Lease() }

// Done returns a channel that is closed when the lease is gone — expired,
// revoked, or no longer kept alive because the Semaphore was closed (or,
// with WithSession, the session was). Once it is closed this handle holds no
// permits, whatever it acquired.
func (s *Semaphore) Done() <-chan struct{} { return s.sess.Done() }

// Capacity returns the semaphore's capacity, as given to New.
func (s *Semaphore) Capacity() int64 { return s.capacity }

// begin registers a call; it fails if the Semaphore is closed or has lost
// its lease.
func (s *Semaphore) begin() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if s.lost {
		return ErrLeaseLost
	}
	s.wg.Add(1)
	return nil
}

// opContext returns a context done when ctx is, or when the Semaphore is
// closed or loses its lease.
func (s *Semaphore) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	octx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(s.life, func() { cancel(context.Cause(s.life)) })
	return octx, func() { stop(); cancel(context.Canceled) }
}

// lifeErr returns why the Semaphore can no longer be used, or nil.
func (s *Semaphore) lifeErr() error {
	if s.life.Err() == nil {
		return nil
	}
	if c := context.Cause(s.life); c != nil {
		return c
	}
	return errClosed
}

// Acquire takes n permits, waiting in the cluster-wide line until they fit,
// ctx is done, the Semaphore is closed, or its lease is lost. On success it
// returns nil. On failure it takes nothing and returns ctx.Err(), or an
// error wrapping os.ErrClosed or ErrLeaseLost.
//
// Acquire with ctx already done fails even if permits are free. A waiting
// Acquire whose ctx ends deletes its place in line before it returns.
// Acquire(ctx, 0) succeeds at once; n < 0 panics. A request larger than the
// capacity waits, without a place in line, until ctx is done.
//
// When nobody waits and the handle's last view of the holders is current, a
// successful Acquire is one round trip to the cluster. Otherwise it joins
// the line in that same round trip.
func (s *Semaphore) Acquire(ctx context.Context, n int64) error {
	if n < 0 {
		panic("etcdsem: Acquire with negative n")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.begin(); err != nil {
		return fmt.Errorf("etcdsem: Acquire: %w", err)
	}
	defer s.wg.Done()
	if n == 0 {
		return nil
	}
	octx, cancel := s.opContext(ctx)
	defer cancel()
	if n > s.capacity {
		<-octx.Done()
		return s.failure("Acquire", ctx)
	}
	return s.acquire(ctx, octx, n)
}

// failure returns the error a call that was stopped reports: ctx's error,
// or why the Semaphore is unusable.
func (s *Semaphore) failure(op string, ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.lifeErr(); err != nil {
		return fmt.Errorf("etcdsem: %s: %w", op, err)
	}
	return fmt.Errorf("etcdsem: %s: %w", op, context.Canceled)
}

// fastPath returns the revision and holders the handle last saw, and
// whether n fits beside them.
func (s *Semaphore) fastPath(n int64) (rev int64, fits bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sum int64
	for _, v := range s.cache {
		sum += v
	}
	return s.cacheRev, sum+n <= s.capacity
}

// noteHolders records that at rev the holder keys were at most hs.
func (s *Semaphore) noteHolders(rev int64, hs map[string]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rev > s.cacheRev {
		s.cacheRev = rev
		s.cache = make(map[string]int64, len(hs))
		for k, v := range hs {
			s.cache[k] = v
		}
	}
}

// granted records a grant of n permits under key at rev, decided from a
// view of the holders at base that the grant's transaction proved current.
func (s *Semaphore) granted(r req, n, rev, base int64, hs map[string]int64) {
	key := r.h
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held = append(s.held, hold{key: key, slot: r.slot, n: n, modRev: rev})
	s.heldSum += n
	if base >= s.cacheRev {
		s.cacheRev = rev
		s.cache = make(map[string]int64, len(hs)+1)
		for k, v := range hs {
			s.cache[k] = v
		}
	}
	s.cache[key] = n
}

// unchanged is the comparison every grant makes: no holder key was created
// or modified after rev.
func (s *Semaphore) unchanged(rev int64) clientv3.Cmp {
	return clientv3.Compare(clientv3.ModRevision(s.holdersPrefix()), "<", rev+1).WithPrefix()
}

func (s *Semaphore) nobodyWaits() clientv3.Cmp {
	return clientv3.Compare(clientv3.Version(s.waitersPrefix()), "=", 0).WithPrefix()
}

func (s *Semaphore) acquire(ctx, octx context.Context, n int64) error {
	r := s.newReq()
	lease := clientv3.WithLease(s.sess.Lease())
	val := strconv.FormatInt(n, 10)
	getState := []clientv3.Op{
		clientv3.OpGet(s.holdersPrefix(), clientv3.WithPrefix()),
		s.lineOp(0), // after the put: this request, then the one ahead
	}
	enqueue := append([]clientv3.Op{clientv3.OpPut(r.w, val, lease)}, getState...)
	notMarked := clientv3.Compare(clientv3.CreateRevision(r.x), "=", 0)

	// One round trip: take the permits if nobody waits and they fit beside
	// the holders last seen, or else join the line and read the state.
	rev, fits := s.fastPath(n)
	var resp *clientv3.TxnResponse
	var rs []*etcdserverpb.ResponseOp
	for {
		var txn clientv3.Txn
		if fits {
			txn = s.cli.Txn(octx).
				If(s.unchanged(rev), s.nobodyWaits(), notMarked).
				Then(clientv3.OpPut(r.h, val, lease)).
				Else(clientv3.OpTxn([]clientv3.Cmp{notMarked}, enqueue, nil))
		} else {
			txn = s.cli.Txn(octx).If(notMarked).Then(enqueue...)
		}
		var err error
		resp, err = txn.Commit()
		switch {
		case err == nil && fits && resp.Succeeded:
			s.mu.Lock()
			hs := s.cache
			s.mu.Unlock()
			s.granted(r, n, resp.Header.Revision, rev, hs)
			return nil
		case err == nil && resp.Succeeded:
			rs = resp.Responses
		case err == nil && fits:
			if in := resp.Responses[0].GetResponseTxn(); in.Succeeded {
				rs = in.Responses
			}
		default:
			// The request may or may not take effect: make sure it does not.
			s.abandon(r)
			if octx.Err() != nil {
				return s.failure("Acquire", ctx)
			}
			if ferr := s.fatal(err); ferr != nil {
				return fmt.Errorf("etcdsem: Acquire: %w", ferr)
			}
			if pause(octx) != nil {
				return s.failure("Acquire", ctx)
			}
		}
		if rs != nil {
			break
		}
		// Try again under new names, joining the line.
		r = s.newReq()
		enqueue[0] = clientv3.OpPut(r.w, val, lease)
		notMarked = clientv3.Compare(clientv3.CreateRevision(r.x), "=", 0)
		fits = false
	}
	// In line. The put is the first response; the reads follow.
	myRev := resp.Header.Revision
	v := newView(resp.Header.Revision, rs[1].GetResponseRange().Kvs, rs[2].GetResponseRange().Kvs)
	s.noteHolders(v.rev, v.holders)
	return s.wait(ctx, octx, n, v, myRev, r)
}

// wait takes the permits once the request is first in line and fits
// beside the permits held. Like concurrency.Mutex, a waiter watches only
// what can let it go: the key of the request just ahead while there is one,
// and the holders once it is first. One grant or release thus wakes one
// waiter, not the whole line.
func (s *Semaphore) wait(ctx, octx context.Context, n int64, v *view, myRev int64, r req) error {
	q := &queued{
		s: s, ctx: ctx, octx: octx, n: n, myRev: myRev, r: r, v: v,
		val:   strconv.FormatInt(n, 10),
		lease: clientv3.WithLease(s.sess.Lease()),
		wstop: func() {},
	}
	defer q.unwatch()
	for {
		if done, err := q.settled(); done {
			return err
		}
		pred := q.v.pred(myRev)
		if pred == "" && q.v.sumHeld()+n <= s.capacity {
			if done, err := q.grant(); done {
				return err
			}
			continue
		}
		again, err := q.watch(pred)
		if err != nil {
			return err
		}
		if again {
			continue
		}
		if err := q.next(); err != nil {
			return err
		}
	}
}

// queued is an Acquire waiting in line: its request (r, made at myRev), its
// view of the holders and the line, and the one watch that can let it go.
type queued struct {
	s         *Semaphore
	ctx, octx context.Context
	n, myRev  int64
	r         req
	val       string
	lease     clientv3.OpOption
	v         *view

	wch      clientv3.WatchChan
	watching string // the key or prefix wch watches
	wstop    context.CancelFunc
}

// unwatch stops the watch, if any, so that the next one starts afresh.
func (q *queued) unwatch() {
	q.wstop()
	q.wch, q.watching = nil, ""
}

// fail leaves the line and returns the error of the stopped Acquire.
func (q *queued) fail() error {
	q.s.abandon(q.r)
	return q.s.failure("Acquire", q.ctx)
}

// reread drops the watch and reads the state again, when what the watch
// would tell is unknown; it fails once the Acquire is stopped.
func (q *queued) reread() error {
	q.unwatch()
	if q.octx.Err() != nil {
		return q.fail()
	}
	nv, err := q.s.readView(q.octx, q.myRev)
	if err != nil {
		return q.fail()
	}
	q.v = nv
	return nil
}

// settled reports whether the view already ends the wait, and how: the
// permits were granted, or the request's place in line is gone.
func (q *queued) settled() (bool, error) {
	if _, ok := q.v.holders[q.r.h]; ok {
		// A grant whose answer was lost took effect after all.
		q.s.granted(q.r, q.n, q.v.holderRev[q.r.h], q.v.rev, q.v.holders)
		return true, nil
	}
	if _, ok := q.v.waiters[q.r.w]; !ok {
		// Only the lease's end removes a waiter's key from under it.
		return true, fmt.Errorf("etcdsem: Acquire: %w", ErrLeaseLost)
	}
	return false, nil
}

// grant tries to take the permits, first in line and fitting in the view,
// in one transaction that holds only if the view of the holders is still
// current and the request still in line. It reports whether the wait is
// over; if not, the view is up to date for the next decision.
func (q *queued) grant() (bool, error) {
	s, v, wkey := q.s, q.v, q.r.w
	resp, err := s.cli.Txn(q.octx).
		If(s.unchanged(v.rev), clientv3.Compare(clientv3.CreateRevision(wkey), "=", q.myRev)).
		Then(clientv3.OpDelete(wkey), clientv3.OpPut(q.r.h, q.val, q.lease)).
		Else(clientv3.OpGet(s.holdersPrefix(), clientv3.WithPrefix()), s.lineOp(q.myRev)).
		Commit()
	switch {
	case err == nil && resp.Succeeded:
		s.granted(q.r, q.n, resp.Header.Revision, v.rev, v.holders)
		return true, nil
	case err == nil:
		q.unwatch()
		q.v = newView(resp.Header.Revision, resp.Responses[0].GetResponseRange().Kvs, resp.Responses[1].GetResponseRange().Kvs)
		s.noteHolders(q.v.rev, q.v.holders)
		return false, nil
	}
	if q.octx.Err() != nil {
		return true, q.fail()
	}
	if ferr := s.fatal(err); ferr != nil {
		s.abandon(q.r)
		return true, fmt.Errorf("etcdsem: Acquire: %w", ferr)
	}
	// Unknown outcome: the state read again shows whether the
	// grant took effect.
	if err := q.reread(); err != nil {
		return true, err
	}
	return false, nil
}

// watch makes sure the watch is on what can let the request go: the request
// ahead (pred), or the holders if there is none. It reports whether the
// view changed meanwhile and must be looked at again before waiting.
func (q *queued) watch(pred string) (bool, error) {
	s := q.s
	target, opts := s.holdersPrefix(), []clientv3.OpOption{clientv3.WithPrefix()}
	if pred != "" {
		target, opts = pred, []clientv3.OpOption{clientv3.WithFilterPut()}
	}
	if q.watching == target {
		return false, nil
	}
	q.unwatch()
	nch, stop, crev, err := s.watchNow(q.octx, target, opts)
	if err != nil {
		return true, q.reread()
	}
	q.wch, q.watching, q.wstop = nch, target, stop
	if crev > q.v.rev {
		// Something happened between the view and the watch: read
		// again, keeping the watch, which has all that follows.
		nv, err := s.readView(q.octx, q.myRev)
		if err != nil {
			return true, q.fail()
		}
		q.v = nv
		return true, nil
	}
	return false, nil
}

// next waits for the watch's next response, or for the Acquire to be
// stopped, and brings the view up to date with it.
func (q *queued) next() error {
	select {
	case <-q.octx.Done():
		return q.fail()
	case wr, ok := <-q.wch:
		switch {
		case !ok || wr.Err() != nil || wr.Canceled:
			// Lost the leader, compacted, or the stream broke: read the
			// state again and watch from there.
			return q.reread()
		case q.watching == q.s.holdersPrefix():
			q.v.applyAll(q.s, wr.Events)
		case len(wr.Events) > 0:
			// The request ahead left the line: see what it left.
			return q.reread()
		}
	}
	return nil
}

// watchNow starts a watch of target that the server counts as current from
// the start, and returns the revision it starts after. (A watch from a past
// revision waits for the server's periodic catch-up, up to 100ms: too slow
// for the waiter next in line.)
func (s *Semaphore) watchNow(ctx context.Context, target string, opts []clientv3.OpOption) (clientv3.WatchChan, context.CancelFunc, int64, error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	wch := s.cli.Watch(wctx, target, append(opts, clientv3.WithCreatedNotify())...)
	select {
	case wr, ok := <-wch:
		if !ok || wr.Err() != nil || !wr.Created {
			cancel()
			if ok && wr.Err() != nil {
				return nil, nil, 0, wr.Err()
			}
			return nil, nil, 0, errors.New("watch not created")
		}
		return wch, cancel, wr.Header.Revision, nil
	case <-ctx.Done():
		cancel()
		return nil, nil, 0, ctx.Err()
	}
}

// lineOp reads the line as a waiter needs it: its own key (made at myRev),
// then the request just ahead of it; nothing more, however long the line.
// With myRev 0 it reads the newest two keys: in the transaction that puts a
// waiter's key, that key and the one ahead.
func (s *Semaphore) lineOp(myRev int64) clientv3.Op {
	opts := []clientv3.OpOption{clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend), clientv3.WithLimit(2)}
	if myRev > 0 {
		opts = append(opts, clientv3.WithMaxCreateRev(myRev))
	}
	return clientv3.OpGet(s.waitersPrefix(), opts...)
}

// readView reads the holders and the waiter's part of the line (lineOp),
// retrying until it succeeds or ctx is done.
func (s *Semaphore) readView(ctx context.Context, myRev int64) (*view, error) {
	for {
		resp, err := s.cli.Txn(ctx).Then(
			clientv3.OpGet(s.holdersPrefix(), clientv3.WithPrefix()), s.lineOp(myRev)).Commit()
		if err == nil {
			v := newView(resp.Header.Revision, resp.Responses[0].GetResponseRange().Kvs, resp.Responses[1].GetResponseRange().Kvs)
			s.noteHolders(v.rev, v.holders)
			return v, nil
		}
		if ferr := s.fatal(err); ferr != nil {
			return nil, ferr
		}
		if err := pause(ctx); err != nil {
			return nil, err
		}
	}
}

// abandon makes sure a request whose keys are hkey, wkey and xkey holds
// nothing and waits for nothing, now or later: it writes the marker xkey,
// which every request that could create hkey or wkey checks is absent, and
// deletes both in the same transaction. If the cluster cannot be reached it
// goes on trying in the background until it can, or the lease ends.
func (s *Semaphore) abandon(r req) {
	if s.tryAbandon(r) {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for !s.tryAbandon(r) {
			if pause(s.life) != nil {
				return // Close or the lease's end deletes the keys
			}
		}
	}()
}

// tryAbandon reports whether r is abandoned for good (or the handle is
// over, which deletes its keys); it frees r's slot if so.
func (s *Semaphore) tryAbandon(r req) bool {
	if s.life.Err() != nil {
		return true
	}
	ctx, cancel := context.WithTimeout(s.life, s.reqTimeout)
	defer cancel()
	_, err := s.cli.Txn(ctx).Then(
		clientv3.OpPut(r.x, "", clientv3.WithLease(s.sess.Lease())),
		clientv3.OpDelete(r.w),
		clientv3.OpDelete(r.h)).Commit()
	if err == nil {
		s.freeSlot(r.slot)
		return true
	}
	return errors.Is(err, rpctypes.ErrLeaseNotFound)
}

// fatal returns err if retrying cannot help, and ErrLeaseLost if the lease
// is gone; nil if the request is worth trying again.
func (s *Semaphore) fatal(err error) error {
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return ErrLeaseLost
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	switch status.Code(err) {
	case codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated, codes.OutOfRange:
		return err
	}
	return nil
}

// pause waits a little before a request is retried.
func pause(ctx context.Context) error {
	t := time.NewTimer(50 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// TryAcquire takes n permits if they fit now and nobody waits, and reports
// whether it did; on false it took nothing. It returns false on a closed
// Semaphore, one that lost its lease, or when the cluster does not answer
// within the request timeout. It panics if n < 0.
func (s *Semaphore) TryAcquire(n int64) bool {
	if n < 0 {
		panic("etcdsem: TryAcquire with negative n")
	}
	if s.begin() != nil {
		return false
	}
	defer s.wg.Done()
	if n == 0 {
		return true
	}
	if n > s.capacity {
		return false
	}
	ctx, cancel := context.WithTimeout(s.life, s.reqTimeout)
	defer cancel()
	r := s.newReq()
	val := strconv.FormatInt(n, 10)
	lease := clientv3.WithLease(s.sess.Lease())
	rev, fits := s.fastPath(n)
	for ctx.Err() == nil {
		if !fits {
			v, err := s.readView(ctx, 0)
			if err != nil || len(v.waiters) > 0 || v.sumHeld()+n > s.capacity {
				s.freeSlot(r.slot) // nothing was written under it
				return false
			}
			rev = v.rev
		}
		resp, err := s.cli.Txn(ctx).
			If(s.unchanged(rev), s.nobodyWaits(), clientv3.Compare(clientv3.CreateRevision(r.x), "=", 0)).
			Then(clientv3.OpPut(r.h, val, lease)).
			Commit()
		if err != nil {
			s.abandon(r)
			return false
		}
		if resp.Succeeded {
			s.mu.Lock()
			hs := s.cache
			s.mu.Unlock()
			s.granted(r, n, resp.Header.Revision, rev, hs)
			return true
		}
		fits = false
	}
	s.freeSlot(r.slot)
	return false
}

// Release gives back n of the permits this handle holds. It panics if n < 0,
// if the Semaphore is closed, or if n is more than the handle holds
// ("released more than held", as x/sync says). It returns when the cluster
// has recorded the release, when the lease is gone (the permits are free
// then anyway), or when the Semaphore is closed (Close frees them); while
// the cluster is unreachable it waits.
func (s *Semaphore) Release(n int64) {
	if n < 0 {
		panic("etcdsem: Release with negative n")
	}
	rel, send := s.settle(n)
	if !send {
		return
	}
	defer s.wg.Done()
	s.sendRelease(rel)
}

// A release the cluster has yet to record: the holder keys to delete and
// their slots, and the hold left with fewer permits, if any.
type release struct {
	dels    []string
	slots   []int
	partial *hold
}

// settle gives back n permits in the local count at once, so that the
// handle never counts permits it is giving back, and reports whether the
// cluster must still be told; if so it registers the call, in the same
// critical section as the checks, so that Close waits for it.
func (s *Semaphore) settle(n int64) (release, bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		panic("etcdsem: Release on closed Semaphore")
	}
	if n > s.heldSum {
		s.mu.Unlock()
		panic("etcdsem: Release: released more than held")
	}
	if n == 0 {
		s.mu.Unlock()
		return release{}, false
	}
	rel := s.dropHolds(n)
	if s.lost {
		s.mu.Unlock()
		return release{}, false
	}
	s.wg.Add(1)
	s.mu.Unlock()
	return rel, true
}

// dropHolds takes n permits off the holds, newest first, and returns what
// the cluster must be told. Called with s.mu held.
func (s *Semaphore) dropHolds(n int64) release {
	var rel release
	s.heldSum -= n
	for n > 0 {
		h := &s.held[len(s.held)-1]
		if h.n <= n {
			n -= h.n
			rel.dels = append(rel.dels, h.key)
			rel.slots = append(rel.slots, h.slot)
			delete(s.cache, h.key)
			s.held = s.held[:len(s.held)-1]
			continue
		}
		h.n -= n
		n = 0
		p := *h
		rel.partial = &p
		s.cache[h.key] = h.n
	}
	return rel
}

// sendRelease records rel in the cluster, retrying until it is recorded,
// retrying cannot help, or the Semaphore's life ends (Close or the lease's
// end frees the permits then).
func (s *Semaphore) sendRelease(rel release) {
	var ops []clientv3.Op
	for _, k := range rel.dels {
		ops = append(ops, clientv3.OpDelete(k))
	}
	for {
		resp, err := s.releaseOnce(rel, ops)
		if err == nil {
			s.released(rel, resp)
			return
		}
		if s.fatal(err) != nil || s.life.Err() != nil {
			return
		}
		if pause(s.life) != nil {
			return
		}
	}
}

// releaseOnce makes one attempt at recording rel, whose deletes are ops: a
// plain delete when that is all it is, as cheap as concurrency.Mutex's
// Unlock. A hold left with fewer permits is rewritten only if its key is as
// this handle last wrote it, so that a stale write cannot undo a newer one;
// if not, the key is read to learn what became of it. The response is nil
// for a plain delete.
func (s *Semaphore) releaseOnce(rel release, ops []clientv3.Op) (*clientv3.TxnResponse, error) {
	txn := s.cli.Txn(s.life)
	partial := rel.partial
	switch {
	case partial == nil && len(rel.dels) == 1:
		_, err := s.cli.Delete(s.life, rel.dels[0])
		return nil, err
	case partial == nil:
		return txn.Then(ops...).Commit()
	}
	put := clientv3.OpPut(partial.key, strconv.FormatInt(partial.n, 10), clientv3.WithLease(s.sess.Lease()))
	return txn.If(clientv3.Compare(clientv3.ModRevision(partial.key), "=", partial.modRev)).
		Then(append([]clientv3.Op{put}, ops...)...).
		Else(append([]clientv3.Op{clientv3.OpGet(partial.key)}, ops...)...).
		Commit()
}

// released notes that the cluster recorded rel: its slots are free again,
// and the hold left with fewer permits gets the revision of its key, which
// the next partial release of it compares.
func (s *Semaphore) released(rel release, resp *clientv3.TxnResponse) {
	for _, slot := range rel.slots {
		s.freeSlot(slot)
	}
	partial := rel.partial
	if partial == nil {
		return
	}
	rev := resp.Header.Revision
	if !resp.Succeeded {
		// An earlier attempt took effect, or the lease ended.
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			return
		}
		rev = kvs[0].ModRevision
	}
	s.mu.Lock()
	for i := range s.held {
		if s.held[i].key == partial.key {
			s.held[i].modRev = rev
		}
	}
	s.mu.Unlock()
}

// Value returns the permits that no holder in the cluster holds, read at one
// revision: the capacity minus the permits of every live holder. Waiters in
// line may take them at once, and permits of a holder that died count as
// held until its lease expires. It fails if the Semaphore is closed or the
// cluster does not answer within the request timeout.
func (s *Semaphore) Value() (uint64, error) {
	if err := s.begin(); err != nil && !errors.Is(err, ErrLeaseLost) {
		return 0, fmt.Errorf("etcdsem: Value: %w", err)
	} else if err == nil {
		defer s.wg.Done()
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.reqTimeout)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.holdersPrefix(), clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("etcdsem: Value: %w", err)
	}
	var sum int64
	for _, kv := range resp.Kvs {
		sum += parseCount(kv.Value, s.capacity)
	}
	if sum >= s.capacity {
		return 0, nil
	}
	return uint64(s.capacity - sum), nil
}

// Close gives back every permit this handle holds and leaves the line:
// with its own lease it revokes it, with WithSession it deletes its keys.
// Acquire calls in progress return an error wrapping os.ErrClosed, as do
// later calls; Release panics. Close returns an error wrapping os.ErrClosed
// if the Semaphore is already closed, and the cluster's error if it could not
// be reached (the lease then ends on its own after its TTL).
func (s *Semaphore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("etcdsem: Close: %w", errClosed)
	}
	s.closed = true
	s.mu.Unlock()
	s.endLife(errClosed)
	s.wg.Wait()
	<-s.lostDone
	var err error
	if s.ownSess {
		err = s.sess.Close()
		s.sessCancel()
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), s.reqTimeout)
		mine := fmt.Sprintf("%x-%s-", int64(s.sess.Lease()), s.id)
		_, err = s.cli.Txn(ctx).Then(
			clientv3.OpDelete(s.prefix+"h/"+mine, clientv3.WithPrefix()),
			clientv3.OpDelete(s.prefix+"w/"+mine, clientv3.WithPrefix()),
			clientv3.OpDelete(s.prefix+"x/"+mine, clientv3.WithPrefix())).Commit()
		cancel()
	}
	s.mu.Lock()
	s.held, s.heldSum = nil, 0
	s.mu.Unlock()
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("etcdsem: Close: %w", err)
	}
	return nil
}

// view is one waiter's knowledge of the holders and the line at rev.
type view struct {
	rev       int64
	holders   map[string]int64
	holderRev map[string]int64
	waiters   map[string]waiter
}

type waiter struct{ create, n int64 }

func newView(rev int64, hs, ws []*mvccpb.KeyValue) *view {
	v := &view{rev: rev, holders: map[string]int64{}, holderRev: map[string]int64{}, waiters: map[string]waiter{}}
	for _, kv := range hs {
		v.holders[string(kv.Key)] = parseCount(kv.Value, 1<<62)
		v.holderRev[string(kv.Key)] = kv.ModRevision
	}
	for _, kv := range ws {
		v.waiters[string(kv.Key)] = waiter{create: kv.CreateRevision, n: parseCount(kv.Value, 1<<62)}
	}
	return v
}

func holderMap(kvs []*mvccpb.KeyValue) map[string]int64 {
	m := make(map[string]int64, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = parseCount(kv.Value, 1<<62)
	}
	return m
}

// parseCount reads a count written by this package; anything else counts
// as bad, so that a stranger's key can only make the semaphore stricter.
func parseCount(b []byte, bad int64) int64 {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n < 0 {
		return bad
	}
	return n
}

// applyAll brings the view up to date with one watch response. A
// transaction's events share its revision, and a response carries all of
// them: events at or below the view's revision are already in it.
func (v *view) applyAll(s *Semaphore, evs []*clientv3.Event) {
	base := v.rev
	for _, ev := range evs {
		if ev.Kv.ModRevision <= base {
			continue
		}
		v.apply(s, ev)
		v.rev = max(v.rev, ev.Kv.ModRevision)
	}
}

func (v *view) apply(s *Semaphore, ev *clientv3.Event) {
	kv := ev.Kv
	k := string(kv.Key)
	var m bool
	switch {
	case strings.HasPrefix(k, s.holdersPrefix()):
		m = true
	case strings.HasPrefix(k, s.waitersPrefix()):
	default:
		return
	}
	if ev.Type == clientv3.EventTypeDelete {
		if m {
			delete(v.holders, k)
			delete(v.holderRev, k)
		} else {
			delete(v.waiters, k)
		}
		return
	}
	if m {
		v.holders[k] = parseCount(kv.Value, 1<<62)
		v.holderRev[k] = kv.ModRevision
	} else {
		v.waiters[k] = waiter{create: kv.CreateRevision, n: parseCount(kv.Value, 1<<62)}
	}
}

func (v *view) sumHeld() int64 {
	var sum int64
	for _, n := range v.holders {
		sum += n
	}
	return sum
}

// pred returns the key of the request in line just before the one made at
// rev, or "" if it is first.
func (v *view) pred(rev int64) string {
	var key string
	var best int64
	for k, w := range v.waiters {
		if w.create < rev && w.create > best {
			key, best = k, w.create
		}
	}
	return key
}
