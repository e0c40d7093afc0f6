//go:build linux

package upstream

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The x/sync tests skipped here: none. (TestWeightedPanic and
// TestWeightedDoesntBlockIfTooBig need the size, which NewWeighted records.)
var xsyncSkipped = map[string]bool{}

// moduleDir returns the directory of module path, at the version this
// repository's go.mod requires, in the module cache; go mod download
// fetches it if it is missing.
func moduleDir(t *testing.T, path string) string {
	t.Helper()
	out := goOutput(t, repoRoot(t), goEnv(t), "mod", "download", "-json", path)
	var m struct {
		Path, Version, Dir, Error string
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("go mod download -json %s: %v\n%s", path, err, out)
	}
	if m.Error != "" || m.Dir == "" {
		t.Fatalf("go mod download %s: %s", path, m.Error)
	}
	t.Logf("%s@%s from %s", m.Path, m.Version, m.Dir)
	return m.Dir
}

// copySuite copies the files of dir that match glob into the temporary
// module's directory sub, with their imports rewritten by paths, and
// returns the Test and Example functions they define. Each file must
// import at least one of paths' keys, except where mayKeep says otherwise.
func copySuite(t *testing.T, mod, sub, dir string, names []string, paths map[string]string) (tests, examples []string) {
	t.Helper()
	for _, name := range names {
		src, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out, n := rewriteImports(t, name, src, paths)
		if n == 0 {
			t.Fatalf("%s imports none of %v: upstream changed, review the rewrite", name, paths)
		}
		writeFile(t, filepath.Join(mod, sub, name), string(out))
		ts, es := topLevel(src)
		tests = append(tests, ts...)
		examples = append(examples, es...)
	}
	return tests, examples
}

// golang.org/x/sync/semaphore's own tests, benchmarks and example, with
// their import of golang.org/x/sync/semaphore switched to eventsync's
// semaphore, run under -race. Only the import path changes: NewWeighted
// and Weighted exist under those names.
func TestXSyncSemaphoreSuite(t *testing.T) {
	dir := filepath.Join(moduleDir(t, "golang.org/x/sync"), "semaphore")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), "_test.go") {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		t.Fatalf("no test files in %s", dir)
	}
	mod := newTempModule(t)
	writeFile(t, filepath.Join(mod, "semaphore", "doc.go"),
		"// Package semaphore holds x/sync's semaphore tests, run against eventsync.\npackage semaphore\n")
	tests, examples := copySuite(t, mod, "semaphore", dir, names, map[string]string{
		"golang.org/x/sync/semaphore": modulePath + "/semaphore",
	})
	skip := ""
	for name := range xsyncSkipped {
		if !contains(tests, name) {
			t.Errorf("upstream no longer has %s: update xsyncSkipped", name)
		}
		if skip != "" {
			skip += "|"
		}
		skip += name
	}
	args := []string{"-race", "-count=1", "./semaphore"}
	if skip != "" {
		args = append(args, "-skip", "^("+skip+")$")
	}
	results, other := goTestJSON(t, mod, args...)
	judge(t, results, other, tests, examples, xsyncSkipped)
}

// The standard library's sync.WaitGroup tests, and the WaitGroup examples
// of its example file, run under -race against waitgroup.WaitGroup. The
// dot import of "sync" becomes a shim package that is the standard
// library's sync except that WaitGroup is eventsync's; internal/testenv,
// which only the standard library may import, becomes a shim of the one
// function the file uses.
func TestSyncWaitGroupSuite(t *testing.T) {
	goroot := strings.TrimSpace(goOutput(t, "", goEnv(t), "env", "GOROOT"))
	dir := filepath.Join(goroot, "src", "sync")
	mod := newTempModule(t)
	writeFile(t, filepath.Join(mod, "sync", "sync.go"), syncShim)
	writeFile(t, filepath.Join(mod, "testenv", "testenv.go"), testenvShim)
	paths := map[string]string{
		"sync":             tempModulePath + "/sync",
		"internal/testenv": tempModulePath + "/testenv",
	}
	tests, _ := copySuite(t, mod, "sync", dir, []string{"waitgroup_test.go"}, paths)
	_, examples := copySuite(t, mod, "sync", dir, []string{"example_test.go"}, paths)
	var wgExamples []string
	for _, e := range examples {
		if strings.HasPrefix(e, "ExampleWaitGroup") {
			wgExamples = append(wgExamples, e)
		}
	}
	if len(wgExamples) == 0 {
		t.Errorf("no WaitGroup example in %s/example_test.go", dir)
	}
	// Every test of waitgroup_test.go, and the WaitGroup examples; the
	// other examples (Once, OnceValue) run on the standard library's sync
	// and are left out.
	run := "^(" + strings.Join(append(append([]string(nil), tests...), wgExamples...), "|") + ")$"
	results, other := goTestJSON(t, mod, "-race", "-count=1", "-run", run, "./sync")
	judge(t, results, other, tests, wgExamples, nil)
}

// syncShim is the package that the standard library's tests import as
// "sync": WaitGroup is eventsync's, the rest is the standard library's.
const syncShim = `// Package sync is the standard library's sync, except that WaitGroup is
// eventsync's waitgroup.WaitGroup.
package sync

import (
	stdsync "sync"

	"github.com/eventsync/eventsync/waitgroup"
)

type WaitGroup = waitgroup.WaitGroup

type (
	Cond    = stdsync.Cond
	Locker  = stdsync.Locker
	Map     = stdsync.Map
	Mutex   = stdsync.Mutex
	Once    = stdsync.Once
	Pool    = stdsync.Pool
	RWMutex = stdsync.RWMutex
)

func NewCond(l Locker) *Cond { return stdsync.NewCond(l) }

func OnceFunc(f func()) func() { return stdsync.OnceFunc(f) }

func OnceValue[T any](f func() T) func() T { return stdsync.OnceValue(f) }

func OnceValues[T1, T2 any](f func() (T1, T2)) func() (T1, T2) { return stdsync.OnceValues(f) }
`

// testenvShim stands in for the standard library's internal/testenv.
const testenvShim = `// Package testenv stands in for the standard library's internal/testenv.
package testenv

import (
	"os"
	"testing"
)

// MustHaveExec skips t unless this process can start others; on Linux it
// can, if it can find its own executable.
func MustHaveExec(t testing.TB) {
	t.Helper()
	if _, err := os.Executable(); err != nil {
		t.Skipf("cannot exec: %v", err)
	}
}
`
