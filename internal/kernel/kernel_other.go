//go:build !linux

package kernel

func noWaitRead() bool   { return false }
func modeInFdinfo() bool { return false }
func pidfd() bool        { return false }
func pidfdGetfd() bool   { return false }
