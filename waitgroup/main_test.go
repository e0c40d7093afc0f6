//go:build linux

package waitgroup

import (
	"os"
	"testing"

	"github.com/eventsync/eventsync/internal/testutil"
)

func TestMain(m *testing.M) {
	// EVENTSYNC_TEST_SHARED=1 runs every test on WaitGroups whose counter
	// is in eventfds from the start; otherwise it stays in the process
	// until a test shares it.
	shareAtNew = os.Getenv("EVENTSYNC_TEST_SHARED") != ""
	testutil.Main(m, childRoles)
}
