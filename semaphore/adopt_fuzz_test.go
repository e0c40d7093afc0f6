//go:build linux

package semaphore_test

import (
	"os"
	"testing"

	"github.com/eventsync/eventsync/internal/testutil"
	"github.com/eventsync/eventsync/semaphore"
)

// FromFile over descriptor kinds (eventfds of either mode, a pipe, a
// socket, a regular file, /dev/null, a memfd, an epoll descriptor, a
// closed file) and flags (O_NONBLOCK, FD_CLOEXEC): it never panics,
// succeeds exactly for an eventfd in semaphore mode, fails with
// ErrWrongMode, ErrNotEventfd or os.ErrClosed otherwise, and leaks no
// descriptor.
func FuzzFromFile(f *testing.F) {
	testutil.AdoptSeeds(f)
	f.Fuzz(func(t *testing.T, kind, flags uint8, init uint32) {
		testutil.CheckAdopt(t, kind, flags, init, true, func(file *os.File) (testutil.Adopted, error) {
			s, err := semaphore.FromFile(file)
			if s == nil {
				return nil, err
			}
			return s, err
		}, semaphore.ErrNotEventfd, semaphore.ErrWrongMode)
	})
}
