//go:build linux

package signal_test

import (
	"context"
	"fmt"
	"time"

	"github.com/eventsync/eventsync/signal"
)

// Notifications that arrive while nobody waits are summed: one Wait takes
// them all and resets the count.
func ExampleSignal() {
	s, err := signal.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	s.NotifyN(2)
	s.Notify()
	s.NotifyN(4)

	n, err := s.Wait(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("read %d (%#x)\n", n, n)
	if _, ok := s.TryWait(); !ok {
		fmt.Println("nothing left")
	}
	// Output:
	// read 7 (0x7)
	// nothing left
}

// Ready lets a Signal sit in a select beside other channels. It takes
// nothing: once it fires, TryWait takes the count.
func ExampleSignal_Ready() {
	s, err := signal.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	jobs := make(chan string, 1)
	jobs <- "build"
	timeout := time.After(time.Minute)

	for range 2 {
		select {
		case j := <-jobs:
			fmt.Println("job:", j)
			s.NotifyN(3) // for example, three files changed meanwhile
		case <-s.Ready():
			if n, ok := s.TryWait(); ok {
				fmt.Println("notifications:", n)
			}
		case <-timeout:
			fmt.Println("timed out")
		}
	}
	// Output:
	// job: build
	// notifications: 3
}
