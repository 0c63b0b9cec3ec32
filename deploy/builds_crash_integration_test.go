package deploy_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDeploy_BuildKilledWithSkiff SIGKILLs skiff while a build runs: the build is stopped on the target with
// it, never marked complete nor linked, current stays where it was, and the next deploy of the same key builds
// it again and links it.
func TestDeploy_BuildKilledWithSkiff(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a skiff binary and kills it; skipped with -short")
	}
	env, h, bin, appPath := binaryApp(t, "killed-build")
	// The build sleeps as long as the release's SLOW file says; SLOW is not an input, so the key stays.
	tag := fmt.Sprintf("skiff-killed-build-%d", time.Now().UnixNano())
	inv := env.WriteInventory(t, fmt.Sprintf(`[apps.kb]
hosts = [%q]
path = %q

[[apps.kb.builds]]
name = "deps"
path = "deps"
inputs = ["lock.txt"]
run = 'touch "$SKIFF_BUILD_DIR/started"; sleep "$(cat SLOW)"; touch "$SKIFF_BUILD_DIR/done" # %s'
`, h.Name, appPath, tag))
	src := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	skiff := func(args ...string) *exec.Cmd {
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second))) // a release id of its own
		return killableSkiff(bin, inv, args...)
	}
	mustRun := func(args ...string) string {
		t.Helper()
		out, err := skiff(args...).CombinedOutput()
		if err != nil {
			t.Fatalf("skiff %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	write("lock.txt", "a\n")
	write("SLOW", "0\n")
	mustRun("deploy", "kb", "--source", src)
	live := currentRelease(t, appPath)
	firstBuild, err := os.Readlink(filepath.Join(appPath, "releases", live, "deps"))
	if err != nil {
		t.Fatal(err)
	}

	write("lock.txt", "b\n")
	write("SLOW", "300\n")
	cmd := skiff("-v", "deploy", "kb", "--source", src)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := waitFor(t, 60*time.Second, func() string {
		m, _ := filepath.Glob(filepath.Join(appPath, "builds", "deps-*", "started"))
		for _, p := range m {
			if filepath.Dir(p) != firstBuild {
				return filepath.Dir(p)
			}
		}
		return ""
	})
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
	// The build dies with skiff's SSH session: no process of it is left on the target.
	waitFor(t, 30*time.Second, func() string {
		if buildRunning(tag) {
			return ""
		}
		return "gone"
	})
	if _, err := os.Stat(started + ".complete"); err == nil {
		t.Fatalf("the killed build %s is marked complete\n%s", started, out.String())
	}
	if cur := currentRelease(t, appPath); cur != live {
		t.Fatalf("current moved to %s, want %s", cur, live)
	}
	links, _ := filepath.Glob(filepath.Join(appPath, "releases", "*", "deps"))
	for _, l := range links {
		if target, _ := os.Readlink(l); target == started {
			t.Errorf("%s links the killed build", l)
		}
	}

	mustRun("lock", "release", "kb", "--force") // the killed run's lock is younger than the app's timeout
	write("SLOW", "0\n")
	mustRun("deploy", "kb", "--source", src)
	cur := currentRelease(t, appPath)
	var target string
	target, err = os.Readlink(filepath.Join(appPath, "releases", cur, "deps"))
	if err != nil || target != started {
		t.Fatalf("deps of the new release links %q, %v; want the rebuilt %s", target, err, started)
	}
	for _, name := range []string{"done", "../" + filepath.Base(started) + ".complete"} {
		if _, err := os.Stat(filepath.Join(started, name)); err != nil {
			t.Errorf("the rebuilt build lacks %s: %v", name, err)
		}
	}
}

// waitFor polls cond until it returns something other than "", or fails the test after d.
func waitFor(t *testing.T, d time.Duration, cond func() string) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if v := cond(); v != "" {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting after %s", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// buildRunning reports whether a process whose command line holds tag runs on the machine.
func buildRunning(tag string) bool {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte(tag)) && !bytes.Contains(data, []byte("skiff.test")) {
			return true
		}
	}
	return false
}
