package signal

import "github.com/eventsync/eventsync/internal/eventfd"

// fd returns s's eventfd, moving its count there first if it lives in the
// process, for tests that look at the descriptor.
func (s *Signal) fd() *eventfd.FD {
	fd, err := s.p().share()
	if err != nil {
		panic(err)
	}
	return fd
}
