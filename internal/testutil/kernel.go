package testutil

import (
	"fmt"
	"os"

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
