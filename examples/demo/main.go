// Command demo is the parent/child eventfd demo of the eventfd(2) man page,
// rebuilt on eventsync:
//
//	go run ./examples/demo [-s] [-tick D] <num>...
//
// The parent starts a child (this program run again), which inherits one
// primitive. The child writes each number, one per tick; the parent reads
// every two ticks. Without -s the parent waits on a signal.Signal, so its
// reads coalesce ("Parent read 7"); with -s it acquires from a
// semaphore.Semaphore, so every read is 1. The parent exits once the child
// has finished and everything written has been read.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/eventsync/eventsync/semaphore"
	"github.com/eventsync/eventsync/signal"
)

// The child learns its role, and what to write, from its environment.
const (
	childEnv = "EVENTSYNC_DEMO_CHILD"
	efdName  = "efd"
)

// efd is what both sides see of the shared eventfd.
type efd interface {
	write(n uint64)
	read(ctx context.Context) (uint64, error)
	PassTo(cmd *exec.Cmd, name string) error
	Close() error
}

type sig struct{ *signal.Signal }

func (s sig) write(n uint64)                           { s.NotifyN(n) }
func (s sig) read(ctx context.Context) (uint64, error) { return s.Wait(ctx) }

type sem struct{ *semaphore.Semaphore }

func (s sem) write(n uint64) { s.Release(int64(n)) }
func (s sem) read(ctx context.Context) (uint64, error) {
	if err := s.Acquire(ctx, 1); err != nil {
		return 0, err
	}
	return 1, nil
}

func main() {
	semMode := flag.Bool("s", false, "semaphore-like semantics: every read takes 1")
	tick := flag.Duration("tick", time.Second, "the child writes once a `tick`; the parent reads every two")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: %s [options] <num>...\nOptions can be:\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 || *tick <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	var nums []uint64
	var total uint64
	for _, a := range flag.Args() {
		n, err := strconv.ParseUint(a, 0, 64) // as strtoull(a, NULL, 0)
		if err != nil {
			fmt.Fprintf(os.Stderr, "demo: %v\n", err)
			os.Exit(2)
		}
		nums = append(nums, n)
		total += n // in -s mode, read one at a time
	}
	var err error
	if os.Getenv(childEnv) != "" {
		err = child(*semMode, *tick, nums)
	} else {
		err = parent(*semMode, *tick, total)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

// child writes each number, one per tick. It starts half a tick late, so
// that its writes fall between the parent's reads rather than on them.
func child(semMode bool, tick time.Duration, nums []uint64) error {
	e, err := inherit(semMode)
	if err != nil {
		return err
	}
	defer e.Close()
	time.Sleep(tick / 2)
	for _, n := range nums {
		fmt.Printf("Child writing %d to efd\n", n)
		e.write(n)
		time.Sleep(tick)
	}
	fmt.Println("Child completed write loop")
	return nil
}

func parent(semMode bool, tick time.Duration, total uint64) error {
	var e efd
	if semMode {
		s, err := semaphore.New(0)
		if err != nil {
			return err
		}
		e = sem{s}
	} else {
		s, err := signal.New()
		if err != nil {
			return err
		}
		e = sig{s}
	}
	defer e.Close()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := e.PassTo(cmd, efdName); err != nil {
		return err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	for _, f := range cmd.ExtraFiles {
		f.Close() // the child has its own now
	}

	// A child that fails stops the parent's wait instead of hanging it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		if err != nil {
			cancel()
		}
		exited <- err
	}()

	for read, k := uint64(0), 1; read < total; k++ {
		u, err := e.read(ctx)
		if err != nil {
			if cerr := <-exited; cerr != nil {
				return fmt.Errorf("child: %w", cerr)
			}
			return err
		}
		fmt.Printf("Parent read %d (%#x) from efd\n", u, u)
		read += u
		if read < total {
			time.Sleep(time.Until(start.Add(time.Duration(2*k) * tick)))
		}
	}
	if err := <-exited; err != nil {
		return fmt.Errorf("child: %w", err)
	}
	return nil
}

func inherit(semMode bool) (efd, error) {
	if semMode {
		s, err := semaphore.Inherited(efdName)
		if err != nil {
			return nil, err
		}
		return sem{s}, nil
	}
	s, err := signal.Inherited(efdName)
	if err != nil {
		return nil, err
	}
	return sig{s}, nil
}
