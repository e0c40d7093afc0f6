//go:build !linux

package eventfd

import (
	"errors"
	"fmt"
	"runtime"
)

var errUnsupported = fmt.Errorf("eventfd is Linux-only, not available on %s: %w", runtime.GOOS, errors.ErrUnsupported)

func sysCreate(uint64, Mode) (int, error)         { return -1, errUnsupported }
func sysAdopt(int, Mode) (int, error)             { return -1, errUnsupported }
func sysOwn(int, Mode) error                      { return errUnsupported }
func sysRead(int, bool) (uint64, error)           { return 0, errUnsupported }
func sysWrite(int, uint64) error                  { return errUnsupported }
func sysPending(int) (bool, error)                { return false, errUnsupported }
func sysPendingPair(int, int) (bool, bool, error) { return false, false, errUnsupported }
func sysCount(int) (uint64, error)                { return 0, errUnsupported }
func sysDup(int) (int, error)                     { return -1, errUnsupported }
func sysClose(int) error                          { return errUnsupported }
func sysSetNonblock(int) error                    { return errUnsupported }
func sysReadInto(int, bool, *uint64) error        { return errUnsupported }
func sysWriteRaw(int, uint64) error               { return errUnsupported }
