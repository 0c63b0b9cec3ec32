package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// binary is the skiff binary built once per test binary, for tests that need a real process: to kill it
// with SIGKILL, to measure its peak memory or to give it an environment of its own.
var skiffBin struct {
	once sync.Once
	path string
	err  error
}

// SkiffBinary builds ./cmd/skiff once per test binary and returns its path; Main removes it after the tests.
func SkiffBinary(tb testing.TB) string {
	tb.Helper()
	skiffBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "skiff-bin-")
		if err != nil {
			skiffBin.err = err
			return
		}
		onMainExit(func() error { return os.RemoveAll(dir) })
		skiffBin.path = filepath.Join(dir, "skiff")
		if out, err := exec.Command("go", "build", "-o", skiffBin.path, "github.com/skiffdeploy/skiff/cmd/skiff").CombinedOutput(); err != nil {
			skiffBin.err = fmt.Errorf("testenv: go build skiff: %v\n%s", err, out)
		}
	})
	if skiffBin.err != nil {
		tb.Fatal(skiffBin.err)
	}
	return skiffBin.path
}
