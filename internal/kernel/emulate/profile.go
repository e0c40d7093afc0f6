// Package emulate makes this process, and every process it starts, see the
// system calls of an older kernel: a seccomp filter makes the calls that
// kernel lacks fail as it would, so that the tests of eventsync can run
// against the kernels of long-term distributions on a current one.
//
// The shared test entry point (internal/testutil.Main) installs the profile
// that EVENTSYNC_KERNEL_PROFILE names before any test runs.
package emulate

import (
	"fmt"
	"sort"
)

// Env names the environment variable that selects a profile.
const Env = "EVENTSYNC_KERNEL_PROFILE"

// A Profile is an older kernel, as far as eventsync can tell it apart.
type Profile struct {
	Name string // the version emulated, or a name for a refusal profile
	For  string // who runs it

	// What the profile takes away. System calls that the version lacks
	// fail with ENOSYS: those numbered from firstMissing on (every call
	// added since, on amd64 and arm64 alike).
	firstMissing map[string]int // by GOARCH
	NoWaitRead   bool           // preadv2 with RWF_NOWAIT on an eventfd works (5.8)
	ModeLine     bool           // fdinfo shows eventfd-semaphore: (6.5)
	Pidfd        bool           // pidfd_open (5.3)
	PidfdGetfd   bool           // pidfd_getfd (5.6)
	Eventfd2     bool           // eventfd2 (2.6.27)
	EFDSemaphore bool           // eventfd2 takes EFD_SEMAPHORE (2.6.30)

	// Suite is set for the profiles the whole test suite runs under
	// (.ci/kernels); the others only check that construction is refused.
	Suite bool
}

// Profiles, by name.
var Profiles = map[string]*Profile{
	"4.18": {
		Name: "4.18", For: "RHEL 8",
		// rseq (4.18) is the last call: 334 on amd64, 293 on arm64.
		firstMissing: map[string]int{"amd64": 335, "arm64": 294},
		Eventfd2:     true, EFDSemaphore: true,
		Suite: true,
	},
	"5.4": {
		Name: "5.4", For: "Ubuntu 20.04",
		// clone3 (5.3) is the last call, 435; close_range (5.9) is 436.
		firstMissing: map[string]int{"amd64": 436, "arm64": 436},
		Pidfd:        true,
		Eventfd2:     true, EFDSemaphore: true,
		Suite: true,
	},
	"5.10": {
		Name: "5.10", For: "Debian 11, Amazon Linux 2",
		// process_madvise (5.10) is the last call, 440; epoll_pwait2 (5.11) is 441.
		firstMissing: map[string]int{"amd64": 441, "arm64": 441},
		NoWaitRead:   true, Pidfd: true, PidfdGetfd: true,
		Eventfd2: true, EFDSemaphore: true,
		Suite: true,
	},
	"6.1": {
		Name: "6.1", For: "Debian 12",
		// set_mempolicy_home_node (5.17) is the last call, 450; cachestat (6.5) is 451.
		firstMissing: map[string]int{"amd64": 451, "arm64": 451},
		NoWaitRead:   true, Pidfd: true, PidfdGetfd: true,
		Eventfd2: true, EFDSemaphore: true,
		Suite: true,
	},
	// Refusal profiles: 4.18 without eventfd2, or without EFD_SEMAPHORE, to
	// check the error a constructor returns on a kernel that lacks what
	// eventsync cannot do without. (The Go runtime itself needs Linux 3.2, so
	// these are not whole older kernels.)
	"no-eventfd2": {
		Name: "no-eventfd2", For: "kernels before 2.6.27, or built without CONFIG_EVENTFD",
		firstMissing: map[string]int{"amd64": 335, "arm64": 294},
	},
	"no-efd-semaphore": {
		Name: "no-efd-semaphore", For: "kernels 2.6.27 to 2.6.29",
		firstMissing: map[string]int{"amd64": 335, "arm64": 294},
		Eventfd2:     true,
	},
}

// Lookup returns the profile called name.
func Lookup(name string) (*Profile, error) {
	p, ok := Profiles[name]
	if !ok {
		return nil, fmt.Errorf("%s=%q: no such kernel profile (have %v)", Env, name, Names(false))
	}
	return p, nil
}

// Names lists the profiles, oldest first; with suite, only those the whole
// suite runs under.
func Names(suite bool) []string {
	var names []string
	for name, p := range Profiles {
		if p.Suite || !suite {
			names = append(names, name)
		}
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := Profiles[names[i]], Profiles[names[j]]
		if a.Suite != b.Suite {
			return a.Suite
		}
		return a.firstMissing["amd64"] < b.firstMissing["amd64"] || a.firstMissing["amd64"] == b.firstMissing["amd64"] && names[i] < names[j]
	})
	return names
}
