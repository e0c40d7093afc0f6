//go:build linux

package semaphore

import (
	"os"
	"testing"

	"github.com/eventsync/eventsync/internal/testutil"
)

func TestMain(m *testing.M) {
	// EVENTSYNC_TEST_SHARED=1 runs every test on Semaphores whose permits
	// are in an eventfd from the start; otherwise New keeps them in the
	// process until a test shares them.
	shareAtNew = os.Getenv("EVENTSYNC_TEST_SHARED") != ""
	testutil.Main(m, childRoles)
}
