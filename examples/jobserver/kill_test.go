//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/eventsync/eventsync/internal/kernel"
	"github.com/eventsync/eventsync/internal/testutil"
)

// TestKilledClients kills clients with SIGKILL while they hold permits, one
// after another, and checks that no capacity is lost: each next client
// still gets every permit, and the runner finds all J permits free at the
// end.
//
// The runner, with -j 3, runs one command, a script that runs four clients
// one after the other, each with three jobs. A client runs its first job
// on its implicit slot, the permit the runner holds for the script, and
// takes a permit for each of the two others: once its three jobs say they
// run, the client holds the two permits that are not the runner's. The
// test then kills the client with SIGKILL, waits until it is dead, and only
// then kills its jobs (killed first, they would end and the client would
// give its permits back itself). The next client can run its second and
// third jobs only on the two permits the killed one held, given back
// because it died: lost, they would leave it waiting for ever, and the
// runner hung, which fails the test. The last client's jobs read a FIFO
// that the test closes once all three run, and the client ends normally.
func TestKilledClients(t *testing.T) {
	if !kernel.Pidfd() {
		t.Skip("no pidfd on this kernel: nothing watches for dead members, so their permits stay taken")
	}
	const j = 3
	dir := t.TempDir()
	kills := []string{"k1", "k2", "k3"}
	script := []string{"echo group $$"}
	for _, id := range kills {
		jobs := make([]string, j)
		for i := range jobs {
			// $PPID is the client; exec makes $$ the sleep, which runs
			// until it is killed.
			jobs[i] = fmt.Sprintf("echo running %s.%d $PPID $$; exec sleep 1000", id, i+1)
		}
		script = append(script, clientCmd(jobs...)+"; echo ended "+id+" $?")
	}
	// The last client's jobs open a FIFO, say they run, and read it until
	// the test closes its end.
	gates := make([]*os.File, j)
	jobs := make([]string, j)
	for i := range gates {
		fifo := filepath.Join(dir, fmt.Sprint("gate", i+1))
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		// Read-write, so that neither this open nor the job's waits
		// for the other end (Linux).
		f, err := os.OpenFile(fifo, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		gates[i] = f
		jobs[i] = fmt.Sprintf("{ echo running f.%d $PPID $$; cat; } < %s", i+1, shq(fifo))
	}
	script = append(script, clientCmd(jobs...)+"; echo ended f $?")
	closeGates := func() {
		for _, f := range gates {
			f.Close()
		}
	}

	r := startWatched(t, testutil.GoBuildRace(t, "."), "-j", fmt.Sprint(j), "--", strings.Join(script, "; "))
	t.Cleanup(closeGates) // before the runner is stopped: cleanups run last first
	group := r.await("group")["group"]
	for _, id := range kills {
		jobs := r.await(id+".1", id+".2", id+".3")
		r.killClient(group[0], jobs)
		if st := r.await("ended " + id)["ended "+id]; st[0] != "137" {
			t.Fatalf("client %s ended with status %s, want 137 (SIGKILL)", id, st[0])
		}
	}
	r.await("f.1", "f.2", "f.3")
	closeGates()
	r.await("ended f")
	out, code := r.wait()

	if code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	for _, want := range []string{
		"ended f 0",
		"3 commands: 3 ok, 0 failed, 0 not started", // the last client
		"1 commands: 1 ok, 0 failed, 0 not started", // the runner
		fmt.Sprintf("permits free at the end: %d of %d", j, j),
		fmt.Sprintf("%d member processes died; %d permits they held given back, 0 in flight maybe lost", len(kills), len(kills)*(j-1)),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not say %q", want)
		}
	}
	if strings.Contains(out, "DATA RACE") {
		t.Error("a race was reported")
	}
}

// A watched runner is the jobserver with its output, standard output and
// error together, read a line at a time, so that the test acts when a
// command says it has reached a point. Every process of the tree writes to
// that pipe (commands inherit it, and their jobs too), so its end of file
// means that none is left.
type watched struct {
	t      *testing.T
	ctx    context.Context
	cmd    *exec.Cmd
	lines  chan string
	out    strings.Builder // every line read
	groups []int           // process groups that commands reported
	waited bool
}

// startWatched starts the jobserver bin with args. The context only keeps
// a broken runner from hanging the test; no assertion depends on time.
func startWatched(t *testing.T, bin string, args ...string) *watched {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = t.TempDir()
	cmd.Stdout, cmd.Stderr = pw, pw
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		t.Fatal(err)
	}
	r := &watched{t: t, ctx: ctx, cmd: cmd, lines: make(chan string)}
	go func() {
		defer close(r.lines)
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
	}()
	t.Cleanup(r.stop)
	return r
}

// next returns the next line, or false at end of output.
func (r *watched) next() (string, bool) {
	r.t.Helper()
	select {
	case l, ok := <-r.lines:
		if ok {
			r.note(l)
		}
		return l, ok
	case <-r.ctx.Done():
		r.t.Fatalf("the runner hung; its output so far:\n%s", r.out.String())
		return "", false
	}
}

// note keeps a line read, and the process group if the line reports one.
func (r *watched) note(l string) {
	r.out.WriteString(l + "\n")
	if pgid, ok := groupIn(l); ok {
		r.groups = append(r.groups, pgid)
	}
}

// groupIn returns the process group that a line "group PGID" reports.
func groupIn(l string) (pgid int, ok bool) {
	f := strings.Fields(l)
	if len(f) != 2 || f[0] != "group" {
		return 0, false
	}
	pgid, err := strconv.Atoi(f[1])
	return pgid, err == nil && pgid > 1
}

// await reads lines until it has read, in any order, one for each of keys:
// "group", "ended ID", or for a job ID, "running ID". It returns what
// followed each key on its line, as numbers when they are. A line of the
// script's other than those fails the test; the rest (the summary of a
// client, or a shell's word on a killed command) are only kept.
func (r *watched) await(keys ...string) map[string][]string {
	r.t.Helper()
	want := make(map[string]bool)
	for _, k := range keys {
		if k != "group" && !strings.HasPrefix(k, "ended ") {
			k = "running " + k
		}
		want[k] = true
	}
	got := make(map[string][]string)
	for len(want) > 0 {
		l, ok := r.next()
		if !ok {
			r.t.Fatalf("output ended; want %v. Output:\n%s", want, r.out.String())
		}
		f := strings.Fields(l)
		var key string
		switch {
		case len(f) >= 2 && f[0] == "group":
			key = f[0]
		case len(f) >= 3 && (f[0] == "running" || f[0] == "ended"):
			key = f[0] + " " + f[1]
		default:
			continue
		}
		if !want[key] {
			r.t.Fatalf("read %q, want one of %v; output so far:\n%s", l, want, r.out.String())
		}
		delete(want, key)
		rest := f[len(strings.Fields(key)):]
		got[strings.TrimPrefix(key, "running ")] = rest
	}
	return got
}

// killClient kills, with SIGKILL, the client that the script sh runs and
// whose jobs reported themselves in lines "running ID CLIENT JOB". It kills
// the client first and waits until it is dead, then kills its jobs and
// waits for them. Each is checked first to be the process meant: the
// client the child of sh, itself the runner's child, and the jobs the
// client's children.
func (r *watched) killClient(sh string, jobs map[string][]string) {
	r.t.Helper()
	var client string
	var jobPIDs []string
	for id, f := range jobs {
		if len(f) != 2 || client != "" && f[0] != client {
			r.t.Fatalf("job %s reported %q; want one client and a job's process", id, f)
		}
		client = f[0]
		jobPIDs = append(jobPIDs, f[1])
	}
	clientFD := r.pidfd(client, sh)
	defer unix.Close(clientFD)
	unix.Close(r.pidfd(sh, strconv.Itoa(r.cmd.Process.Pid))) // sh only had to be checked
	jobFDs := make([]int, len(jobPIDs))
	for i, pid := range jobPIDs {
		jobFDs[i] = r.pidfd(pid, client)
		defer unix.Close(jobFDs[i])
	}
	r.killAndWait(clientFD, "client "+client)
	for i, fd := range jobFDs {
		r.killAndWait(fd, "job "+jobPIDs[i])
	}
}

// pidfd opens a pidfd for the process pid, and checks, once it is open, that
// the process's parent is parent.
func (r *watched) pidfd(pid, parent string) int {
	r.t.Helper()
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 1 {
		r.t.Fatalf("bad process ID %q", pid)
	}
	fd, err := unix.PidfdOpen(n, 0)
	if err != nil {
		r.t.Fatalf("pidfd_open(%d): %v", n, err)
	}
	ppid, _, err := parentAndGroup(n)
	if err != nil || strconv.Itoa(ppid) != parent {
		unix.Close(fd)
		r.t.Fatalf("process %d: parent %d (%v), want %s", n, ppid, err, parent)
	}
	return fd
}

// killAndWait sends SIGKILL through pidfd and waits until the process is
// dead (the pidfd is readable).
func (r *watched) killAndWait(pidfd int, what string) {
	r.t.Helper()
	if err := unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0); err != nil {
		r.t.Fatalf("killing %s: %v", what, err)
	}
	deadline, _ := r.ctx.Deadline()
	for {
		ms := int(time.Until(deadline).Milliseconds())
		if ms <= 0 {
			r.t.Fatalf("%s still alive after SIGKILL", what)
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}, ms)
		if err == unix.EINTR || err == nil && n == 0 {
			continue
		}
		if err != nil {
			r.t.Fatalf("waiting for %s to die: %v", what, err)
		}
		return
	}
}

// parentAndGroup reads the parent and the process group of pid from
// /proc/PID/stat.
func parentAndGroup(pid int) (ppid, pgrp int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 3 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	if ppid, err = strconv.Atoi(f[1]); err == nil {
		pgrp, err = strconv.Atoi(f[2])
	}
	return ppid, pgrp, err
}

// wait reads the output to its end and waits for the runner; it returns
// the output and the exit status.
func (r *watched) wait() (string, int) {
	r.t.Helper()
	for {
		if _, ok := r.next(); !ok {
			break
		}
	}
	err := r.cmd.Wait()
	r.waited = true
	r.t.Logf("jobserver %s:\n%s", strings.Join(r.cmd.Args[1:], " "), r.out.String())
	return r.out.String(), testutil.ExitStatus(r.ctx, r.t, "jobserver", err)
}

// stop, if the test ended before wait, kills whatever is left of the tree:
// the process groups that commands reported, the runner, then the group
// of any command that reports one later, until the output ends.
func (r *watched) stop() {
	if r.waited {
		return
	}
	killGroup := func(pgid int) {
		if _, pgrp, err := parentAndGroup(pgid); err == nil && pgrp == pgid {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}
	for _, pgid := range r.groups {
		killGroup(pgid)
	}
	_ = r.cmd.Process.Kill()
	for l := range r.lines {
		r.note(l)
		if pgid, ok := groupIn(l); ok {
			killGroup(pgid)
		}
	}
	_ = r.cmd.Wait()
	r.t.Logf("jobserver %s, stopped:\n%s", strings.Join(r.cmd.Args[1:], " "), r.out.String())
}
