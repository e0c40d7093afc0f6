//go:build linux

package upstream

import (
	"bytes"
	"context"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// switchToEventsync applies to a Go file exactly the change the README
// documents for moving to eventsync, and nothing else:
//
//   - golang.org/x/sync/semaphore: the import path becomes
//     github.com/eventsync/eventsync/semaphore (the package is still called
//     semaphore, and NewWeighted and Weighted exist);
//   - sync.WaitGroup: it becomes waitgroup.WaitGroup, imported from
//     github.com/eventsync/eventsync/waitgroup; the "sync" import stays if
//     the file uses anything else of sync (a Mutex), as goimports would
//     leave it.
//
// It returns the new source and how many changes it made.
func switchToEventsync(t *testing.T, name string, src []byte) ([]byte, int) {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
	if err != nil {
		t.Fatalf("parsing %s: %v", name, err)
	}
	changes := 0
	otherSync := false
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); ok && x.Name == "sync" && x.Obj == nil {
			if sel.Sel.Name == "WaitGroup" {
				x.Name = "waitgroup"
				changes++
			} else {
				otherSync = true
			}
		}
		return true
	})
	var syncImport *ast.ImportSpec
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		switch path {
		case "golang.org/x/sync/semaphore":
			imp.Path.Value = strconv.Quote(modulePath + "/semaphore")
			changes++
		case "sync":
			syncImport = imp
		}
	}
	if syncImport != nil && changes > 0 && syncImport.Name == nil {
		wgPath := strconv.Quote(modulePath + "/waitgroup")
		if otherSync {
			addImport(f, wgPath)
		} else {
			syncImport.Path.Value = wgPath
		}
	}
	var buf bytes.Buffer
	if err := format.Node(&buf, fset, f); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), changes
}

// addImport adds path to the first import declaration of f.
func addImport(f *ast.File, path string) {
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.IMPORT {
			continue
		}
		spec := &ast.ImportSpec{Path: &ast.BasicLit{Kind: token.STRING, Value: path}}
		gd.Specs = append(gd.Specs, spec)
		if !gd.Lparen.IsValid() {
			gd.Lparen = gd.Pos()
			gd.Rparen = gd.End()
		}
		f.Imports = append(f.Imports, spec)
		return
	}
}

// Small programs written against sync.WaitGroup and
// golang.org/x/sync/semaphore (testdata/dropin), switched to eventsync by
// the README's documented change alone, must vet, build and run under the
// race detector with no report. Each program checks its own results and
// prints "ok". The originals run too, against sync and x/sync, to show the
// programs themselves are race-free: a race in the switched program is
// then eventsync's.
func TestDropIn(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "dropin", "*.go.txt"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatal("no programs in testdata/dropin")
	}
	mod := newTempModule(t)
	env := goEnv(t)
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".go.txt")
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		switched, n := switchToEventsync(t, file, src)
		if n == 0 {
			t.Fatalf("%s uses neither sync.WaitGroup nor x/sync/semaphore", file)
		}
		if _, again := switchToEventsync(t, file, switched); again != 0 {
			t.Fatalf("%s still uses the upstream types after the switch:\n%s", file, switched)
		}
		writeFile(t, filepath.Join(mod, "original_"+name, "main.go"), string(src))
		writeFile(t, filepath.Join(mod, "switched_"+name, "main.go"), string(switched))
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".go.txt")
		t.Run(name, func(t *testing.T) {
			for _, variant := range []string{"original", "switched"} {
				t.Run(variant, func(t *testing.T) {
					pkg := "./" + variant + "_" + name
					goOutput(t, mod, env, "vet", pkg)
					bin := filepath.Join(t.TempDir(), name)
					goOutput(t, mod, env, "build", "-race", "-o", bin, pkg)
					runProgram(t, bin)
				})
			}
		})
	}
}

// runProgram runs a program built with -race and fails the test unless it
// exits 0, prints "ok", and the race detector reports nothing.
func runProgram(t *testing.T, bin string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s hung:\n%s", filepath.Base(bin), out)
	}
	switch {
	case bytes.Contains(out, []byte("DATA RACE")):
		t.Fatalf("the race detector reported a race:\n%s", out)
	case err != nil:
		t.Fatalf("%v:\n%s", err, out)
	case strings.TrimSpace(string(out)) != "ok":
		t.Fatalf("printed %q, want ok", out)
	}
}
