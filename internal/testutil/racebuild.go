package testutil

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/eventsync/eventsync/internal/race"
)

// GoBuildRace is GoBuild with the race detector on when this test binary
// has it (go test -race): a program that the test runs is then checked for
// races as the test itself is, and one that finds a race exits with status
// 66.
func GoBuildRace(t testing.TB, dir string) string {
	t.Helper()
	if !race.Enabled {
		return GoBuild(t, dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), filepath.Base(abs))
	cmd := exec.Command("go", "build", "-race", "-o", bin, ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatal(fmt.Errorf("go build -race: %v\n%s", err, out))
	}
	return bin
}
