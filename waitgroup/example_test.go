package waitgroup_test

import (
	"context"
	"fmt"
	"log"
	"os/exec"
	"sync/atomic"
	"time"

	"github.com/eventsync/eventsync/waitgroup"
)

func ExampleWaitGroup() {
	wg, err := waitgroup.New()
	if err != nil {
		log.Fatal(err)
	}
	defer wg.Close()

	var sum atomic.Int64
	for i := range 5 {
		wg.Go(func() { sum.Add(int64(i)) })
	}
	wg.Wait()
	fmt.Println(sum.Load())
	// Output: 10
}

// Members in child processes call Done; the parent waits with a deadline.
func ExampleWaitGroup_WaitContext() {
	wg, err := waitgroup.New()
	if err != nil {
		log.Fatal(err)
	}
	defer wg.Close()

	for range 3 {
		cmd := exec.Command("/path/to/worker") // calls waitgroup.Inherited("done"), then Done
		if err := wg.PassTo(cmd, "done"); err != nil {
			log.Print(err)
			return
		}
		wg.Add(1)
		if err := cmd.Start(); err != nil {
			wg.Done()
			log.Print(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := wg.WaitContext(ctx); err != nil {
		log.Print("workers still running: ", err)
	}
}

// As with sync.WaitGroup, the zero value is ready to use.
func ExampleWaitGroup_zeroValue() {
	var wg waitgroup.WaitGroup
	var done atomic.Int64
	for range 4 {
		wg.Go(func() { done.Add(1) })
	}
	wg.Wait()
	fmt.Println(done.Load())
	// Output: 4
}
