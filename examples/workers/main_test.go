package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/eventsync/eventsync/internal/testutil"
)

// workers runs the binary with args and returns its combined output and
// exit status. The context only keeps a hung parent from hanging the test;
// no assertion depends on time.
func workers(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, testutil.GoBuild(t, "."), args...).CombinedOutput()
	t.Logf("workers %s:\n%s", strings.Join(args, " "), out)
	return string(out), testutil.ExitStatus(ctx, t, "workers", err)
}

func TestSum(t *testing.T) {
	out, code := workers(t, "-n", "4", "-count", "100000")
	if code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
	for _, want := range []string{
		"1..25000 ", "25001..50000 ", "50001..75000 ", "75001..100000 ",
		"4 of 4 workers ok, 0 failed",
		"total 5000050000 = 1+...+100000, correct",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not say %q", want)
		}
	}
}

// TestUneven: shares that do not divide evenly still cover 1..count.
func TestUneven(t *testing.T) {
	out, code := workers(t, "-n", "3", "-count", "10")
	if code != 0 || !strings.Contains(out, "total 55 = 1+...+10, correct") {
		t.Fatalf("exit status %d, want 0 and a total of 55", code)
	}
}

// TestCrash: a worker that dies before Done is reported, and the parent
// does not wait for it until the deadline (a long one here, so that a parent
// that hung on it would show as a timeout instead).
func TestCrash(t *testing.T) {
	out, code := workers(t, "-n", "4", "-count", "100000", "-crash", "1", "-timeout", "1m")
	if code == 0 {
		t.Fatal("exit status 0, want a failure")
	}
	for _, want := range []string{
		"worker 1 exited without calling Done",
		"panic: worker 1 crashes on purpose",
		"3 of 4 workers ok, 1 failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not say %q", want)
		}
	}
	if strings.Contains(out, "timed out") || strings.Contains(out, "exceeded") {
		t.Error("the parent waited for the crashed worker until the deadline")
	}
	ok := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 4 && strings.Contains(f[1], "..") && f[3] == "ok" {
			ok[f[0]] = true // a summary row: worker, range, sum, status
		}
	}
	if !ok["2"] || !ok["3"] || !ok["4"] || ok["1"] {
		t.Errorf("workers reported ok: %v, want 2, 3 and 4", ok)
	}
}

func TestDeadline(t *testing.T) {
	out, code := workers(t, "-n", "3", "-count", "1000", "-hang", "2", "-timeout", "1s")
	if code == 0 {
		t.Fatal("exit status 0, want a failure")
	}
	for _, want := range []string{"timed out after 1s with 1 worker(s) not done", "killed at the deadline", "2 of 3 workers ok, 1 failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not say %q", want)
		}
	}
}
