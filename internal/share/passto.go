package share

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

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
func PassTo(cmd *exec.Cmd, name string, kind Kind, fds ...Exporter) error {
	if err := passTo(cmd, name, kind, fds); err != nil {
		return fmt.Errorf("%s: PassTo: %w", kind.Name, err)
	}
	return nil
}

func passTo(cmd *exec.Cmd, name string, kind Kind, fds []Exporter) error {
	switch {
	case cmd == nil:
		return fmt.Errorf("nil *exec.Cmd: %w", os.ErrInvalid)
	case cmd.Process != nil:
		return ErrStarted
	case !validName(name):
		return fmt.Errorf("name %q: use 1 to 255 ASCII letters, digits, '_', '-' or '.': %w", name, os.ErrInvalid)
	case !kind.fits(len(fds)):
		return fmt.Errorf("a %s is %s descriptors, not %d: %w", kind.Name, kind.want(), len(fds), os.ErrInvalid)
	}
	entries, rest := passedEntries(cmd)
	for _, e := range entries {
		if e.name == name {
			return fmt.Errorf("%q: %w", name, ErrPassed)
		}
	}
	files := make([]*os.File, 0, len(fds))
	e := entry{name: name, kind: kind.Name}
	for i, fd := range fds {
		dup, err := kind.export(fd)
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

// passedEntries splits cmd's environment (os.Environ() if cmd.Env is nil)
// into the entries earlier PassTo calls on cmd made, and everything that is
// not EnvVar.
func passedEntries(cmd *exec.Cmd) (entries []entry, rest []string) {
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
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
	return entries, rest
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
