package eventfd

import (
	"bytes"
	"fmt"
	"strconv"
)

// The kernel describes an eventfd in /proc/self/fdinfo/N, one "key: value"
// per line. "eventfd-count:" (the counter, in hexadecimal) is there on every
// kernel eventsync supports; "eventfd-semaphore:" (1 in semaphore mode) only
// since Linux 6.5.

// parseCount returns the counter from an fdinfo text.
func parseCount(info []byte) (uint64, error) {
	v, ok := field(info, "eventfd-count:")
	if !ok {
		return 0, fmt.Errorf("no eventfd-count line: %w", ErrNotEventfd)
	}
	// The kernel prints the count in hexadecimal ("%16llx").
	count, err := strconv.ParseUint(string(v), 16, 64)
	if err != nil {
		return 0, fmt.Errorf("eventfd-count %q: %w", v, err)
	}
	return count, nil
}

// parseMode returns the mode an fdinfo text shows, and false where the
// kernel does not show it.
func parseMode(info []byte) (Mode, bool) {
	v, ok := field(info, "eventfd-semaphore:")
	if !ok {
		return Counter, false
	}
	if string(v) != "0" {
		return Semaphore, true
	}
	return Counter, true
}

// field returns the value after key on its own line of an fdinfo text.
func field(info []byte, key string) ([]byte, bool) {
	for len(info) > 0 {
		line := info
		if i := bytes.IndexByte(info, '\n'); i >= 0 {
			line, info = info[:i], info[i+1:]
		} else {
			info = nil
		}
		if rest, ok := bytes.CutPrefix(line, []byte(key)); ok {
			return bytes.TrimSpace(rest), true
		}
	}
	return nil, false
}
