// Command jobserver is a "make -j"-style runner: it runs shell commands, at
// most J at once across the whole process tree, however deeply the commands
// nest their own runs of it. The job slots are a semaphore.Semaphore, passed
// to every command like make passes its jobserver pipe.
//
//	go run ./examples/jobserver -j 3 -timeout 30s -- 'sleep 1; echo a' 'echo b' 'exit 3'
//	go run ./examples/jobserver -j 3 -f commands.txt   # one command a line; blank and # lines skipped
//
// A command may run the client, this same binary, whose path is exported to
// every command as $EVENTSYNC_JOBSERVER_BIN:
//
//	go run ./examples/jobserver -j 2 -- '"$EVENTSYNC_JOBSERVER_BIN" client -- "sleep 1" "sleep 1" "sleep 1"' 'sleep 1'
//
// The runner creates the semaphore with J permits, takes one before it starts
// each command (sh -c), hands the semaphore to the command with PassTo under
// the name "jobserver", and gives the permit back when the command ends,
// whatever its exit status. The client takes semaphore.Inherited("jobserver")
// and runs its own commands under the same permits.
//
// Why at most J jobs run, and why nesting cannot deadlock. The runner holds
// a permit for each command while it runs, so a command that runs the client
// has paid for one job already: the client uses that permit as its implicit
// slot, as a sub-make does, and runs one of its commands on it without asking
// the semaphore. Each further command it runs at the same time takes a permit
// of its own just before it starts, and gives it back when it ends. So every
// running job sits on a slot of its own - a permit, or the implicit slot that
// its client's parent pays for while the client itself only waits - and no
// more than J run at once. And a client can always make progress with no free
// permit: when it needs a slot it waits for its implicit slot and a permit at
// once, taking whichever comes first, and its implicit slot comes back when
// its own running command ends. By induction on the nesting depth every
// command ends and gives its permit back. Had the client taken a permit for
// every command, -j 1 would deadlock at once: the only permit is held for the
// client, which would wait for a second. (Hence one command must not run two
// clients side by side: they would share one implicit slot.)
//
// A command killed, or a client killed while it holds permits, loses no
// capacity: every Go process holding the semaphore is a member of it, and
// when one dies another gives back the permits it held (see the semaphore
// package's "When a process dies"). Kill a client with SIGKILL and the next
// commands still run J at once.
//
// On -timeout (or Ctrl-C) running commands are killed, with their whole
// process group, and waiting ones are not started. A summary lists every
// command, its status and duration, the most commands this runner had
// running at once, and the permits free at the end, which should be all J:
// once every command has ended nobody holds one; if member processes died,
// it also says how many, and how many permits were given back for them.
// Exit status: 0 when every command succeeded, 1 when one failed, 2 for bad
// usage, 124 on timeout, 130 when interrupted.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/eventsync/eventsync/semaphore"
)

const (
	semName = "jobserver"               // the name the semaphore is passed under
	binEnv  = "EVENTSYNC_JOBSERVER_BIN" // this binary, for commands that run the client
)

// A result is what became of one command.
type result struct {
	cmd     string
	started bool
	err     error // of Start or Wait
	killed  bool  // by the runner, on timeout or interrupt
	dur     time.Duration
}

func (r result) status() string {
	var ee *exec.ExitError
	switch {
	case !r.started && r.err == nil:
		return "not started"
	case !r.started:
		return "failed to start: " + r.err.Error()
	case r.err == nil:
		return "ok"
	case r.killed:
		return "killed"
	case errors.As(r.err, &ee) && ee.ExitCode() >= 0:
		return fmt.Sprintf("exit %d", ee.ExitCode())
	default:
		return r.err.Error() // "signal: ...", for one
	}
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "client" {
		os.Exit(client(os.Args[2:]))
	}
	os.Exit(runner(os.Args[1:]))
}

func runner(args []string) int {
	fs := flag.NewFlagSet("jobserver", flag.ContinueOnError)
	j := fs.Int("j", runtime.NumCPU(), "run at most `N` commands at once, in the whole process tree")
	timeout := fs.Duration("timeout", 0, "after `D`, kill running commands and start no more (0: no limit)")
	file := fs.String("f", "", "read commands from `file`, one a line (blank and # lines skipped)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage:\n  jobserver [-j N] [-timeout D] [-f file] [--] command...\n"+
			"  \"$%s\" client [-f file] [--] command...   (inside a command of the runner)\nOptions:\n", binEnv)
		fs.PrintDefaults()
	}
	cmds, code := parse(fs, args, file)
	if code < 0 && (*j < 1 || *timeout < 0) {
		fmt.Fprintln(fs.Output(), "jobserver: want -j >= 1 and -timeout >= 0")
		code = 2
	}
	if code >= 0 {
		return code
	}
	self, err := os.Executable()
	if err == nil {
		err = os.Setenv(binEnv, self) // inherited by every command
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "jobserver:", err)
		return 1
	}
	sem, err := semaphore.New(int64(*j))
	if err != nil {
		fmt.Fprintln(os.Stderr, "jobserver:", err)
		return 1
	}
	defer sem.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}

	begin := time.Now()
	results := make([]result, len(cmds))
	var running, maxRunning atomic.Int64
	var wg sync.WaitGroup
	for i, c := range cmds {
		results[i].cmd = c
		if sem.Acquire(ctx, 1) != nil {
			break // timed out or interrupted: the rest are not started
		}
		wg.Go(func() {
			defer sem.Release(1) // whatever became of the command
			n := running.Add(1)
			defer running.Add(-1)
			for m := maxRunning.Load(); n > m && !maxRunning.CompareAndSwap(m, n); m = maxRunning.Load() {
			}
			results[i] = run(ctx, sem, c, true)
		})
	}
	wg.Wait()

	code = summary(os.Stdout, "jobserver", results, time.Since(begin))
	fmt.Printf("jobserver: at most %d of %d commands of this runner at once\n", maxRunning.Load(), *j)
	if err := permitsAtEnd(os.Stdout, sem, int64(*j)); err != nil {
		fmt.Fprintln(os.Stderr, "jobserver:", err)
		code = 1
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		fmt.Printf("jobserver: timed out after %v\n", *timeout)
		return 124
	case ctx.Err() != nil:
		fmt.Println("jobserver: interrupted")
		return 130
	}
	return code
}

// reclaimWait bounds how long the runner waits, once every command has
// ended, for permits that are not free yet. Those of a client killed at the
// end come back a moment later, when this process's watcher sees it die;
// those that a process outside the record kept (a peer holding only the
// eventfd) or that a member still alive holds (a client left running by a
// command that ended) may never come back.
const reclaimWait = 10 * time.Second

// permitsAtEnd prints, once every command has ended, the permits free out of
// j, waiting for any not free yet for at most reclaimWait, and what the
// members that died held.
func permitsAtEnd(w io.Writer, sem *semaphore.Semaphore, j int64) error {
	free, err := sem.Value()
	if err == nil && free < uint64(j) {
		ctx, cancel := context.WithTimeout(context.Background(), reclaimWait)
		if sem.Acquire(ctx, j) == nil {
			sem.Release(j)
		}
		cancel()
		free, err = sem.Value()
	}
	if err != nil {
		return err
	}
	h, err := sem.Holdings()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "jobserver: permits free at the end: %d of %d\n", free, j)
	if h.Reclaims > 0 || h.InFlight > 0 {
		fmt.Fprintf(w, "jobserver: %d member processes died; %d permits they held given back, %d in flight maybe lost\n",
			h.Reclaims, h.Reclaimed, h.InFlight)
	}
	return nil
}

// client runs commands under the permits of the runner that started it.
func client(args []string) int {
	fs := flag.NewFlagSet("jobserver client", flag.ContinueOnError)
	file := fs.String("f", "", "read commands from `file`, one a line")
	cmds, code := parse(fs, args, file)
	if code >= 0 {
		return code
	}
	sem, err := semaphore.Inherited(semName)
	if err != nil {
		fmt.Fprintf(os.Stderr, "jobserver client: %v (run the client from a command of the jobserver)\n", err)
		return 2
	}
	defer sem.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	begin := time.Now()
	implicit := make(chan struct{}, 1) // the slot our parent holds a permit for
	implicit <- struct{}{}
	results := make([]result, len(cmds))
	var wg sync.WaitGroup
	for i, c := range cmds {
		results[i].cmd = c
		permit, err := takeSlot(ctx, sem, implicit)
		if err != nil {
			break
		}
		wg.Go(func() {
			defer func() {
				if permit {
					sem.Release(1)
				} else {
					implicit <- struct{}{}
				}
			}()
			// Same process group as the client: a runner that kills the
			// client's group on timeout kills these commands too.
			results[i] = run(ctx, sem, c, false)
		})
	}
	wg.Wait()
	return summary(os.Stderr, fmt.Sprintf("jobserver client[%d]", os.Getpid()), results, time.Since(begin))
}

// takeSlot waits for whichever comes first: the implicit slot, or a permit
// from sem. It reports whether it took a permit.
func takeSlot(ctx context.Context, sem *semaphore.Semaphore, implicit chan struct{}) (permit bool, err error) {
	select {
	case <-implicit:
		return false, nil
	default:
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	acquired := make(chan error, 1)
	go func() { acquired <- sem.Acquire(actx, 1) }()
	select {
	case err := <-acquired:
		return err == nil, err
	case <-implicit:
		cancel()
		if <-acquired == nil { // it won the race after all: give it back
			sem.Release(1)
		}
		return false, nil
	}
}

// run runs one command with sh -c, passing it the semaphore. With newGroup
// the command gets its own process group, killed whole when ctx is done.
func run(ctx context.Context, sem *semaphore.Semaphore, c string, newGroup bool) result {
	cmd := exec.CommandContext(ctx, "sh", "-c", c)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.WaitDelay = time.Second
	if newGroup {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	}
	if err := sem.PassTo(cmd, semName); err != nil {
		return result{cmd: c, err: err}
	}
	begin := time.Now()
	err := cmd.Start()
	for _, f := range cmd.ExtraFiles {
		f.Close() // duplicates made by PassTo; the child has its own
	}
	if err != nil {
		if ctx.Err() != nil { // Start refuses once ctx is done
			return result{cmd: c}
		}
		return result{cmd: c, err: err}
	}
	err = cmd.Wait()
	return result{cmd: c, started: true, err: err, killed: err != nil && ctx.Err() != nil, dur: time.Since(begin)}
}

// parse parses flags and collects the commands: the arguments, then the
// lines of the -f file. A code >= 0 is an exit status: stop there.
func parse(fs *flag.FlagSet, args []string, file *string) (cmds []string, code int) {
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil, 0
	} else if err != nil {
		return nil, 2
	}
	cmds = fs.Args()
	if *file != "" {
		f, err := os.Open(*file)
		if err != nil {
			fmt.Fprintf(fs.Output(), "%s: %v\n", fs.Name(), err)
			return nil, 2
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
				cmds = append(cmds, l)
			}
		}
		if err := sc.Err(); err != nil {
			fmt.Fprintf(fs.Output(), "%s: %s: %v\n", fs.Name(), *file, err)
			return nil, 2
		}
	}
	if len(cmds) == 0 {
		fmt.Fprintf(fs.Output(), "%s: no commands\n", fs.Name())
		fs.Usage()
		return nil, 2
	}
	return cmds, -1
}

// summary prints one line per command and the totals, and returns the exit
// status: 1 if a command failed or was not started, else 0.
func summary(w io.Writer, who string, results []result, wall time.Duration) int {
	fmt.Fprintf(w, "%s: summary\n", who)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tstatus\ttime\tcommand")
	var ok, failed, notStarted int
	for i, r := range results {
		d := "-"
		switch {
		case !r.started && r.err == nil:
			notStarted++
		case r.err == nil:
			ok++
			d = r.dur.Round(time.Millisecond).String()
		default:
			failed++
			d = r.dur.Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", i+1, r.status(), d, r.cmd)
	}
	tw.Flush()
	fmt.Fprintf(w, "%s: %d commands: %d ok, %d failed, %d not started, in %v\n",
		who, len(results), ok, failed, notStarted, wall.Round(time.Millisecond))
	if failed+notStarted > 0 {
		return 1
	}
	return 0
}
