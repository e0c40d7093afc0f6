package testutil

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Parked waits until at least n goroutines are parked (blocked on a
// channel, a select or the netpoller) with a frame whose function name
// contains fn, for instance "semaphore.(*Semaphore).Acquire". It reads the
// stacks of all goroutines, so it needs no hook in the code under test, and
// it fails the test if that does not happen within a generous deadline.
//
// A goroutine that is running, runnable, in a system call or waiting for a
// mutex is not counted: it has not settled yet.
func Parked(t testing.TB, fn string, n int) {
	t.Helper()
	parked(t, fn, n, parkedState)
}

// ParkedReaders is Parked for goroutines reading one *os.File: all but one
// of them sleep on the file's read lock, a runtime semaphore, which Parked
// does not count because a mutex looks the same.
func ParkedReaders(t testing.TB, fn string, n int) {
	t.Helper()
	parked(t, fn, n, func(header string) bool {
		return parkedState(header) || strings.Contains(header, "[semacquire")
	})
}

func parked(t testing.TB, fn string, n int, settled func(header string) bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if countParked(fn, settled) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d goroutines parked in %s after a minute:\n%s", n, fn, allStacks())
		}
		runtime.Gosched()
	}
}

// CountParked returns how many goroutines are parked with a frame whose
// function name contains fn (see Parked).
func CountParked(fn string) int { return countParked(fn, parkedState) }

func countParked(fn string, settled func(header string) bool) int {
	count := 0
	for _, g := range bytes.Split(allStacks(), []byte("\n\n")) {
		header, frames, _ := bytes.Cut(g, []byte("\n"))
		if !settled(string(header)) {
			continue
		}
		for _, line := range strings.Split(string(frames), "\n") {
			if !strings.HasPrefix(line, "\t") && strings.Contains(line, fn) {
				count++
				break
			}
		}
	}
	return count
}

// parkedState reports whether a goroutine header such as
// "goroutine 7 [chan receive, 2 minutes]:" shows a settled wait.
func parkedState(header string) bool {
	_, state, ok := strings.Cut(header, "[")
	if !ok {
		return false
	}
	state, _, _ = strings.Cut(state, "]")
	state, _, _ = strings.Cut(state, ",")
	switch {
	case state == "select", state == "select (no cases)",
		state == "chan receive", state == "chan send",
		state == "chan receive (nil chan)", state == "chan send (nil chan)",
		state == "IO wait", state == "sync.Cond.Wait", state == "sync.WaitGroup.Wait":
		return true
	}
	return false
}

func allStacks() []byte {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}
