//go:build linux

package signal

import (
	"os"
	"testing"

	"github.com/eventsync/eventsync/internal/testutil"
)

func TestMain(m *testing.M) {
	// EVENTSYNC_TEST_SHARED=1 runs every test on Signals whose count is in
	// an eventfd from the start; otherwise New keeps it in the process
	// until a test shares it.
	shareAtNew = os.Getenv("EVENTSYNC_TEST_SHARED") != ""
	testutil.Main(m, childRoles)
}
