//go:build !linux

package eventfd

import (
	"errors"
	"fmt"
	"runtime"
)

var errUnsupported = fmt.Errorf("eventfd is Linux-only, not available on %s: %w", runtime.GOOS, errors.ErrUnsupported)

func sysCreate(uint64, Mode) (int, error) { return -1, errUnsupported }
func sysAdopt(int, Mode) (int, error)     { return -1, errUnsupported }
func sysRead(int, bool) (uint64, error)   { return 0, errUnsupported }
func sysWrite(int, uint64) error          { return errUnsupported }
func sysPending(int) (bool, error)        { return false, errUnsupported }
func sysCount(int) (uint64, error)        { return 0, errUnsupported }
func sysDup(int) (int, error)             { return -1, errUnsupported }

const (
	oobSpace  = 0
	msgCtrunc = 0
	msgTrunc  = 0
)

func sysCloseOnExec(int)                          {}
func checkInherited(int, Mode) error              { return errUnsupported }
func unixRights([]int) []byte                     { return nil }
func parseRights([]byte) ([]int, error)           { return nil, errUnsupported }
func sysClose(int) error                          { return errUnsupported }
func sysPendingPair(int, int) (bool, bool, error) { return false, false, errUnsupported }
func sysSetNonblock(int) error                    { return errUnsupported }
