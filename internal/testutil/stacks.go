package testutil

import (
	"bytes"
	"strings"
)

// CountGoroutines returns how many goroutines, in any state, have a frame
// whose function name contains fn: for instance "waitq.(*Queue).poll", to
// know that every poller has returned, and not only let go of its queue.
func CountGoroutines(fn string) int {
	count := 0
	for _, g := range bytes.Split(allStacks(), []byte("\n\n")) {
		_, frames, _ := bytes.Cut(g, []byte("\n"))
		for _, line := range strings.Split(string(frames), "\n") {
			if !strings.HasPrefix(line, "\t") && strings.Contains(line, fn) {
				count++
				break
			}
		}
	}
	return count
}
