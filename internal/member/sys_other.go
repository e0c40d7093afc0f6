//go:build !linux

package member

import "errors"

var errUnsupported = errors.ErrUnsupported

func sysCreate(int) (int, []byte, error) { return -1, nil, errUnsupported }
func sysSeal(int) error                  { return errUnsupported }
func sysMap(int, int) ([]byte, error)    { return nil, errUnsupported }
func sysUnmap([]byte)                    {}
func sysClose(int)                       {}
func sysDup(int) (int, error)            { return -1, errUnsupported }
func sysSelf() (identity, error)         { return identity{}, errUnsupported }
func watchMember(*Member) error          { return nil }
func unwatch(*Member)                    {}

type watch struct{}

// WatchExit is not supported here.
func WatchExit(int, func()) (func() bool, error) { return nil, errUnsupported }
