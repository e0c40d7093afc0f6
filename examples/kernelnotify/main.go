// Command kernelnotify shows the kernel itself notifying a signal.Signal.
//
//	go run ./examples/kernelnotify [-timeout D]
//
// An eventfd is how the Linux kernel tells user space that something
// happened: a native AIO request submitted with IOCB_FLAG_RESFD, an io_uring
// with a registered eventfd, or a cgroup memory event each add to an eventfd
// counter from inside the kernel. Because a signal.Signal is such an
// eventfd, a goroutine can wait for those events with Wait and a context,
// parked in the Go runtime's netpoller like any other wait, and the
// notifications coalesce like any others.
//
// This program hands the descriptor from (*signal.Signal).File to a native
// AIO read of a temporary file. No code of ours calls Notify: when the read
// completes, the kernel adds 1 to the counter, and Wait returns it. The AIO
// request is made for linux/amd64; elsewhere the program says it cannot.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/eventsync/eventsync/internal/kernelaio"
	"github.com/eventsync/eventsync/signal"
)

func main() {
	timeout := flag.Duration("timeout", 5*time.Second, "how long to wait for the kernel's notification")
	flag.Parse()
	if err := run(*timeout); err != nil {
		fmt.Fprintf(os.Stderr, "kernelnotify: %v\n", err)
		os.Exit(1)
	}
}

func run(timeout time.Duration) error {
	s, err := signal.New()
	if err != nil {
		return err
	}
	defer s.Close()

	dir, err := os.MkdirTemp("", "kernelnotify")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "data")
	if err := os.WriteFile(path, []byte("hello from the page cache\n"), 0o600); err != nil {
		return err
	}

	// A goroutine waits before anything is pending: it blocks in the
	// netpoller until the kernel writes.
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	type result struct {
		n   uint64
		err error
	}
	waited := make(chan result, 1)
	go func() {
		n, err := s.Wait(ctx)
		waited <- result{n, err}
	}()

	f, err := s.File()
	if err != nil {
		return err
	}
	defer f.Close()
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var efd int
	if err := raw.Control(func(fd uintptr) { efd = int(fd) }); err != nil {
		return err
	}

	fmt.Printf("Submitting an AIO read of %s, with the kernel to notify eventfd %d\n", filepath.Base(path), efd)
	buf := make([]byte, 64)
	n, err := kernelaio.Read(efd, path, buf)
	if errors.Is(err, errors.ErrUnsupported) {
		cancel()
		<-waited
		fmt.Println("Native AIO is not available here:", err)
		return nil
	}
	if err != nil {
		cancel()
		<-waited
		return err
	}
	fmt.Printf("The kernel read %d bytes: %q\n", n, buf[:n])

	r := <-waited
	if r.err != nil {
		return fmt.Errorf("waiting for the kernel's notification: %w", r.err)
	}
	fmt.Printf("Wait returned %d: the kernel notified the Signal once, and nobody called Notify\n", r.n)
	return nil
}
