package semaphore_test

import (
	"context"
	"fmt"
	"log"
	"os/exec"
	"sync"

	"github.com/eventsync/eventsync/semaphore"
)

// At most two workers run at once. The same Semaphore, passed to child
// processes, would bound them too.
func ExampleSemaphore() {
	sem, err := semaphore.New(2)
	if err != nil {
		log.Fatal(err)
	}
	defer sem.Close()

	ctx := context.Background()
	var mu sync.Mutex
	running, most := 0, 0
	var wg sync.WaitGroup
	for range 10 {
		if err := sem.Acquire(ctx, 1); err != nil {
			log.Print(err)
			return
		}
		wg.Go(func() {
			defer sem.Release(1)
			mu.Lock()
			running++
			most = max(most, running)
			mu.Unlock()

			mu.Lock()
			running--
			mu.Unlock()
		})
	}
	wg.Wait()
	fmt.Println("more than 2 at once:", most > 2)
	// Output: more than 2 at once: false
}

// A weighted Acquire takes all it asks for or nothing.
func ExampleSemaphore_TryAcquire() {
	sem, err := semaphore.New(3)
	if err != nil {
		log.Fatal(err)
	}
	defer sem.Close()

	fmt.Println(sem.TryAcquire(2)) // 1 left
	fmt.Println(sem.TryAcquire(2)) // not enough: takes nothing
	v, _ := sem.Value()
	fmt.Println(v)
	// Output:
	// true
	// false
	// 1
}

// The parent passes a Semaphore to a child, which takes it with Inherited.
func ExampleSemaphore_PassTo() {
	sem, err := semaphore.New(4)
	if err != nil {
		log.Fatal(err)
	}
	defer sem.Close()

	cmd := exec.Command("/path/to/worker")
	if err := sem.PassTo(cmd, "jobs"); err != nil {
		log.Print(err)
		return
	}
	if err := cmd.Start(); err != nil {
		log.Print(err)
		return
	}
	for _, f := range cmd.ExtraFiles {
		f.Close() // the child has its own copy now
	}
	// In the worker:
	//
	//	sem, err := semaphore.Inherited("jobs")
	//	...
	//	if err := sem.Acquire(ctx, 1); err != nil { ... }
	//	defer sem.Release(1)
}

// Code written for golang.org/x/sync/semaphore runs unchanged with this
// package's import path: Weighted and NewWeighted are here.
func ExampleNewWeighted() {
	var sem *semaphore.Weighted = semaphore.NewWeighted(3)
	defer sem.Close()

	if err := sem.Acquire(context.Background(), 2); err != nil {
		log.Print(err)
		return
	}
	fmt.Println(sem.TryAcquire(2)) // only 1 is free
	sem.Release(2)
	fmt.Println(sem.TryAcquire(2))
	// Output:
	// false
	// true
}

// Holdings reads the record of the processes holding a shared Semaphore,
// for metrics. File shares it here; PassTo and Send do the same.
func ExampleSemaphore_Holdings() {
	sem, err := semaphore.New(4)
	if err != nil {
		log.Print(err)
		return
	}
	defer sem.Close()
	if err := sem.Acquire(context.Background(), 3); err != nil {
		log.Print(err)
		return
	}
	f, err := sem.File() // a descriptor for a peer: the Semaphore is shared
	if err != nil {
		log.Print(err)
		return
	}
	f.Close()
	h, err := sem.Holdings()
	if err != nil {
		log.Print(err)
		return
	}
	fmt.Printf("size %d, held %d by %d of %d member processes\n", h.Size, h.Held, h.Holders, h.Members)
	sem.Release(3)
	// Output: size 4, held 3 by 1 of 1 member processes
}
