package testutil

import (
	"fmt"
	"os"
	"testing"

	"github.com/eventsync/eventsync/internal/kernel"
	"github.com/eventsync/eventsync/internal/kernel/emulate"
)

// emulateKernel installs the kernel profile that EVENTSYNC_KERNEL_PROFILE
// names (see internal/kernel/emulate), in the test binary and, through
// inheritance, in every process it starts. A bad name ends the binary.
func emulateKernel() {
	_, err := emulate.FromEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "emulating an older kernel: %v\n", err)
		os.Exit(2)
	}
}

// SkipUnlessModeShown skips a test that wants ErrWrongMode on a kernel that
// does not show an eventfd's mode in fdinfo (before 6.5), where the mode is
// taken on trust.
func SkipUnlessModeShown(t testing.TB, wantsWrongMode bool) {
	t.Helper()
	if wantsWrongMode && !kernel.ModeInFdinfo() {
		t.Skip("this kernel does not show an eventfd's mode in fdinfo: it is taken on trust")
	}
}
