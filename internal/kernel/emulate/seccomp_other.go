//go:build !linux

package emulate

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

// Install is not available: seccomp is Linux's.
func Install(p *Profile) error {
	return fmt.Errorf("kernel profile %s: seccomp is Linux-only, not available on %s: %w", p.Name, runtime.GOOS, errors.ErrUnsupported)
}

// FromEnv fails if EVENTSYNC_KERNEL_PROFILE names a profile.
func FromEnv() (*Profile, error) {
	name := os.Getenv(Env)
	if name == "" {
		return nil, nil
	}
	p, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	return p, Install(p)
}
