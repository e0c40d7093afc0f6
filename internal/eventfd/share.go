package eventfd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// Kind names a public type and the eventfds it is made of, in order.
type Kind struct {
	Name  string
	Modes []Mode
}

// The kinds of primitive that can be shared.
var (
	KindSemaphore = Kind{"semaphore", []Mode{Semaphore}}
	KindSignal    = Kind{"signal", []Mode{Counter}}
	// A WaitGroup is its counter, a descriptor written when the counter
	// reaches zero, and a count of waiting processes (see package waitgroup).
	KindWaitGroup = Kind{"waitgroup", []Mode{Semaphore, Counter, Semaphore}}
)

var kinds = []Kind{KindSemaphore, KindSignal, KindWaitGroup}

// Errors of sharing, the same values in every public package.
var (
	// ErrNotInherited: no primitive of that name was passed to this process.
	ErrNotInherited = errors.New("no primitive of that name was inherited")
	// ErrWrongKind: the primitive passed under that name is of another type.
	ErrWrongKind = errors.New("primitive is of another type")
	// ErrMalformed: the environment entry or the message is not one that
	// PassTo or Send writes.
	ErrMalformed = errors.New("malformed description of a shared primitive")
	// ErrTaken: Inherited was already called for that name.
	ErrTaken = errors.New("inherited primitive already taken")
)

// EnvVar is the environment variable through which PassTo tells a child
// which descriptors it inherits. Its value is a list of entries separated by
// spaces, one per primitive:
//
//	name:kind:fd[,fd...]
//
// name is made of ASCII letters, digits, '_', '-' and '.'; kind is
// "semaphore", "signal" or "waitgroup"; the fds are decimal descriptor
// numbers in the child, one per eventfd of the kind (a WaitGroup has three).
// For example:
//
//	EVENTSYNC_FDS=jobs:semaphore:3 done:waitgroup:4,5,6
const EnvVar = "EVENTSYNC_FDS"

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
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// parseEnv parses the value of EnvVar. It accepts exactly what formatEnv
// writes, and reports anything else as ErrMalformed.
func parseEnv(v string) ([]entry, error) {
	var entries []entry
	seen := make(map[int]bool)
	for _, field := range strings.Fields(v) {
		parts := strings.Split(field, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("%s entry %q is not name:kind:fds: %w", EnvVar, field, ErrMalformed)
		}
		e := entry{name: parts[0], kind: parts[1]}
		if !validName(e.name) {
			return nil, fmt.Errorf("%s entry %q: bad name: %w", EnvVar, field, ErrMalformed)
		}
		if e.kind == "" {
			return nil, fmt.Errorf("%s entry %q: no kind: %w", EnvVar, field, ErrMalformed)
		}
		for _, s := range strings.Split(parts[2], ",") {
			// Descriptor numbers are 32-bit in the kernel: a wider one
			// would name the descriptor its low bits make.
			n, err := strconv.ParseInt(s, 10, 32)
			fd := int(n)
			if err != nil || fd < 0 || strconv.Itoa(fd) != s {
				return nil, fmt.Errorf("%s entry %q: bad descriptor %q: %w", EnvVar, field, s, ErrMalformed)
			}
			// Inherited takes ownership of each number: two owners of
			// one would close it twice.
			if seen[fd] {
				return nil, fmt.Errorf("%s entry %q: descriptor %d given twice: %w", EnvVar, field, fd, ErrMalformed)
			}
			seen[fd] = true
			e.fds = append(e.fds, fd)
		}
		if len(e.fds) > 16 {
			return nil, fmt.Errorf("%s entry %q: too many descriptors: %w", EnvVar, field, ErrMalformed)
		}
		for _, prev := range entries {
			if prev.name == e.name {
				return nil, fmt.Errorf("%s: name %q given twice: %w", EnvVar, e.name, ErrMalformed)
			}
		}
		entries = append(entries, e)
	}
	return entries, nil
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

// fileName is the name PassTo gives the files it adds to cmd.ExtraFiles, by
// which a later PassTo on the same command tells them from stale entries.
func fileName(name, kind string, i int) string {
	return "eventsync:" + name + ":" + kind + ":" + strconv.Itoa(i)
}

// PassTo arranges for cmd's process to inherit fds under name: it appends
// duplicates of them to cmd.ExtraFiles and describes them in cmd.Env (which
// starts from os.Environ() when nil). Entries in cmd.Env that no earlier
// PassTo on this command made — such as this process's own inheritance,
// copied in with os.Environ() — are dropped, so that a child sees only what
// it was passed.
//
// The duplicates stay open in this process until cmd is garbage collected;
// after cmd.Start, closing the files in cmd.ExtraFiles releases them at once.
func PassTo(cmd *exec.Cmd, name string, kind Kind, fds []*FD) error {
	if cmd == nil {
		return fmt.Errorf("nil *exec.Cmd: %w", os.ErrInvalid)
	}
	if cmd.Process != nil {
		return errors.New("command already started")
	}
	if !validName(name) {
		return fmt.Errorf("name %q: use 1 to 255 ASCII letters, digits, '_', '-' or '.': %w", name, os.ErrInvalid)
	}
	if len(fds) != len(kind.Modes) {
		return fmt.Errorf("a %s is %d descriptors, not %d: %w", kind.Name, len(kind.Modes), len(fds), os.ErrInvalid)
	}
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	// Keep what earlier PassTo calls on this command described, and
	// nothing else.
	var entries []entry
	var rest []string
	for _, kv := range env {
		v, ok := strings.CutPrefix(kv, EnvVar+"=")
		if !ok {
			rest = append(rest, kv)
			continue
		}
		old, _ := parseEnv(v)
		for _, e := range old {
			if passedHere(cmd, e) {
				entries = append(entries, e)
			}
		}
	}
	for _, e := range entries {
		if e.name == name {
			return fmt.Errorf("name %q already passed to this command", name)
		}
	}
	files := make([]*os.File, 0, len(fds))
	e := entry{name: name, kind: kind.Name}
	for i, fd := range fds {
		dup, err := fd.export()
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return err
		}
		files = append(files, os.NewFile(uintptr(dup), fileName(name, kind.Name, i)))
		e.fds = append(e.fds, 3+len(cmd.ExtraFiles)+i)
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, files...)
	entries = append(entries, e)
	cmd.Env = append(rest, EnvVar+"="+formatEnv(entries))
	return nil
}

func passedHere(cmd *exec.Cmd, e entry) bool {
	for i, fd := range e.fds {
		j := fd - 3
		if j < 0 || j >= len(cmd.ExtraFiles) || cmd.ExtraFiles[j] == nil ||
			cmd.ExtraFiles[j].Name() != fileName(e.name, e.kind, i) {
			return false
		}
	}
	return true
}

// inheritance is EnvVar as this process started with it. It is removed from
// the environment at once, and what it names made close-on-exec again,
// whether or not Inherited is ever called: a child passes on only what it
// passes with PassTo, and a grandchild started with os.Environ() is not told
// of descriptors it does not have.
var inheritance struct {
	value string
	ok    bool
}

func init() {
	v, ok := os.LookupEnv(EnvVar)
	if !ok {
		return
	}
	inheritance.value, inheritance.ok = v, true
	os.Unsetenv(EnvVar)
	if entries, err := parseEnv(v); err == nil {
		for _, e := range entries {
			for _, fd := range e.fds {
				if fd > 2 {
					sysCloseOnExec(fd)
				}
			}
		}
	}
}

// inheritedEnv returns EnvVar if it is set now, or else as this process
// started with it.
func inheritedEnv() (string, bool) {
	if v, ok := os.LookupEnv(EnvVar); ok {
		return v, true
	}
	return inheritance.value, inheritance.ok
}

// taken records the names Inherited has handed out in this process.
var taken struct {
	sync.Mutex
	names map[string]bool
}

// Inherited returns the eventfds passed to this process under name, checked
// against kind: each must be an open eventfd in the mode the kind says. It
// makes them close-on-exec and non-blocking. A name can be taken once.
func Inherited(name string, kind Kind) ([]*FD, error) {
	v, ok := inheritedEnv()
	if !ok {
		return nil, fmt.Errorf("%q: %s is not set: %w", name, EnvVar, ErrNotInherited)
	}
	entries, err := parseEnv(v)
	if err != nil {
		return nil, err
	}
	i := slicesIndex(entries, name)
	if i < 0 {
		return nil, fmt.Errorf("%q: %w", name, ErrNotInherited)
	}
	e := entries[i]
	if e.kind != kind.Name {
		return nil, fmt.Errorf("%q is a %s, not a %s: %w", name, e.kind, kind.Name, ErrWrongKind)
	}
	if len(e.fds) != len(kind.Modes) {
		return nil, fmt.Errorf("%q: a %s has %d descriptors, not %d: %w", name, kind.Name, len(kind.Modes), len(e.fds), ErrMalformed)
	}
	taken.Lock()
	defer taken.Unlock()
	if taken.names[name] {
		return nil, fmt.Errorf("%q: %w", name, ErrTaken)
	}
	for j, fd := range e.fds {
		if err := checkInherited(fd, kind.Modes[j]); err != nil {
			return nil, fmt.Errorf("%q: descriptor %d: %w", name, fd, err)
		}
	}
	fds := make([]*FD, len(e.fds))
	for j, fd := range e.fds {
		fds[j] = newFD(fd, kind.Modes[j], true)
	}
	if taken.names == nil {
		taken.names = make(map[string]bool)
	}
	taken.names[name] = true
	return fds, nil
}

func slicesIndex(entries []entry, name string) int {
	for i, e := range entries {
		if e.name == name {
			return i
		}
	}
	return -1
}

// header is the payload of a Send message: a magic, a version, the kind and
// the number of descriptors that travel with it.
const headerLen = 8

var magic = [4]byte{'e', 'v', 's', 'y'}

func kindIndex(k Kind) byte {
	for i, kk := range kinds {
		if kk.Name == k.Name {
			return byte(i + 1)
		}
	}
	return 0
}

// Send passes fds to the process at the other end of conn, with SCM_RIGHTS.
func Send(conn *net.UnixConn, kind Kind, fds []*FD) error {
	if conn == nil {
		return fmt.Errorf("nil *net.UnixConn: %w", os.ErrInvalid)
	}
	nums := make([]int, 0, len(fds))
	defer func() {
		for _, n := range nums {
			sysClose(n)
		}
	}()
	for _, fd := range fds {
		dup, err := fd.export()
		if err != nil {
			return err
		}
		nums = append(nums, dup)
	}
	hdr := [headerLen]byte{magic[0], magic[1], magic[2], magic[3], 1, kindIndex(kind), byte(len(fds))}
	n, oobn, err := conn.WriteMsgUnix(hdr[:], unixRights(nums), nil)
	if err != nil {
		return err
	}
	if n != len(hdr) || oobn == 0 {
		return errors.New("short write")
	}
	return nil
}

// Receive reads one message written by Send and returns its eventfds,
// checked against kind. Descriptors arrive close-on-exec
// (MSG_CMSG_CLOEXEC), and on any error every descriptor that arrived is
// closed.
func Receive(conn *net.UnixConn, kind Kind) ([]*FD, error) {
	if conn == nil {
		return nil, fmt.Errorf("nil *net.UnixConn: %w", os.ErrInvalid)
	}
	var hdr [headerLen]byte
	oob := make([]byte, oobSpace)
	n, oobn, flags, _, err := conn.ReadMsgUnix(hdr[:], oob)
	if err != nil {
		return nil, err
	}
	nums, perr := parseRights(oob[:oobn])
	fail := func(err error) ([]*FD, error) {
		for _, fd := range nums {
			sysClose(fd)
		}
		return nil, err
	}
	switch {
	case perr != nil:
		return fail(perr)
	case flags&msgCtrunc != 0:
		return fail(fmt.Errorf("too many descriptors in one message: %w", ErrMalformed))
	case flags&msgTrunc != 0:
		return fail(fmt.Errorf("message is longer than Send writes: %w", ErrMalformed))
	case n != headerLen || [4]byte(hdr[:4]) != magic || hdr[4] != 1:
		return fail(fmt.Errorf("message is not from Send: %w", ErrMalformed))
	case hdr[5] != kindIndex(kind):
		got := "an unknown kind"
		if i := int(hdr[5]) - 1; i >= 0 && i < len(kinds) {
			got = "a " + kinds[i].Name
		}
		return fail(fmt.Errorf("received %s, not a %s: %w", got, kind.Name, ErrWrongKind))
	case int(hdr[6]) != len(kind.Modes) || len(nums) != len(kind.Modes):
		return fail(fmt.Errorf("a %s has %d descriptors, message has %d: %w", kind.Name, len(kind.Modes), len(nums), ErrMalformed))
	}
	for j, fd := range nums {
		if err := checkInherited(fd, kind.Modes[j]); err != nil {
			return fail(err)
		}
	}
	fds := make([]*FD, len(nums))
	for j, fd := range nums {
		fds[j] = newFD(fd, kind.Modes[j], true)
	}
	return fds, nil
}
