package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventsync/eventsync/internal/testutil"
)

// jobserver runs the binary with args and returns its combined output and
// exit status. The context only keeps a broken runner from hanging the
// test; no assertion depends on time.
func jobserver(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	t.Logf("jobserver %s:\n%s", strings.Join(args, " "), out)
	return string(out), testutil.ExitStatus(ctx, t, "jobserver", err)
}

// job is a command that appends "start id" and "end id" to log around its
// work. Each echo is one short write to a file opened with O_APPEND, so
// lines from concurrent jobs never interleave.
func job(log, id string) string {
	return fmt.Sprintf("echo start %s >> %s; sleep 0.1; echo end %s >> %s", id, shq(log), id, shq(log))
}

// shq quotes s for sh.
func shq(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// clientCmd is a command that runs the jobserver client on cmds.
func clientCmd(cmds ...string) string {
	q := make([]string, len(cmds))
	for i, c := range cmds {
		q[i] = shq(c)
	}
	return `"$EVENTSYNC_JOBSERVER_BIN" client -- ` + strings.Join(q, " ")
}

// replay reads the log and returns the most jobs that were between their
// start and end lines at once, and the ids that both started and ended.
func replay(t *testing.T, log string) (maxRunning int, finished map[string]bool) {
	t.Helper()
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	running := map[string]bool{}
	finished = map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ev, id, ok := strings.Cut(sc.Text(), " ")
		switch {
		case !ok:
			t.Fatalf("bad log line %q", sc.Text())
		case ev == "start" && !running[id] && !finished[id]:
			running[id] = true
			maxRunning = max(maxRunning, len(running))
		case ev == "end" && running[id]:
			delete(running, id)
			finished[id] = true
		default:
			t.Fatalf("log line %q out of order", sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(running) > 0 {
		t.Errorf("jobs started and never ended: %v", running)
	}
	return maxRunning, finished
}

func checkRun(t *testing.T, j int, cmds []string, ids []string, log string) {
	t.Helper()
	bin := testutil.GoBuildRace(t, ".")
	out, code := jobserver(t, bin, append([]string{"-j", fmt.Sprint(j), "--"}, cmds...)...)
	if code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
	for _, want := range []string{
		fmt.Sprintf("%d commands: %d ok, 0 failed, 0 not started", len(cmds), len(cmds)),
		fmt.Sprintf("permits free at the end: %d of %d", j, j),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary does not say %q", want)
		}
	}
	maxRunning, finished := replay(t, log)
	for _, id := range ids {
		if !finished[id] {
			t.Errorf("job %s did not run", id)
		}
	}
	if len(finished) != len(ids) {
		t.Errorf("%d jobs ran, want %d", len(finished), len(ids))
	}
	if maxRunning > j {
		t.Errorf("%d jobs ran at once, want at most %d", maxRunning, j)
	}
	t.Logf("at most %d of %d jobs ran at once", maxRunning, j)
}

func TestLimit(t *testing.T) {
	log := filepath.Join(t.TempDir(), "log")
	var cmds, ids []string
	for i := range 6 {
		id := fmt.Sprint("j", i)
		cmds, ids = append(cmds, job(log, id)), append(ids, id)
	}
	checkRun(t, 2, cmds, ids, log)
}

// TestNested runs a client among the commands: its jobs take permits from
// the same semaphore, so the limit holds for the whole tree.
func TestNested(t *testing.T) {
	for _, j := range []int{1, 2, 3} { // -j 1 would deadlock without the implicit slot
		t.Run(fmt.Sprint("j", j), func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "log")
			cmds := []string{job(log, "a"), clientCmd(job(log, "n1"), job(log, "n2"), job(log, "n3")), job(log, "b"),
				clientCmd(job(log, "m1"), clientCmd(job(log, "mm1"), job(log, "mm2"))), job(log, "c")}
			ids := []string{"a", "n1", "n2", "n3", "b", "m1", "mm1", "mm2", "c"}
			checkRun(t, j, cmds, ids, log)
		})
	}
}

func TestFailure(t *testing.T) {
	bin := testutil.GoBuildRace(t, ".")
	out, code := jobserver(t, bin, "-j", "2", "--", "true", "echo failing; exit 3", "echo fine")
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	if !strings.Contains(out, "exit 3") || !strings.Contains(out, "echo failing; exit 3") {
		t.Error("summary does not name the failing command and its status")
	}
	if !strings.Contains(out, "3 commands: 2 ok, 1 failed, 0 not started") {
		t.Error("summary totals are wrong")
	}
}

// TestNestedFailure: a failing job of a client fails the client's command.
func TestNestedFailure(t *testing.T) {
	bin := testutil.GoBuildRace(t, ".")
	out, code := jobserver(t, bin, "-j", "2", "--", clientCmd("true", "exit 5"), "true")
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	if n := strings.Count(out, "2 commands: 1 ok, 1 failed, 0 not started"); n != 2 {
		t.Errorf("%d summaries report the nested failure, want 2 (client and runner)", n)
	}
}

func TestTimeout(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "started")
	bin := testutil.GoBuildRace(t, ".")
	out, code := jobserver(t, bin, "-j", "1", "-timeout", "1s", "--", "sleep 60", "touch "+shq(marker))
	if code != 124 {
		t.Errorf("exit status %d, want 124 (timeout)", code)
	}
	for _, want := range []string{"timed out", "killed", "not started", "2 commands: 0 ok, 1 failed, 1 not started", "permits free at the end: 1 of 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary does not say %q", want)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a waiting command was started after the timeout")
	}
}

func TestClientAlone(t *testing.T) {
	bin := testutil.GoBuildRace(t, ".")
	out, code := jobserver(t, bin, "client", "--", "true")
	if code == 0 || !strings.Contains(out, "jobserver") {
		t.Errorf("client without a runner: exit status %d, want an error", code)
	}
}

func TestFile(t *testing.T) {
	dir := t.TempDir()
	log, list := filepath.Join(dir, "log"), filepath.Join(dir, "cmds")
	text := "# comment\n" + job(log, "f1") + "\n\n" + job(log, "f2") + "\n" + job(log, "f3") + "\n"
	if err := os.WriteFile(list, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := testutil.GoBuildRace(t, ".")
	if _, code := jobserver(t, bin, "-j", "2", "-f", list); code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
	if n, finished := replay(t, log); len(finished) != 3 || n > 2 {
		t.Errorf("ran %v, %d at once; want f1..f3, at most 2", finished, n)
	}
}
