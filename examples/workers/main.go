// Command workers fans work out to N worker processes and waits for them
// with a waitgroup.WaitGroup shared between the processes, under a deadline.
//
//	go run ./examples/workers -n 4 -count 1000000                # sum 1..count in 4 processes
//	go run ./examples/workers -n 4 -crash 2                      # worker 2 dies before Done
//	go run ./examples/workers -n 4 -hang 3 -timeout 2s           # worker 3 never finishes
//
// The parent calls wg.Add(N), passes the WaitGroup to each worker with
// PassTo under the name "done", and starts the workers: this same binary
// with the "worker" subcommand. Each worker takes waitgroup.Inherited("done"),
// sums its share of 1..count, prints the result and calls Done. The parent
// waits with WaitContext and the -timeout deadline, then prints a summary
// and checks the total against count*(count+1)/2.
//
// The one failure a WaitGroup cannot repair by itself is a member that dies
// before calling Done: nobody else will ever call Done for it, and Wait waits
// for ever (or here, until the deadline). So the parent also watches each
// worker's cmd.Wait: a worker that exits non-zero never reached Done (Done
// is the last thing a worker does before it exits 0), and the parent reports
// it and calls Done on its behalf. The WaitGroup then still ends as soon as
// the last live worker is done, and the crash is named in the summary.
//
// Exit status: 0 when every worker succeeded and the total is right, 1
// otherwise (a crash, the deadline, a wrong total), 2 for bad usage.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/eventsync/eventsync/waitgroup"
)

const wgName = "done" // the name the WaitGroup is passed under

func main() {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		os.Exit(worker(os.Args[2:]))
	}
	os.Exit(parent(os.Args[1:]))
}

// A member is the parent's view of one worker process.
type member struct {
	id       int
	from, to int64
	out, err bytes.Buffer // the worker's stdout and stderr
	sum      int64
	status   string
	ok       bool
	dur      time.Duration
}

func parent(args []string) int {
	fs := flag.NewFlagSet("workers", flag.ContinueOnError)
	n := fs.Int("n", 4, "number of worker `processes`")
	count := fs.Int64("count", 1_000_000, "sum the numbers 1..`count`")
	timeout := fs.Duration("timeout", 10*time.Second, "give up on the workers after `D`")
	crash := fs.Int("crash", 0, "make worker `K` (1..n) panic before it calls Done")
	hang := fs.Int("hang", 0, "make worker `K` (1..n) never finish")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *n < 1 || *count < 1 || *count > 3_000_000_000 || *timeout <= 0 {
		fmt.Fprintln(os.Stderr, "workers: want -n >= 1, 1 <= -count <= 3e9, -timeout > 0 and no arguments")
		fs.Usage()
		return 2
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "workers:", err)
		return 1
	}
	wg, err := waitgroup.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, "workers:", err)
		return 1
	}
	defer wg.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	fmt.Printf("workers: starting %d workers, waiting for them until a deadline of %v\n", *n, *timeout)
	begin := time.Now()
	members := make([]*member, *n)
	var exits sync.WaitGroup // the parent's own goroutines watching cmd.Wait
	wg.Add(*n)
	for i := range members {
		members[i] = startWorker(ctx, wg, &exits, self, i, *n, *count, *crash, *hang, begin)
	}
	waitErr := wg.WaitContext(ctx)
	waited := time.Since(begin)
	if waitErr != nil {
		left, _ := wg.Value()
		fmt.Printf("workers: timed out after %v with %d worker(s) not done: killing them\n", *timeout, left)
	}
	// Collect every exit status and output. After a timeout, CommandContext
	// kills the workers that still run; otherwise every worker has called
	// Done and is exiting by itself (killing one now could kill it between
	// Done and its exit 0, and the parent would count it twice).
	exits.Wait()

	return report(members, *count, waitErr, waited, *timeout)
}

// report prints each worker's result and the total, and returns the exit
// status: 0 only if every worker finished in time with the right sum.
func report(members []*member, count int64, waitErr error, waited, timeout time.Duration) int {
	var total int64
	failed := 0
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  worker\trange\tsum\tstatus\ttime")
	for _, m := range members {
		if m.ok {
			if _, err := fmt.Sscanf(m.out.String(), "sum %d\n", &m.sum); err != nil {
				m.status, m.ok = fmt.Sprintf("bad output %q", m.out.String()), false
			}
		}
		sum := "-"
		if m.ok {
			total += m.sum
			sum = strconv.FormatInt(m.sum, 10)
		} else {
			failed++
		}
		fmt.Fprintf(tw, "  %d\t%d..%d\t%s\t%s\t%v\n", m.id, m.from, m.to, sum, m.status, m.dur.Round(time.Millisecond))
	}
	tw.Flush()
	want := count * (count + 1) / 2
	fmt.Printf("workers: %d of %d workers ok, %d failed; waited %v\n",
		len(members)-failed, len(members), failed, waited.Round(time.Millisecond))
	switch {
	case waitErr != nil:
		fmt.Printf("workers: FAILED: deadline of %v exceeded\n", timeout)
	case failed > 0:
		fmt.Printf("workers: FAILED: total %d of the workers that finished; want %d from all\n", total, want)
	case total != want:
		fmt.Printf("workers: FAILED: total %d, want %d\n", total, want)
	default:
		fmt.Printf("workers: total %d = 1+...+%d, correct\n", total, count)
		return 0
	}
	return 1
}

// startWorker starts worker i of n as a member of wg, and a goroutine in
// exits that waits for it to end and calls Done for it if it died first.
func startWorker(ctx context.Context, wg *waitgroup.WaitGroup, exits *sync.WaitGroup, self string, i, n int, count int64, crash, hang int, begin time.Time) *member {
	k := int64(i)
	m := &member{id: i + 1, from: count*k/int64(n) + 1, to: count * (k + 1) / int64(n)}
	cmd := exec.CommandContext(ctx, self, "worker", "-id", strconv.Itoa(m.id),
		"-from", strconv.FormatInt(m.from, 10), "-to", strconv.FormatInt(m.to, 10),
		"-crash="+strconv.FormatBool(m.id == crash), "-hang="+strconv.FormatBool(m.id == hang))
	cmd.Stdout, cmd.Stderr = &m.out, &m.err
	err := wg.PassTo(cmd, wgName)
	if err == nil {
		err = cmd.Start()
		for _, f := range cmd.ExtraFiles {
			f.Close() // PassTo's duplicates: the worker has its own now
		}
	}
	if err != nil {
		m.status = "not started: " + err.Error()
		wg.Done() // it never will
		return m
	}
	exits.Go(func() {
		err := cmd.Wait()
		m.dur = time.Since(begin)
		if err == nil {
			m.status, m.ok = "ok", true
			return // it called Done before exiting 0
		}
		m.status = describe(ctx, err, &m.err)
		if ctx.Err() != nil {
			return // killed at the deadline: nobody waits any more
		}
		// It died without reaching Done, and never will: do it for it, or
		// Wait would wait for a process that is gone.
		fmt.Printf("workers: worker %d exited without calling Done (%s); calling Done for it\n", m.id, m.status)
		wg.Done()
	})
	return m
}

// describe says how a worker ended, with the first line of its panic if any.
func describe(ctx context.Context, err error, stderr *bytes.Buffer) string {
	var ee *exec.ExitError
	s := err.Error()
	switch {
	case ctx.Err() != nil:
		return "killed at the deadline"
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		s = fmt.Sprintf("crashed, exit %d", ee.ExitCode())
	}
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.HasPrefix(l, "panic: ") {
			return s + ": " + l
		}
	}
	return s
}

// worker sums its share of the numbers and reports to the parent.
func worker(args []string) int {
	fs := flag.NewFlagSet("workers worker", flag.ContinueOnError)
	id := fs.Int("id", 0, "this worker's number")
	from := fs.Int64("from", 1, "first number of the share")
	to := fs.Int64("to", 0, "last number of the share")
	crash := fs.Bool("crash", false, "panic before calling Done")
	hang := fs.Bool("hang", false, "never finish")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	wg, err := waitgroup.Inherited(wgName)
	if err != nil {
		fmt.Fprintf(os.Stderr, "workers worker: %v (the worker is started by workers itself)\n", err)
		return 2
	}
	defer wg.Close()

	var sum int64
	for i := *from; i <= *to; i++ {
		sum += i
	}
	if *crash {
		panic(fmt.Sprintf("worker %d crashes on purpose (-crash)", *id))
	}
	if *hang {
		time.Sleep(24 * time.Hour)
	}
	fmt.Printf("sum %d\n", sum)
	// Done is the last thing a worker does: after it, the worker exits 0, so
	// the parent can take any other exit to mean "never called Done".
	wg.Done()
	return 0
}
