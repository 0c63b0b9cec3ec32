package deploy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/internal/testenv"
	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
	"github.com/skiffdeploy/skiff/ship"
)

// Crash test parameters: a tree of crashDirs*crashFilesPerDir small files of which every generation changes
// one in crashChangeEvery (a few hundred files travel), and crashKills deploys killed at evenly spread moments.
const (
	crashDirs        = 20
	crashFilesPerDir = 100
	crashChangeEvery = 10
	crashKills       = 30
)

// TestDeploy_CrashSafety SIGKILLs a real skiff binary at crashKills moments spread over a whole deploy (lock,
// base copy, upload, manifest, before_switch hook, switch, after_switch hook, history, retention, unlock) and checks after each kill that
// current names a complete release that matches its manifest and that the release live before the run is
// byte for byte what it was. Then it frees the lock as an operator would and goes on.
func TestDeploy_CrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: about a minute of deploys; skipped with -short")
	}
	env, h, bin, appPath := binaryApp(t, "crash")
	inv := env.WriteInventory(t, fmt.Sprintf(`[apps.crash]
hosts = ["h2"]
path = %q
keep_releases = 3
hooks.before_switch = ["sleep 0.3"]
hooks.after_switch = ["sleep 0.2"]
`, appPath))
	layout := release.Layout{Path: appPath}
	conn := dialHost(t, env, h)
	ctx := context.Background()
	src := t.TempDir()
	gen := 0
	writeCrashTree(t, src, gen)

	var lastDeploy time.Time
	skiff := func(args ...string) *exec.Cmd {
		if slices.Contains(args, "deploy") {
			// Release ids have a resolution of one second; every deploy gets an id of its own.
			if now := time.Now(); now.Unix() == lastDeploy.Unix() {
				time.Sleep(now.Truncate(time.Second).Add(time.Second).Sub(now))
			}
			lastDeploy = time.Now()
		}
		return killableSkiff(bin, inv, args...)
	}
	mustRun := func(args ...string) {
		t.Helper()
		if out, err := skiff(args...).CombinedOutput(); err != nil {
			t.Fatalf("skiff %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if slices.Contains(args, "deploy") {
			lastDeploy = time.Now() // a deploy that ended in the next second may have been named after it
		}
	}
	deploySrc := []string{"deploy", "crash", "--source", src}

	mustRun(deploySrc...)
	// The duration of a full deploy is the mean of two, since the machine's load varies.
	var full time.Duration
	for range 2 {
		gen++
		writeCrashTree(t, src, gen)
		start := time.Now()
		mustRun(deploySrc...)
		full += time.Since(start) / 2
	}
	t.Logf("a full deploy of %d files (%d changed) takes %s", crashDirs*crashFilesPerDir, crashDirs*crashFilesPerDir/crashChangeEvery, full)

	switched := 0
	for i := range crashKills {
		before := currentRelease(t, appPath)
		beforeSum := treeSum(t, filepath.Join(appPath, "releases", before))
		gen++
		writeCrashTree(t, src, gen)
		want, err := ship.Scan(ctx, src, nil)
		if err != nil {
			t.Fatal(err)
		}

		delay := full * time.Duration(2*i+1) / (2 * crashKills)
		cmd := skiff(append([]string{"-v"}, deploySrc...)...) // -v: the failure messages show how far it got
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()

		cur := currentRelease(t, appPath)
		if !release.ValidReleaseID(cur) {
			t.Fatalf("kill %d after %s: current is %q\n%s", i, delay, cur, out.String())
		}
		m, err := ship.ReadManifest(ctx, conn, layout, cur)
		if err != nil {
			t.Fatalf("kill %d after %s: manifest of current %s: %v\n%s", i, delay, cur, err, out.String())
		}
		if err := ship.Verify(ctx, conn, layout, cur, m); err != nil {
			t.Fatalf("kill %d after %s: current %s does not match its manifest: %v\n%s", i, delay, cur, err, out.String())
		}
		if cur != before {
			switched++
			if !slices.Equal(m.Entries, want.Entries) {
				t.Fatalf("kill %d after %s: current %s is live but is not the tree that was deployed", i, delay, cur)
			}
		}
		if got := treeSum(t, filepath.Join(appPath, "releases", before)); got != beforeSum {
			t.Fatalf("kill %d after %s: release %s, live before the run, changed", i, delay, before)
		}
		mustRun("lock", "release", "--force", "crash")
	}
	t.Logf("%d of %d killed deploys had switched current", switched, crashKills)

	// After all that, deploys and rollbacks work as usual.
	gen++
	writeCrashTree(t, src, gen)
	mustRun(deploySrc...)
	final := currentRelease(t, appPath)
	want, err := ship.Scan(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ship.Verify(ctx, conn, layout, final, want); err != nil {
		t.Fatalf("deploy after the crashes: %v", err)
	}
	mustRun("rollback", "crash")
	back := currentRelease(t, appPath)
	m, err := ship.ReadManifest(ctx, conn, layout, back)
	if err != nil {
		t.Fatalf("rollback after the crashes went to %s: %v", back, err)
	}
	if err := ship.Verify(ctx, conn, layout, back, m); err != nil {
		t.Fatalf("rollback after the crashes went to %s, which is not complete: %v", back, err)
	}
}

// binaryApp prepares, for a test that runs (and kills) the real skiff binary, an app directory named name on
// the shared host h2, removed when the test ends.
func binaryApp(t *testing.T, name string) (env *testenv.Env, h *testenv.Host, bin, appPath string) {
	t.Helper()
	env = testenv.Shared(t)
	h = env.Hosts[1]
	bin = testenv.SkiffBinary(t)
	appPath = filepath.Join(h.Root, "srv", name)
	env.MkdirOwned(t, filepath.Dir(appPath))
	t.Cleanup(func() { os.RemoveAll(appPath) })
	return env, h, bin, appPath
}

// killableSkiff is a skiff command with inventory inv in a process group of its own, so that a test can
// SIGKILL it with everything it started.
func killableSkiff(bin, inv string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, append([]string{"-i", inv}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// writeCrashTree writes generation gen of the crash test's tree: every file exists in every generation, and
// the files of one residue class change with each generation.
func writeCrashTree(t *testing.T, root string, gen int) {
	t.Helper()
	pad := strings.Repeat("x", 160)
	for d := range crashDirs {
		dir := filepath.Join(root, fmt.Sprintf("d%02d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range crashFilesPerDir {
			n := d*crashFilesPerDir + f
			if gen > 0 && n%crashChangeEvery != gen%crashChangeEvery {
				continue
			}
			content := fmt.Sprintf("file %d generation %d %s\n", n, gen, pad)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", f)), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(root, "VERSION"), []byte(fmt.Sprintf("%d\n", gen)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// currentRelease is the id the app's current link names, read on the host's file system.
func currentRelease(t *testing.T, appPath string) string {
	t.Helper()
	target, err := os.Readlink(filepath.Join(appPath, "current"))
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Base(target)
}

// treeSum digests every name, type, mode, link target and file content under root.
func treeSum(t *testing.T, root string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(h, "%q %v\n", rel, info.Mode())
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "-> %q\n", link)
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			fmt.Fprintf(h, "= %x\n", sum)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// dialHost opens an SSH connection of the test's own to h.
func dialHost(t *testing.T, env *testenv.Env, h *testenv.Host) *remote.Conn {
	t.Helper()
	pool := remote.NewPool(remote.Options{})
	t.Cleanup(func() { pool.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pool.Get(ctx, &remote.Target{Name: h.Name, Address: h.IP, Port: h.Port, User: env.User,
		IdentityFiles: []string{env.KeyFile}, KnownHosts: env.KnownHosts})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
