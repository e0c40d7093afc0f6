package testutil

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
)

// GoBuild builds the main package in dir ("." for the package under test)
// into a temporary directory and returns the executable's path. The
// executable is named after dir, as go build would name it.
func GoBuild(t testing.TB, dir string) string {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), filepath.Base(abs))
	if err := GoBuildTo(bin, dir); err != nil {
		t.Fatal(err)
	}
	return bin
}

// GoBuildTo builds the main package in dir into the executable bin, for
// where there is no test to fail (TestMain). The error carries go build's
// output.
func GoBuildTo(bin, dir string) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}

// ExitStatus is the exit status of a command, called name in messages, that
// ran under ctx and returned err: 0 for nil, the status an *exec.ExitError
// reports. It fails the test if ctx ended first (the command hung) or the
// command did not run.
func ExitStatus(ctx context.Context, t testing.TB, name string, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case ctx.Err() != nil:
		t.Fatalf("%s hung: %v", name, err)
	case errors.As(err, &ee):
		return ee.ExitCode()
	default:
		t.Fatal(err)
	}
	return -1
}
