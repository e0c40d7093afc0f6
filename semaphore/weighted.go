package semaphore

import (
	"fmt"

	"github.com/eventsync/eventsync/internal/eventfd"
)

// Weighted is Semaphore under the name golang.org/x/sync/semaphore gives it,
// so that code switches by its import path alone.
type Weighted = Semaphore

// NewWeighted returns a Semaphore of size n, as
// golang.org/x/sync/semaphore.NewWeighted does, with x/sync's rules on the
// size: a Release of more than this process holds panics ("semaphore:
// released more than held"), and an Acquire of more than n waits for its
// context alone, without holding up the requests behind it. Those rules
// travel with the Semaphore to the processes it is shared with: each may
// release only what it holds. It panics where New returns an error: if
// n < 0, or on a system without eventfd (not Linux).
func NewWeighted(n int64) *Semaphore {
	if n < 0 {
		panic(fmt.Sprintf("semaphore: NewWeighted(%d): negative size", n))
	}
	if err := eventfd.Supported(eventfd.Semaphore); err != nil {
		panic("semaphore: NewWeighted: " + err.Error())
	}
	s, err := newLocal(n, true, "NewWeighted")
	if err != nil {
		panic(err.Error())
	}
	return s
}
