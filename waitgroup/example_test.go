package waitgroup_test

import (
	"context"
	"errors"
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

// Workers started with Start: a worker that crashes, or exits without Done,
// does not hang Wait; the parent learns which one it was.
func ExampleWaitGroup_Start() {
	var wg waitgroup.WaitGroup
	defer wg.Close()

	var cmds []*exec.Cmd
	for range 3 {
		cmd := exec.Command("/path/to/worker") // calls waitgroup.Inherited("done"), then Done
		if err := wg.Start(cmd, "done"); err != nil {
			log.Print(err) // nothing was added for it
			continue
		}
		cmds = append(cmds, cmd)
	}
	err := wg.WaitContext(context.Background())
	if exited, ok := errors.AsType[*waitgroup.ExitError](err); ok {
		log.Print("workers that exited without Done: ", exited.PIDs)
	}
	for _, cmd := range cmds {
		_ = cmd.Wait() // Start does not reap: the caller waits, as after cmd.Start
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
