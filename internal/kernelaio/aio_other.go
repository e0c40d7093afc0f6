//go:build !(linux && amd64)

package kernelaio

import (
	"errors"
	"fmt"
	"runtime"
)

// Read is only implemented on linux/amd64. Here it returns an error that
// satisfies errors.Is(err, errors.ErrUnsupported).
func Read(efd int, path string, buf []byte) (int, error) {
	return 0, fmt.Errorf("kernelaio: native AIO is not implemented on %s/%s: %w", runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)
}
