//go:build linux

package upstream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// modulePath is this repository's module.
const modulePath = "github.com/eventsync/eventsync"

// tempModulePath is the module the tests write into a temporary directory.
const tempModulePath = "eventsync.test/judge"

// repoRoot returns the directory of this repository's go.mod, found from
// the test's working directory upwards.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && regexp.MustCompile(`(?m)^module\s+`+regexp.QuoteMeta(modulePath)+`\s*$`).Match(b) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod of %s above the working directory", modulePath)
		}
		dir = parent
	}
}

// goEnv is the environment for the go commands the tests run: the module
// graph may be completed (the temporary module lists only eventsync), the
// toolchain is the one running the tests, and GOPROXY and the caches are
// inherited.
func goEnv(t *testing.T) []string {
	t.Helper()
	flags := strings.TrimSpace(goOutput(t, "", nil, "env", "GOFLAGS"))
	return append(os.Environ(),
		"GOFLAGS="+strings.TrimSpace(flags+" -mod=mod"),
		"GOTOOLCHAIN=local",
		"GOWORK=off",
	)
}

// goOutput runs the go command in dir and returns its standard output; it
// fails the test if the command fails.
func goOutput(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out)
}

// newTempModule writes, in a temporary directory, a module that requires
// this repository through a replace directive and carries its go.sum. It
// returns the module's directory.
func newTempModule(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	dir := t.TempDir()
	gomod := fmt.Sprintf("module %s\n\ngo 1.26.0\n\nrequire %s v0.0.0-00010101000000-000000000000\n\nreplace %s => %s\n",
		tempModulePath, modulePath, modulePath, strconv.Quote(root))
	writeFile(t, filepath.Join(dir, "go.mod"), gomod)
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "go.sum"), string(sum))
	return dir
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// rewriteImports returns src with the paths of its import declarations
// replaced as paths says (old path to new path), and how many it replaced.
// Only import specs change: the file is parsed to find them, and each path
// literal is replaced in place, so that everything else stays byte for byte
// as upstream wrote it.
func rewriteImports(t *testing.T, name string, src []byte, paths map[string]string) ([]byte, int) {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
	if err != nil {
		t.Fatalf("parsing %s: %v", name, err)
	}
	type edit struct {
		start, end int
		text       string
	}
	var edits []edit
	for _, imp := range f.Imports {
		old, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			t.Fatal(err)
		}
		if repl, ok := paths[old]; ok {
			edits = append(edits, edit{
				start: fset.Position(imp.Path.Pos()).Offset,
				end:   fset.Position(imp.Path.End()).Offset,
				text:  strconv.Quote(repl),
			})
		}
	}
	sort.Slice(edits, func(i, j int) bool { return edits[i].start > edits[j].start })
	out := append([]byte(nil), src...)
	for _, e := range edits {
		out = append(out[:e.start:e.start], append([]byte(e.text), out[e.end:]...)...)
	}
	return out, len(edits)
}

// testEvent is a line of go test -json.
type testEvent struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// testResult is what go test -json reported for one test or example.
type testResult struct {
	action string // the last of run, pass, fail, skip
	output strings.Builder
}

// goTestJSON runs go test -json with args in dir and returns, by test
// name, what each test reported, and the output that belongs to no test
// (build errors, a crash after the tests). The run is bounded by the test's
// own deadline.
func goTestJSON(t *testing.T, dir string, args ...string) (map[string]*testResult, string) {
	t.Helper()
	timeout := 10 * time.Minute
	if d, ok := t.Deadline(); ok {
		timeout = time.Until(d) - 30*time.Second
		if timeout < time.Minute {
			timeout = time.Minute
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args = append([]string{"test", "-json", "-timeout", (timeout - 10*time.Second).Round(time.Second).String()}, args...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = goEnv(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("go %s", strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	results := map[string]*testResult{}
	var other strings.Builder
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var ev testEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			other.WriteString(sc.Text() + "\n")
			continue
		}
		if ev.Test == "" {
			other.WriteString(ev.Output)
			continue
		}
		r := results[ev.Test]
		if r == nil {
			r = &testResult{}
			results[ev.Test] = r
		}
		r.output.WriteString(ev.Output)
		switch ev.Action {
		case "run", "pass", "fail", "skip":
			r.action = ev.Action
		}
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		t.Fatalf("go test did not finish in %v:\n%s%s", timeout, other.String(), stderr.Bytes())
	}
	if err != nil {
		// The failures are in results; a build failure or crash is in other.
		t.Logf("go test: %v", err)
	}
	other.Write(stderr.Bytes())
	return results, other.String()
}

// topLevel returns the names of the Test and Example functions in Go source.
func topLevel(src []byte) (tests, examples []string) {
	re := regexp.MustCompile(`(?m)^func ((Test|Example)\w*)\(`)
	for _, m := range re.FindAllSubmatch(src, -1) {
		name := string(m[1])
		if name == "TestMain" {
			continue
		}
		if strings.HasPrefix(name, "Test") {
			tests = append(tests, name)
		} else {
			examples = append(examples, name)
		}
	}
	return tests, examples
}

// judge reports, as a subtest each, what go test said of every test in
// tests: each must pass (skipped ones must be in skipped, and be
// skipped). Examples must pass if they ran (examples without an output
// comment are only compiled). Failures carry the test's output, or the
// run's if the test never reported (a build failure, a crash).
func judge(t *testing.T, results map[string]*testResult, other string, tests, examples []string, skipped map[string]bool) {
	t.Helper()
	for _, name := range tests {
		t.Run(name, func(t *testing.T) {
			r := results[name]
			switch {
			case skipped[name]:
				if r != nil && r.action != "skip" {
					t.Fatalf("%s should have been skipped, got %q:\n%s", name, r.action, r.output.String())
				}
				t.Skip("skipped in the upstream run")
			case r == nil:
				t.Errorf("%s never ran; output of the run:\n%s", name, other)
			case r.action != "pass":
				t.Errorf("%s: %s\n%s", name, r.action, r.output.String())
			}
		})
	}
	for _, name := range examples {
		r := results[name]
		if r == nil {
			continue
		}
		t.Run(name, func(t *testing.T) {
			if r.action != "pass" {
				t.Errorf("%s: %s\n%s", name, r.action, r.output.String())
			}
		})
	}
	for name, r := range results {
		if !strings.Contains(name, "/") && r.action == "fail" && !contains(tests, name) && !contains(examples, name) {
			t.Errorf("%s, not found in the sources, failed:\n%s", name, r.output.String())
		}
	}
	if len(results) == 0 {
		t.Errorf("no test reported; output of the run:\n%s", other)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
