// Command underkernel runs a command under the emulated older kernel that
// EVENTSYNC_KERNEL_PROFILE names (see internal/kernel/emulate), from its
// first instruction on: the Go runtime of a test binary starts under the
// filter too. It is go test's -exec program in .ci/kernels:
//
//	EVENTSYNC_KERNEL_PROFILE=4.18 go test -exec underkernel ./...
package main

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/eventsync/eventsync/internal/kernel/emulate"
	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintf(os.Stderr, "usage: %s=PROFILE underkernel COMMAND [ARG...]\n", emulate.Env)
		os.Exit(2)
	}
	if os.Getenv(emulate.Env) == "" {
		fmt.Fprintf(os.Stderr, "underkernel: %s is not set (profiles: %v)\n", emulate.Env, emulate.Names(false))
		os.Exit(2)
	}
	if _, err := emulate.FromEnv(); err != nil {
		fmt.Fprintf(os.Stderr, "underkernel: %v\n", err)
		os.Exit(2)
	}
	path, err := exec.LookPath(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "underkernel: %v\n", err)
		os.Exit(2)
	}
	err = unix.Exec(path, os.Args[1:], os.Environ())
	fmt.Fprintf(os.Stderr, "underkernel: exec %s: %v\n", path, err)
	os.Exit(2)
}
