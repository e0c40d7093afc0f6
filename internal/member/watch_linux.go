package member

import (
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/eventsync/eventsync/internal/kernel"
)

// watch is one slot a member watches: the generation it saw there, and the
// pidfd of the process that held it.
type watch struct {
	gen   uint64
	key   int32
	pidfd int
}

// target is what an epoll event stands for: a member's roster (slot -1),
// the process in one slot of its record, or a process whose exit is
// watched for someone else (exit set).
type target struct {
	m     *Member
	slot  int
	gen   uint64
	pidfd int
	exit  func()
}

// watcher is this process's one epoll instance: the rosters of the records
// its members belong to, and a pidfd for every other member. The Go
// netpoller waits on it; one goroutine serves it while any member watches.
var watcher struct {
	sync.Mutex
	p *poller
}

type poller struct {
	epfd    int
	file    *os.File // epfd, registered with the netpoller
	targets map[int32]target
	rosters map[*Member]int32
	exits   int // targets with exit set
	next    int32
	events  [64]unix.EpollEvent
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	// os.NewFile registers only a non-blocking descriptor.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	return &poller{
		epfd:    epfd,
		file:    os.NewFile(uintptr(epfd), "eventsync-members"),
		targets: make(map[int32]target),
		rosters: make(map[*Member]int32),
	}, nil
}

func watchMember(m *Member) error {
	idle, err := watchLocked(m)
	if idle != nil {
		idle.Close()
	}
	return err
}

// startLocked returns the running poller, starting one if none runs.
func startLocked() (*poller, error) {
	if watcher.p == nil {
		p, err := newPoller()
		if err != nil {
			return nil, err
		}
		watcher.p = p
		go p.run()
	}
	return watcher.p, nil
}

func watchLocked(m *Member) (*os.File, error) {
	watcher.Lock()
	defer watcher.Unlock()
	p, err := startLocked()
	if err != nil {
		return nil, err
	}
	key := p.add(target{m: m, slot: -1})
	// Edge-triggered: the roster is never read, and each join is an edge.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: key}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, m.rec.roster.Sysfd(), &ev); err != nil {
		delete(p.targets, key)
		return p.stopIfIdle(), os.NewSyscallError("epoll_ctl", err)
	}
	p.rosters[m] = key
	m.watching = make(map[int]watch)
	p.rescan(m)
	return nil, nil
}

func (p *poller) add(t target) int32 {
	p.next++
	p.targets[p.next] = t
	return p.next
}

// run waits in the netpoller until the epoll instance is readable, then
// serves it, until the file is closed.
func (p *poller) run() {
	raw, err := p.file.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Read(func(uintptr) bool {
		p.serve()
		return false
	})
}

func (p *poller) serve() {
	watcher.Lock()
	defer watcher.Unlock()
	if watcher.p != p {
		return
	}
	defer func() {
		// The last exit watched has fired: retire. Close waits for this
		// call to return, so it runs on its own.
		if f := p.stopIfIdle(); f != nil {
			go f.Close()
		}
	}()
	for {
		n, err := unix.EpollWait(p.epfd, p.events[:], 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range p.events[:n] {
			t, ok := p.targets[ev.Fd]
			switch {
			case !ok:
			case t.exit != nil:
				p.dropExit(ev.Fd)
				t.exit()
			case t.slot < 0:
				p.rescan(t.m)
			default:
				t.m.reclaim(t.slot, t.gen)
				p.drop(t.m, t.slot)
			}
		}
		if n < len(p.events) {
			return
		}
	}
}

// rescan looks at every slot of m's record in use, and watches each member
// it does not watch yet, other than this process.
func (p *poller) rescan(m *Member) {
	id, err := self()
	if err != nil {
		return
	}
	r := m.rec
	used := int(min(r.hdr.used.Load(), slotCount))
	for i := range used {
		s := &r.slots[i]
		st := s.state.Load()
		w, watched := m.watching[i]
		if watched && (phaseOf(st) != phaseAlive || w.gen != genOf(st)) {
			p.drop(m, i) // the member left; the slot may hold another
			watched = false
		}
		if watched || phaseOf(st) != phaseAlive || s.pidns.Load() != id.pidns {
			continue
		}
		gen := genOf(st)
		pid, start := s.pid.Load(), s.start.Load()
		if pid == id.pid {
			if start != id.start {
				m.reclaim(i, gen) // an earlier process with this PID
			}
			continue
		}
		if !kernel.Pidfd() {
			// Linux before 5.3: the member is looked at now, and again at
			// the next join, but not watched.
			if gone(int(pid), start) {
				m.reclaim(i, gen)
			}
			continue
		}
		pidfd, err := unix.PidfdOpen(int(pid), 0)
		if err == unix.ESRCH {
			m.reclaim(i, gen)
			continue
		}
		if err != nil {
			continue // looked at again on the next join
		}
		// The pidfd names whoever has the PID now: the member, if it was
		// started at the recorded time. If /proc cannot tell (hidepid),
		// the process is watched as the member: never taken for dead.
		if gone(int(pid), start) {
			unix.Close(pidfd)
			m.reclaim(i, gen)
			continue
		}
		key := p.add(target{m: m, slot: i, gen: gen, pidfd: pidfd})
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: key}
		if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, pidfd, &ev); err != nil {
			delete(p.targets, key)
			unix.Close(pidfd)
			continue
		}
		m.watching[i] = watch{gen: gen, key: key, pidfd: pidfd}
	}
}

// gone reports whether process pid is not the one started at start: it
// started at another time (a later process that reuses the number), or it
// has no /proc entry while /proc shows other processes. If /proc cannot
// tell, the process is not taken for dead.
func gone(pid int, start uint64) bool {
	now, err := startTime(pid)
	return err == nil && now != start || os.IsNotExist(err) && !procHidden()
}

// procHidden reports whether /proc hides other processes (hidepid), so that
// a missing /proc/PID says nothing.
func procHidden() bool {
	_, err := os.Stat("/proc/1/stat")
	return err != nil
}

// drop stops watching slot i for m.
func (p *poller) drop(m *Member, i int) {
	w, ok := m.watching[i]
	if !ok {
		return
	}
	delete(m.watching, i)
	delete(p.targets, w.key)
	_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, w.pidfd, nil)
	unix.Close(w.pidfd)
}

// stopIfIdle retires the poller once no member watches, and returns the
// file to close — after the watcher's lock is released: Close waits for
// the goroutine in serve, which may be waiting for the lock.
func (p *poller) stopIfIdle() *os.File {
	if len(p.rosters) == 0 && p.exits == 0 && watcher.p == p {
		watcher.p = nil
		return p.file
	}
	return nil
}

func unwatch(m *Member) {
	if f := unwatchLocked(m); f != nil {
		f.Close()
	}
}

func unwatchLocked(m *Member) *os.File {
	watcher.Lock()
	defer watcher.Unlock()
	p := watcher.p
	if p == nil {
		return nil
	}
	key, ok := p.rosters[m]
	if !ok {
		return nil
	}
	for i := range m.watching {
		p.drop(m, i)
	}
	delete(p.rosters, m)
	delete(p.targets, key)
	_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, m.rec.roster.Sysfd(), nil)
	return p.stopIfIdle()
}

// WatchExit calls onExit, once, from the watcher's goroutine, when the
// process pid exits (as it becomes a zombie: reaping it is not needed, nor
// hindered). pid must be a child not yet waited for, or otherwise known to
// be the process meant: a pidfd is opened on whoever has the number now.
// onExit must not block. Stop, if called first, cancels the watch and
// reports true; once onExit has run or is running, it reports false.
// Without pidfds (Linux before 5.3) WatchExit returns the kernel's
// MissingError.
func WatchExit(pid int, onExit func()) (stop func() bool, err error) {
	if !kernel.Pidfd() {
		return nil, &kernel.MissingError{Facility: "pidfd_open", Since: kernel.SincePidfd, Err: unix.ENOSYS}
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, os.NewSyscallError("pidfd_open", err)
	}
	watcher.Lock()
	defer watcher.Unlock()
	p, err := startLocked()
	if err != nil {
		unix.Close(pidfd)
		return nil, err
	}
	key := p.add(target{slot: -2, pidfd: pidfd, exit: onExit})
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: key}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, pidfd, &ev); err != nil {
		delete(p.targets, key)
		unix.Close(pidfd)
		if f := p.stopIfIdle(); f != nil {
			go f.Close() // not under the lock; see stopIfIdle
		}
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	p.exits++
	return func() bool {
		f, ok := stopExit(p, key)
		if f != nil {
			f.Close()
		}
		return ok
	}, nil
}

func stopExit(p *poller, key int32) (*os.File, bool) {
	watcher.Lock()
	defer watcher.Unlock()
	if _, ok := p.targets[key]; !ok || watcher.p != p {
		return nil, false
	}
	p.dropExit(key)
	return p.stopIfIdle(), true
}

// dropExit stops watching a process exit.
func (p *poller) dropExit(key int32) {
	t := p.targets[key]
	delete(p.targets, key)
	p.exits--
	_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, t.pidfd, nil)
	unix.Close(t.pidfd)
}
