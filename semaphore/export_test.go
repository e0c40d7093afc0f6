package semaphore

import "github.com/eventsync/eventsync/internal/eventfd"

// fd returns s's eventfd, moving its permits there first if they live in
// the process, for tests that look at the descriptor.
func (s *Semaphore) fd() *eventfd.FD {
	fd, err := s.counter().Share()
	if err != nil {
		panic(err)
	}
	return fd
}
