package testenv

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
)

// SharedHosts is the number of hosts in the environment Shared starts.
const SharedHosts = 3

// shared is the one environment per test binary that Shared hands out and
// Main tears down. It is the package's only global state, on purpose: the
// point is to start sshd once per test package, not once per test.
var shared struct {
	once sync.Once
	env  *Env
	err  error

	mu      sync.Mutex
	closers []func() error
}

// Shared returns the test binary's shared environment with hosts h1, h2 and
// h3, starting it on first use. Tests must not Stop or Restart its hosts
// (use StartHost for that) and should keep their files under a directory of
// their own. When sshd is not installed the test is skipped, or fails when
// the CI environment variable is "true". Call Main from TestMain so the
// environment is torn down.
func Shared(tb testing.TB) *Env {
	tb.Helper()
	shared.once.Do(func() {
		shared.env, shared.err = Start(SharedHosts)
		if shared.err == nil {
			onMainExit(shared.env.Close)
		}
	})
	if shared.err != nil {
		if errors.Is(shared.err, ErrMissingTool) {
			SkipOrFail(tb, shared.err.Error())
		}
		tb.Fatalf("testenv: start shared environment: %v", shared.err)
	}
	return shared.env
}

// Main runs the tests and then tears down everything shared (sshd hosts and
// whatever else registered itself), and exits with the tests' status. Use it
// as the whole body of TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	shared.mu.Lock()
	closers := shared.closers
	shared.closers = nil
	shared.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		if err := closers[i](); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: teardown: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// onMainExit registers f to run when Main tears down, after all tests.
// Closers run in reverse order of registration.
func onMainExit(f func() error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.closers = append(shared.closers, f)
}

// InCI reports whether the tests run under CI (environment variable
// CI=true), where a missing tool is a failure rather than a reason to skip.
func InCI() bool {
	return os.Getenv("CI") == "true"
}

// SkipOrFail skips the test because something it needs is not available,
// or fails it under CI=true, where everything must be installed.
func SkipOrFail(tb testing.TB, reason string) {
	tb.Helper()
	if InCI() {
		tb.Fatalf("testenv: %s (CI=true: missing tools are failures)", reason)
		return
	}
	tb.Skipf("testenv: %s (skipped; with CI=true this fails)", reason)
}
