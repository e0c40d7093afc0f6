package share

import (
	"fmt"
	"strconv"
	"strings"
)

// EnvVar is the environment variable through which PassTo tells a child
// which descriptors it inherits. Its value is a list of entries separated by
// spaces, one per primitive:
//
//	name:kind:fd[,fd...]
//
// name is made of ASCII letters, digits, '_', '-' and '.'; kind is a Kind's
// Name; the fds are decimal descriptor numbers in the child, one per eventfd
// of the kind. For example:
//
//	EVENTSYNC_FDS=jobs:semaphore:3 done:waitgroup:4,5,6
//
// A kind's optional eventfds (Kind.Optional) may be left out of an entry:
// a waitgroup is 3 descriptors, or 4 with the share token of a process
// started with waitgroup's Start.
const EnvVar = "EVENTSYNC_FDS"

// maxFDs is the most descriptors one entry may name.
const maxFDs = 16

type entry struct {
	name string
	kind string
	fds  []int
}

func validName(name string) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	for _, c := range []byte(name) {
		if !nameByte(c) {
			return false
		}
	}
	return true
}

func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '-' || c == '.'
}

// parseEnv parses the value of EnvVar. It accepts exactly what formatEnv
// writes, and reports anything else as ErrMalformed.
func parseEnv(v string) ([]entry, error) {
	var entries []entry
	seen := make(map[int]bool)
	names := make(map[string]bool)
	for _, field := range strings.Fields(v) {
		e, err := parseEntry(field)
		if err != nil {
			return nil, fmt.Errorf("%s entry %q: %w", EnvVar, field, err)
		}
		for _, fd := range e.fds {
			// Inherited takes ownership of each number: two owners of
			// one would close it twice.
			if seen[fd] {
				return nil, fmt.Errorf("%s entry %q: descriptor %d given twice: %w", EnvVar, field, fd, ErrMalformed)
			}
			seen[fd] = true
		}
		if names[e.name] {
			return nil, fmt.Errorf("%s: name %q given twice: %w", EnvVar, e.name, ErrMalformed)
		}
		names[e.name] = true
		entries = append(entries, e)
	}
	return entries, nil
}

func parseEntry(field string) (entry, error) {
	parts := strings.Split(field, ":")
	if len(parts) != 3 {
		return entry{}, fmt.Errorf("not name:kind:fds: %w", ErrMalformed)
	}
	e := entry{name: parts[0], kind: parts[1]}
	if !validName(e.name) {
		return entry{}, fmt.Errorf("bad name: %w", ErrMalformed)
	}
	if e.kind == "" {
		return entry{}, fmt.Errorf("no kind: %w", ErrMalformed)
	}
	fds, err := parseFDs(parts[2])
	if err != nil {
		return entry{}, err
	}
	e.fds = fds
	return e, nil
}

// parseFDs parses a comma-separated list of descriptor numbers.
func parseFDs(list string) ([]int, error) {
	var fds []int
	for _, s := range strings.Split(list, ",") {
		fd, ok := parseFD(s)
		if !ok {
			return nil, fmt.Errorf("bad descriptor %q: %w", s, ErrMalformed)
		}
		fds = append(fds, fd)
	}
	if len(fds) > maxFDs {
		return nil, fmt.Errorf("too many descriptors: %w", ErrMalformed)
	}
	return fds, nil
}

// parseFD parses one descriptor number, written as formatEnv writes it.
func parseFD(s string) (int, bool) {
	// Descriptor numbers are 32-bit in the kernel: a wider one would name
	// the descriptor its low bits make.
	n, err := strconv.ParseInt(s, 10, 32)
	fd := int(n)
	return fd, err == nil && fd >= 0 && strconv.Itoa(fd) == s
}

// namedFDs returns every well-formed descriptor number that v names, even
// when v as a whole is malformed: start-up makes them all close-on-exec, so
// that a bad entry does not widen what reaches an exec'd grandchild.
func namedFDs(v string) []int {
	var fds []int
	for _, field := range strings.Fields(v) {
		i := strings.LastIndexByte(field, ':')
		for _, s := range strings.Split(field[i+1:], ",") {
			if fd, ok := parseFD(s); ok {
				fds = append(fds, fd)
			}
		}
	}
	return fds
}

func formatEnv(entries []entry) string {
	var b strings.Builder
	for i, e := range entries {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(e.name)
		b.WriteByte(':')
		b.WriteString(e.kind)
		b.WriteByte(':')
		for j, fd := range e.fds {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(fd))
		}
	}
	return b.String()
}
