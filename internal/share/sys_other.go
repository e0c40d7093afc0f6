//go:build !linux

package share

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
)

var errUnsupported = fmt.Errorf("sharing eventfds is Linux-only, not available on %s: %w", runtime.GOOS, errors.ErrUnsupported)

const oobSpace = 0

func sysClose(int)                                        {}
func sysCloseOnExec(int) error                            { return errUnsupported }
func sendmsg(syscall.RawConn, []byte, []int) (int, error) { return 0, errUnsupported }
func recvmsg(syscall.RawConn, []byte) (message, error)    { return message{}, errUnsupported }
func runtimeFDs() map[int]bool                            { return nil }
