// Package testutil holds what the tests of every eventsync package share:
// counting threads and descriptors, building C peers, and waiting for a
// condition without sleeping.
package testutil

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Threads returns the number of OS threads of this process, from
// /proc/self/status.
func Threads(t testing.TB) int {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads: line in /proc/self/status")
	return 0
}

// OpenFDs returns the descriptors open in this process, from /proc/self/fd.
func OpenFDs(t testing.TB) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var fds []string
	for _, e := range ents {
		fds = append(fds, e.Name())
	}
	return fds
}

// eventuallyLimit bounds Eventually: far beyond what any state takes to
// reach on a loaded machine, far below the test binary's timeout.
const eventuallyLimit = 2 * time.Minute

// Eventually calls cond, yielding between calls, until it reports true. It
// is for states that other goroutines reach by themselves (a goroutine
// blocking in Acquire). It fails the test if cond is still false after two
// minutes: a hang, not a slow machine.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(eventuallyLimit)
	for i := 0; !cond(); i++ {
		if i%1024 == 1023 && time.Now().After(deadline) {
			t.Fatalf("still waiting, after %v, until %s", eventuallyLimit, what)
		}
		runtime.Gosched()
	}
}

// BuildC compiles a C program with gcc into a temporary directory and
// returns the executable's path.
func BuildC(t testing.TB, name, src string) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatalf("gcc is needed for the C peer tests (.ci/run installs it): %v", err)
	}
	dir := t.TempDir()
	cfile := filepath.Join(dir, name+".c")
	if err := os.WriteFile(cfile, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, name)
	var out bytes.Buffer
	cmd := exec.Command(gcc, "-std=c11", "-Wall", "-Werror", "-O2", "-o", bin, cfile)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", name, err, out.Bytes())
	}
	return bin
}

// Python returns the path of python3, failing the test if there is none.
func Python(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed for the Python peer tests (.ci/run installs it): %v", err)
	}
	return p
}

// PanicMessage calls f and returns what it panicked with, formatted with
// fmt.Sprint, or "" if it returned normally.
func PanicMessage(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	f()
	return ""
}

// Value returns what value returns, failing the test on an error: pass a
// primitive's Value method.
func Value(t testing.TB, value func() (uint64, error)) uint64 {
	t.Helper()
	v, err := value()
	if err != nil {
		t.Fatal(err)
	}
	return v
}
