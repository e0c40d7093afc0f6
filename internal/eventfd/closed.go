package eventfd

import "os"

// Closed returns the error that the operations of a closed primitive of the
// named type return: "use of closed Semaphore". It satisfies
// errors.Is(err, os.ErrClosed), without repeating os.ErrClosed's text about
// files.
func Closed(typ string) error { return closedError(typ) }

type closedError string

func (e closedError) Error() string { return "use of closed " + string(e) }
func (e closedError) Unwrap() error { return os.ErrClosed }
