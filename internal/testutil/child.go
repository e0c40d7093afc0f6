package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

// roleEnv names the role a re-executed test binary plays.
const roleEnv = "EVENTSYNC_TEST_ROLE"

// Main is TestMain for every package: it first emulates the older kernel
// that EVENTSYNC_KERNEL_PROFILE names, if any; then in a child started by
// Child it runs the child's role and exits with its status; otherwise it
// runs the tests and checks that they leak no goroutine.
func Main(m *testing.M, roles map[string]func(args []string) error) {
	emulateKernel()
	if role, ok := os.LookupEnv(roleEnv); ok {
		f, ok := roles[role]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown test role %q\n", role)
			os.Exit(3)
		}
		if err := f(os.Args[1:]); err != nil {
			fmt.Fprintf(os.Stderr, "role %s: %v\n", role, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// Child returns a command that runs this test binary again in role, with
// args. Its stderr goes to the test's stderr.
func Child(t testing.TB, role string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	cmd.Stderr = os.Stderr
	return cmd
}

// Lines is a child's standard output, read a line at a time, so that a test
// can wait for a child to reach a point (it prints a line) without sleeping.
type Lines struct {
	t  testing.TB
	sc *bufio.Scanner
}

// StdoutLines connects to cmd's standard output; call it before cmd.Start.
func StdoutLines(t testing.TB, cmd *exec.Cmd) *Lines {
	t.Helper()
	r, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	return &Lines{t: t, sc: bufio.NewScanner(r)}
}

// Expect reads the next line and fails the test unless it is want.
func (l *Lines) Expect(want string) {
	l.t.Helper()
	if got := l.Next(); got != want {
		l.t.Fatalf("child printed %q, want %q", got, want)
	}
}

// Next reads the next line; it fails the test at end of output.
func (l *Lines) Next() string {
	l.t.Helper()
	if !l.sc.Scan() {
		err := l.sc.Err()
		if err == nil {
			err = io.EOF
		}
		l.t.Fatalf("reading the child's output: %v", err)
	}
	return strings.TrimSpace(l.sc.Text())
}

// Say prints a line on standard output, for Lines in the parent to read.
func Say(format string, args ...any) {
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

// WaitLine reads one line from standard input: a child's way to wait for its
// parent's go-ahead.
func WaitLine() (string, error) {
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	return strings.TrimSpace(line), err
}

// Start starts cmd and closes, in this process, the files it hands the
// child in cmd.ExtraFiles (the duplicates PassTo made, the child's end of a
// socket pair): the child has its own copies now.
func Start(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}
}

// InheritedConn is, in a child, the Unix socket its parent passed as
// descriptor 3 (the first of cmd.ExtraFiles, such as SocketPair's theirs).
func InheritedConn() (*net.UnixConn, error) {
	f := os.NewFile(3, "socket")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("descriptor 3 is a %T, not a Unix socket", c)
	}
	return uc, nil
}

// Kill kills each of cmds, started children, with SIGKILL and waits for
// it; it fails the test unless the child was killed.
func Kill(t testing.TB, cmds ...*exec.Cmd) {
	t.Helper()
	for _, cmd := range cmds {
		cmd.Process.Signal(syscall.SIGKILL)
		if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("child exited with %v, want killed", err)
		}
	}
}

// ChildWithEnv is Child with the child's EVENTSYNC_FDS, as it starts, set
// to env, and files as its descriptors 3, 4, and so on.
func ChildWithEnv(t testing.TB, env string, files []*os.File, role string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := Child(t, role, args...)
	cmd.Env = append(cmd.Env, "EVENTSYNC_FDS="+env)
	cmd.ExtraFiles = files
	return cmd
}

// WantError reports, in a child, whether err matches the error named want
// in named ("" for no error), for the parent to see through the child's
// exit status.
func WantError(err error, want string, named map[string]error) error {
	if want == "" {
		if err != nil {
			return fmt.Errorf("got %v, want no error", err)
		}
		return nil
	}
	target, ok := named[want]
	if !ok {
		return fmt.Errorf("no error named %q", want)
	}
	if !errors.Is(err, target) {
		return fmt.Errorf("got %v, want %s", err, want)
	}
	return nil
}
