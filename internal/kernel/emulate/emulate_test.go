//go:build linux

package emulate_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/eventsync/eventsync/internal/kernel"
	"github.com/eventsync/eventsync/internal/kernel/emulate"
	"github.com/eventsync/eventsync/internal/testutil"
	"github.com/eventsync/eventsync/semaphore"
	"github.com/eventsync/eventsync/signal"
	"github.com/eventsync/eventsync/waitgroup"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	testutil.Main(m, map[string]func([]string) error{
		"report":    report,
		"construct": construct,
	})
}

// rawNoWaitRead is a raw preadv2(RWF_NOWAIT) of an empty eventfd.
func rawNoWaitRead() unix.Errno {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return err.(unix.Errno)
	}
	defer unix.Close(fd)
	var v uint64
	iov := unix.Iovec{Base: (*byte)(unsafe.Pointer(&v))}
	iov.SetLen(8)
	_, _, e := unix.Syscall6(unix.SYS_PREADV2, uintptr(fd), uintptr(unsafe.Pointer(&iov)), 1, ^uintptr(0), ^uintptr(0), unix.RWF_NOWAIT)
	return e
}

func errno(err error) unix.Errno {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}

// report prints what this process sees of the kernel, one fact a line.
func report([]string) error {
	_, err := unix.PidfdOpen(os.Getpid(), 0)
	_, _, clone3 := unix.Syscall(unix.SYS_CLONE3, 0, 0, 0) // EFAULT where it exists
	fmt.Printf("NoWaitRead=%v ModeInFdinfo=%v Pidfd=%v PidfdGetfd=%v\n",
		kernel.NoWaitRead(), kernel.ModeInFdinfo(), kernel.Pidfd(), kernel.PidfdGetfd())
	fmt.Printf("preadv2=%d pidfd_open=%d clone3=%d\n", rawNoWaitRead(), errno(err), clone3)
	// Go and the C library fall back where clone3 and pidfds are missing:
	// starting a process still works.
	if out, err := exec.Command("/bin/sh", "-c", "echo child ran").Output(); err != nil || string(out) != "child ran\n" {
		return fmt.Errorf("starting a child: %q, %v", out, err)
	}
	return nil
}

// Each profile takes away what its kernel lacks, and the detection in
// internal/kernel sees it: the test runs this binary again under every
// profile and reads what the child reports.
func TestProfiles(t *testing.T) {
	if _, ok := map[string]bool{"amd64": true, "arm64": true}[runtime.GOARCH]; !ok {
		t.Skipf("no system call table for %s", runtime.GOARCH)
	}
	for _, name := range emulate.Names(true) {
		p := emulate.Profiles[name]
		t.Run(name, func(t *testing.T) {
			cmd := testutil.Child(t, "report")
			cmd.Env = append(cmd.Env, emulate.Env+"="+name)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("child under profile %s: %v", name, err)
			}
			var nowait, mode, pidfd, getfd bool
			var preadv2, pidfdOpen, clone3 int
			if _, err := fmt.Sscanf(string(out), "NoWaitRead=%t ModeInFdinfo=%t Pidfd=%t PidfdGetfd=%t\npreadv2=%d pidfd_open=%d clone3=%d\n",
				&nowait, &mode, &pidfd, &getfd, &preadv2, &pidfdOpen, &clone3); err != nil {
				t.Fatalf("child printed %q: %v", out, err)
			}
			// What the profile takes away is gone. (What it leaves may
			// still be missing: an outer profile, or this machine's kernel.)
			check := func(what string, has, got bool) {
				if !has && got {
					t.Errorf("%s = true under profile %s, which lacks it", what, name)
				}
			}
			check("NoWaitRead", p.NoWaitRead, nowait)
			check("ModeInFdinfo", p.ModeLine, mode)
			check("Pidfd", p.Pidfd, pidfd)
			check("PidfdGetfd", p.PidfdGetfd, getfd)
			if !p.NoWaitRead && unix.Errno(preadv2) != unix.EOPNOTSUPP {
				t.Errorf("preadv2(RWF_NOWAIT) on an eventfd: errno %d, want EOPNOTSUPP", preadv2)
			}
			if p.NoWaitRead && nowait != (preadv2 == int(unix.EAGAIN)) {
				t.Errorf("NoWaitRead = %v, but preadv2(RWF_NOWAIT) gave errno %d", nowait, preadv2)
			}
			if !p.Pidfd && unix.Errno(pidfdOpen) != unix.ENOSYS {
				t.Errorf("pidfd_open: errno %d, want ENOSYS", pidfdOpen)
			}
			if unix.Errno(clone3) != unix.ENOSYS {
				if clone3 == 0 {
					t.Errorf("clone3(NULL) succeeded")
				}
			} else if name == "6.1" && kernel.Pidfd() {
				t.Errorf("clone3 (5.3) is ENOSYS under profile 6.1")
			}
		})
	}
}

// In this process: whatever profile it runs under (none, natively), the
// detection agrees with the raw system calls.
func TestDetectionAgrees(t *testing.T) {
	e := rawNoWaitRead()
	if kernel.NoWaitRead() != (e == unix.EAGAIN) {
		t.Errorf("NoWaitRead = %v, raw preadv2(RWF_NOWAIT) errno %d", kernel.NoWaitRead(), e)
	}
	name := os.Getenv(emulate.Env)
	if name == "" {
		return
	}
	p, err := emulate.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	if !p.NoWaitRead && (e != unix.EOPNOTSUPP || kernel.NoWaitRead()) {
		t.Errorf("under profile %s: raw preadv2(RWF_NOWAIT) errno %d, NoWaitRead %v; want EOPNOTSUPP, false", name, e, kernel.NoWaitRead())
	}
	if !p.ModeLine && kernel.ModeInFdinfo() {
		t.Errorf("under profile %s: ModeInFdinfo is true", name)
	}
	if !p.Pidfd && kernel.Pidfd() {
		t.Errorf("under profile %s: Pidfd is true", name)
	}
}

// construct makes one of each primitive and prints what each constructor
// returned.
func construct([]string) error {
	pr := func(what string, err error) {
		fmt.Printf("%s: %v unsupported=%v\n", what, err, errors.Is(err, errors.ErrUnsupported))
	}
	s, err := semaphore.New(1)
	if err == nil {
		s.Close()
	}
	pr("semaphore", err)
	g, err := signal.New()
	if err == nil {
		g.Close()
	}
	pr("signal", err)
	wg, err := waitgroup.New()
	if err == nil {
		wg.Close()
	}
	pr("waitgroup", err)
	return nil
}

// On a kernel without eventfd2, or without EFD_SEMAPHORE, the constructors
// refuse with an error that names what is missing and the version that
// brought it, and satisfies errors.Is(err, errors.ErrUnsupported).
func TestRefusal(t *testing.T) {
	if _, ok := map[string]bool{"amd64": true, "arm64": true}[runtime.GOARCH]; !ok {
		t.Skipf("no system call table for %s", runtime.GOARCH)
	}
	cases := map[string][]string{
		"no-eventfd2": {
			"semaphore: semaphore: New: eventfd2 with EFD_SEMAPHORE needs Linux 2.6.30 or later: function not implemented unsupported=true",
			"signal: signal: New: eventfd2 with EFD_CLOEXEC and EFD_NONBLOCK needs Linux 2.6.27 or later: function not implemented unsupported=true",
			// A WaitGroup makes a semaphore-mode eventfd first.
			"waitgroup: waitgroup: New: eventfd2 with EFD_SEMAPHORE needs Linux 2.6.30 or later: function not implemented unsupported=true",
		},
		"no-efd-semaphore": {
			"semaphore: semaphore: New: eventfd2 with EFD_SEMAPHORE needs Linux 2.6.30 or later: invalid argument unsupported=true",
			"signal: <nil> unsupported=false",
			"waitgroup: waitgroup: New: eventfd2 with EFD_SEMAPHORE needs Linux 2.6.30 or later: invalid argument unsupported=true",
		},
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			cmd := testutil.Child(t, "construct")
			cmd.Env = append(cmd.Env, emulate.Env+"="+name)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("child under profile %s: %v", name, err)
			}
			got := strings.Split(strings.TrimSpace(string(out)), "\n")
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("under profile %s the constructors returned\n%s\nwant\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// The errors themselves, without a child: MissingError wraps both the
// kernel's answer and errors.ErrUnsupported.
func TestEventfdError(t *testing.T) {
	err := kernel.EventfdError(unix.EINVAL, true)
	if !errors.Is(err, errors.ErrUnsupported) || !errors.Is(err, unix.EINVAL) {
		t.Errorf("%v: not ErrUnsupported and EINVAL", err)
	}
	if err := kernel.EventfdError(unix.EMFILE, false); errors.Is(err, errors.ErrUnsupported) || !errors.Is(err, unix.EMFILE) ||
		err.Error() != "eventfd: too many open files" {
		t.Errorf("EMFILE became %v", err)
	}
}

// Every profile the suite must pass under is one that .ci/kernels runs.
func TestCIRunsEveryProfile(t *testing.T) {
	script, err := os.ReadFile("../../../.ci/kernels")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range emulate.Names(true) {
		if !strings.Contains(string(script), " "+name) {
			t.Errorf(".ci/kernels does not run profile %s", name)
		}
	}
}
