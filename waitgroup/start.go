package waitgroup

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/eventsync/eventsync/internal/eventfd"
	"github.com/eventsync/eventsync/internal/kernel"
	"github.com/eventsync/eventsync/internal/member"
	"github.com/eventsync/eventsync/internal/share"
)

// ErrExited is what an *ExitError wraps: processes started with Start
// exited without their share's Done, and the WaitGroup did it for them.
var ErrExited = errors.New("process exited without Done")

// An ExitError is what WaitContext returns, when the counter reached zero,
// if processes this WaitGroup started with Start exited without their
// share's Done: the WaitGroup did it for them when their exits were seen.
// It satisfies errors.Is(err, ErrExited).
type ExitError struct {
	// PIDs are the processes' IDs, in the order their exits were seen.
	PIDs []int
}

// Error names the processes.
func (e *ExitError) Error() string {
	pids := make([]string, len(e.PIDs))
	for i, pid := range e.PIDs {
		pids[i] = strconv.Itoa(pid)
	}
	what := "process "
	if len(pids) != 1 {
		what = "processes "
	}
	return "waitgroup: " + what + strings.Join(pids, ", ") + " exited without Done"
}

// Unwrap returns ErrExited.
func (e *ExitError) Unwrap() error { return ErrExited }

// Start starts cmd, as cmd.Start does, as a member of wg whose share
// completes when the process exits. It adds one to the counter, passes wg to
// the process under name (as PassTo does: there, Inherited(name) returns
// it), starts the process and watches its exit.
//
// The process's first decrement (Done, Add with a negative delta, or the end
// of a task started with Go) does the share's Done. If the process exits
// without one — it returned early, crashed, or was killed — wg does the Done
// for it when the exit is seen, and the next WaitContext to return reports
// the process in an *ExitError. The share is done once, never twice: the
// process is given a share token, an eventfd holding 1 made for it alone,
// and its first decrement takes the token before it reads the counter,
// while wg does the Done only if it takes the token itself. One window
// remains: a process killed between those two reads, one system call
// apart, loses that Done, and waiters wait for it as for a member passed
// with PassTo. A process that passes wg on (PassTo, Send) passes it without
// the token.
//
// The exit is seen by a pidfd in this process's one epoll instance, which
// the Go netpoller waits on (no thread is held per process), when the
// process becomes a zombie: Start does not reap it. Call cmd.Wait, as after
// cmd.Start. Start closes the duplicates it appends to cmd.ExtraFiles once
// cmd.Start has returned.
//
// If cmd.Start fails, Start takes the one back and returns cmd.Start's
// error as is. Start needs pidfds (Linux 5.3): without them it starts
// nothing and returns an error satisfying
// errors.Is(err, errors.ErrUnsupported). If the process started but its exit
// cannot be watched (at the descriptor limit, say), Start returns an error
// and cmd.Process is set: the process is a member as one passed with PassTo
// is, and cmd.Wait must still be called. Once wg is closed, the processes it
// started are no longer watched.
func (wg *WaitGroup) Start(cmd *exec.Cmd, name string) error {
	if cmd == nil {
		return opError("Start", fmt.Errorf("nil *exec.Cmd: %w", os.ErrInvalid))
	}
	g := wg.group()
	f, err := g.share()
	if err != nil {
		return opError("Start", err)
	}
	if !kernel.Pidfd() {
		return opError("Start", &kernel.MissingError{Facility: "pidfd_open", Since: kernel.SincePidfd, Err: syscall.ENOSYS})
	}
	token, err := eventfd.New(1, eventfd.Semaphore)
	if err != nil {
		return opError("Start", err)
	}
	n := len(cmd.ExtraFiles)
	if err := share.PassTo(cmd, name, kind, f.count, f.zero, f.waiting, token); err != nil {
		_ = token.Close()
		return err
	}
	g.add(1, true)
	err = cmd.Start()
	for _, dup := range cmd.ExtraFiles[n:] {
		_ = dup.Close() // the child has its own, or there is no child
	}
	if err != nil {
		_ = token.Close()
		g.add(-1, false)
		return err
	}
	pid := cmd.Process.Pid
	if err := g.starts.watch(g, pid, token); err != nil {
		return opError("Start", fmt.Errorf("process %d started, but its exit is not watched: %w", pid, err))
	}
	return nil
}

// starts are the processes a WaitGroup started with Start whose exits it
// watches, and those that exited without their share's Done.
type starts struct {
	mu     sync.Mutex
	live   map[*started]struct{} // watched, their tokens not yet looked at
	closed bool
	exited []int        // for WaitContext to report
	n      atomic.Int32 // len(exited), for WaitContext to look at without mu
}

// started is one process started with Start: this process's descriptor of
// its share token, and how to stop watching it. Whoever removes it from
// starts.live owns the token.
type started struct {
	pid   int
	token *eventfd.FD
	stop  func() bool
}

// watch watches pid's exit, for g to take the token then.
func (s *starts) watch(g *group, pid int, token *eventfd.FD) error {
	st := &started{pid: pid, token: token}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = token.Close()
		return nil // closed meanwhile: as if it had been closed after
	}
	if s.live == nil {
		s.live = make(map[*started]struct{})
	}
	s.live[st] = struct{}{}
	s.mu.Unlock()

	// The exit may be seen before WatchExit returns; Close may come too.
	stop, err := member.WatchExit(pid, func() { g.exited(st) })
	s.mu.Lock()
	_, live := s.live[st]
	if live && err != nil {
		delete(s.live, st)
	} else if live {
		st.stop = stop
	}
	s.mu.Unlock()
	switch {
	case err != nil && live:
		_ = token.Close()
	case err == nil && !live:
		stop() // Close has taken it and could not stop the watch yet
	}
	return err
}

// exited is called once pid's exit is seen, from the watcher's goroutine:
// if the share token is still there, the process did not do its share's
// Done, and g does it.
func (g *group) exited(st *started) {
	s := &g.starts
	s.mu.Lock()
	_, live := s.live[st]
	delete(s.live, st)
	s.mu.Unlock()
	if !live {
		return // Close has it
	}
	took, err := st.token.Take(1, nil)
	_ = st.token.Close()
	if err != nil || !took {
		return
	}
	s.mu.Lock()
	s.exited = append(s.exited, st.pid)
	s.n.Store(int32(len(s.exited)))
	s.mu.Unlock()
	defer func() {
		if x := recover(); x != nil {
			panic(fmt.Sprintf("%v: the share of process %d, started with Start, was done by somebody else", x, st.pid))
		}
	}()
	g.add(-1, false)
}

// report returns, and forgets, the processes that exited without Done.
func (s *starts) report() error {
	if s.n.Load() == 0 {
		return nil
	}
	s.mu.Lock()
	pids := s.exited
	s.exited = nil
	s.n.Store(0)
	s.mu.Unlock()
	if len(pids) == 0 {
		return nil
	}
	return &ExitError{PIDs: pids}
}

// close stops watching, and closes this process's descriptors of the
// tokens: the processes' shares are theirs alone from now on.
func (s *starts) close() {
	s.mu.Lock()
	s.closed = true
	live := s.live
	s.live = nil
	stops := make([]func() bool, 0, len(live))
	for st := range live {
		if st.stop != nil {
			stops = append(stops, st.stop)
		}
	}
	s.mu.Unlock()
	// Not under mu: the watcher calls exited with its own lock held.
	for _, stop := range stops {
		stop()
	}
	for st := range live {
		_ = st.token.Close()
	}
}

// takeToken takes, in a process started with Start, the share token, if
// this is the first decrement: it reports the token, for the caller to
// close or put back, and whether it held the 1.
func (g *group) takeToken() (*eventfd.FD, bool) {
	token := g.token.Swap(nil)
	if token == nil {
		return nil, false
	}
	took, _ := token.Take(1, nil)
	return token, took
}

// putToken puts back what takeToken took, for a decrement that panics
// and leaves everything as it was.
func (g *group) putToken(token *eventfd.FD, took bool) {
	if token == nil {
		return
	}
	if took {
		_ = token.Write(1)
	}
	g.token.Store(token)
}
