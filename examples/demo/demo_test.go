//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventsync/eventsync/internal/testutil"
	"go.uber.org/goleak"
)

// demoBin is the demo, built once for all the tests by TestMain.
var demoBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "demo-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	demoBin = filepath.Join(dir, "demo")
	if err := testutil.GoBuildTo(demoBin, "."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// demo runs the built demo with args and returns its standard output, its
// standard error and its exit status. The context only keeps a hung demo
// from hanging the test; no assertion depends on time.
func demo(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, demoBin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	t.Logf("demo %s:\n%s%s", strings.Join(args, " "), out.String(), errOut.String())
	return out.String(), errOut.String(), testutil.ExitStatus(ctx, t, "demo", err)
}

// The three line formats of the man page's C demo.
var (
	childWrite = regexp.MustCompile(`^Child writing ([0-9]+) to efd$`)
	parentRead = regexp.MustCompile(`^Parent read ([0-9]+) \(0x([0-9a-f]+)\) from efd$`)
	childDone  = regexp.MustCompile(`^Child completed write loop$`)
)

// transcript is what the demo printed, line by line.
type transcript struct {
	writes    []uint64 // the child's, in order
	reads     []uint64 // the parent's, in order
	completed int      // "Child completed write loop" lines
}

// parse checks every line against the C demo's formats, and that the child
// says it completed only after its last write.
func parse(t *testing.T, out string) transcript {
	t.Helper()
	var tr transcript
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if m := childWrite.FindStringSubmatch(line); m != nil {
			if tr.completed > 0 {
				t.Errorf("%q after the child completed its write loop", line)
			}
			tr.writes = append(tr.writes, parseUint(t, m[1], 10))
			continue
		}
		if m := parentRead.FindStringSubmatch(line); m != nil {
			dec, hex := parseUint(t, m[1], 10), parseUint(t, m[2], 16)
			if dec != hex {
				t.Errorf("%q: %d is not %#x", line, dec, hex)
			}
			tr.reads = append(tr.reads, dec)
			continue
		}
		if childDone.MatchString(line) {
			tr.completed++
			continue
		}
		t.Errorf("line %q is none of the C demo's formats", line)
	}
	return tr
}

func parseUint(t *testing.T, s string, base int) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, base, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func checkChild(t *testing.T, tr transcript) {
	t.Helper()
	want := []uint64{1, 2, 3, 4, 5}
	if fmt.Sprint(tr.writes) != fmt.Sprint(want) {
		t.Errorf("child wrote %v, want %v in order", tr.writes, want)
	}
	if tr.completed != 1 {
		t.Errorf("%q printed %d times, want once", "Child completed write loop", tr.completed)
	}
}

func sum(v []uint64) uint64 {
	var s uint64
	for _, n := range v {
		s += n
	}
	return s
}

// Counter mode: the parent's reads coalesce, and they add up to what the
// child wrote. How they group depends on scheduling, so only the sum is
// checked.
func TestCounterMode(t *testing.T) {
	out, _, code := demo(t, "-tick", "150ms", "1", "2", "3", "4", "5")
	if code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
	tr := parse(t, out)
	checkChild(t, tr)
	if s := sum(tr.reads); s != 15 {
		t.Errorf("parent reads %v sum to %d, want 15", tr.reads, s)
	}
	for _, r := range tr.reads {
		if r == 0 {
			t.Errorf("parent read 0: a Wait returned with nothing pending")
		}
	}
}

// Semaphore mode: every read takes 1, fifteen of them.
func TestSemaphoreMode(t *testing.T) {
	out, _, code := demo(t, "-s", "-tick", "60ms", "1", "2", "3", "4", "5")
	if code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
	tr := parse(t, out)
	checkChild(t, tr)
	if len(tr.reads) != 15 || sum(tr.reads) != 15 {
		t.Errorf("parent reads %v, want fifteen reads of 1", tr.reads)
	}
	for _, r := range tr.reads {
		if r != 1 {
			t.Errorf("parent read %d in semaphore mode, want 1", r)
		}
	}
}

// Usage errors exit with status 2, as the flag package does, and start no
// child.
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-tick", "10ms", "1", "two", "3"},
		{"-tick", "10ms", "1.5"},
		{},
	} {
		out, _, code := demo(t, args...)
		if code != 2 {
			t.Errorf("demo %q: exit status %d, want 2", args, code)
		}
		if out != "" {
			t.Errorf("demo %q printed %q on stdout", args, out)
		}
	}
}
