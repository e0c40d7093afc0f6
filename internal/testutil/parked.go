package testutil

import (
	"bytes"
	"runtime"
	"sync"
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
	parked(t, fn, n, func(header []byte) bool {
		return parkedState(header) || bytes.Contains(header, []byte("[semacquire"))
	})
}

func parked(t testing.TB, fn string, n int, settled func(header []byte) bool) {
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

func countParked(fn string, settled func(header []byte) bool) int {
	stacksMu.Lock()
	defer stacksMu.Unlock()
	stacks = stacksInto(stacks)
	count := 0
	// Parsed in place, allocating nothing: a benchmark that waits for its
	// goroutines to sleep must not make the collector run meanwhile.
	rest := stacks
	for len(rest) > 0 {
		var g []byte
		g, rest, _ = bytes.Cut(rest, []byte("\n\n"))
		header, frames, _ := bytes.Cut(g, []byte("\n"))
		if !settled(header) {
			continue
		}
		for len(frames) > 0 {
			var line []byte
			line, frames, _ = bytes.Cut(frames, []byte("\n"))
			if len(line) > 0 && line[0] != '\t' && bytes.Contains(line, []byte(fn)) {
				count++
				break
			}
		}
	}
	return count
}

// stacks is countParked's buffer, kept between calls.
var (
	stacksMu sync.Mutex
	stacks   []byte
)

// parkedState reports whether a goroutine header such as
// "goroutine 7 [chan receive, 2 minutes]:" shows a settled wait.
func parkedState(header []byte) bool {
	_, state, ok := bytes.Cut(header, []byte("["))
	if !ok {
		return false
	}
	state, _, _ = bytes.Cut(state, []byte("]"))
	state, _, _ = bytes.Cut(state, []byte(","))
	switch string(state) {
	case "select", "select (no cases)",
		"chan receive", "chan send",
		"chan receive (nil chan)", "chan send (nil chan)",
		"IO wait", "sync.Cond.Wait", "sync.WaitGroup.Wait":
		return true
	}
	return false
}

func allStacks() []byte { return stacksInto(nil) }

// stacksInto returns the stacks of all goroutines, in buf if it is large
// enough.
func stacksInto(buf []byte) []byte {
	buf = buf[:cap(buf)]
	if len(buf) < 1<<16 {
		buf = make([]byte, 1<<16)
	}
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}
