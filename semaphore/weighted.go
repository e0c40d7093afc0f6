package semaphore

// Weighted is Semaphore under the name golang.org/x/sync/semaphore gives it,
// so that code switches by its import path alone.
type Weighted = Semaphore

// NewWeighted returns a Semaphore with n free permits, as
// golang.org/x/sync/semaphore.NewWeighted does. It panics where New returns
// an error: if n < 0, or on a system without eventfd (not Linux).
func NewWeighted(n int64) *Semaphore {
	s, err := New(n)
	if err != nil {
		panic(err.Error())
	}
	return s
}
