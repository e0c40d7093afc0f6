package waitq

import (
	"testing"

	"github.com/eventsync/eventsync/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.Main(m, nil)
}
