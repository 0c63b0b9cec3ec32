package deploy_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/ship"
)

// TestDeploySource_HooksNeverReachOtherReleases deploys five times with keep_releases = 2 and hooks that
// append to a new file, append to a shipped file and chmod a shipped file: every deploy succeeds, the new
// release holds only its manifest, the shared links and what its own hooks made, and after each deploy the
// release live before it is byte for byte and mode for mode what it was.
func TestDeploySource_HooksNeverReachOtherReleases(t *testing.T) {
	t.Parallel()
	f := newFlowApp(t, "hooks-integrity")
	f.app.KeepReleases = 2
	f.app.Shared = []string{"logs"}
	f.app.Hooks.BeforeSwitch = []string{"echo built >> build.log", "echo appended >> lib/a.txt", "chmod 600 lib/b.txt"}
	f.app.Hooks.AfterSwitch = []string{"echo after >> after.log"}
	ctx := context.Background()
	sums := map[string]string{}
	prev := ""
	for i, v := range []string{"one", "two", "three", "four", "five"} {
		o := f.options(t, flowTree(t, v))
		out := deploy.DeploySource(ctx, f.conn, f.app, f.host.Name, o)
		if out.Err != nil {
			t.Fatalf("deploy %d: %v\n%s", i+1, out.Err, strings.Join(f.logs, "\n"))
		}
		rel := filepath.Join(f.app.Path, "releases", o.ReleaseID)
		for name, want := range map[string]string{"build.log": "built\n", "lib/a.txt": "a\nappended\n", "after.log": "after\n"} {
			if got, err := os.ReadFile(filepath.Join(rel, name)); err != nil || string(got) != want {
				t.Errorf("deploy %d: %s = %q, %v; want %q: the release inherited what the hooks of another wrote", i+1, name, got, err, want)
			}
		}
		if fi, err := os.Stat(filepath.Join(rel, "lib/b.txt")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("deploy %d: lib/b.txt = %v, %v; want mode 0600 from its own hook", i+1, fi, err)
		}
		if prev != "" {
			if got := treeSum(t, filepath.Join(f.app.Path, "releases", prev)); got != sums[prev] {
				t.Fatalf("deploy %d changed release %s, live before it", i+1, prev)
			}
		}
		sums[o.ReleaseID] = treeSum(t, rel)
		prev = o.ReleaseID
	}
}

// TestDeploySource_SharedEntryBecomesShippedDirectory deploys with logs shared, then with logs shipped as a
// directory of the tree: its files go into the release, never through the old link into shared/.
func TestDeploySource_SharedEntryBecomesShippedDirectory(t *testing.T) {
	t.Parallel()
	f := newFlowApp(t, "shared-to-dir")
	f.app.Shared = []string{"logs"}
	ctx := context.Background()
	if out := deploy.DeploySource(ctx, f.conn, f.app, f.host.Name, f.options(t, flowTree(t, "one"))); out.Err != nil {
		t.Fatal(out.Err)
	}
	f.app.Shared = nil
	src := flowTree(t, "two")
	if err := os.MkdirAll(filepath.Join(src, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "logs", "shipped.txt"), []byte("shipped\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := f.options(t, src)
	if out := deploy.DeploySource(ctx, f.conn, f.app, f.host.Name, o); out.Err != nil {
		t.Fatal(out.Err)
	}
	if _, err := os.Lstat(filepath.Join(f.app.Path, "shared", "logs", "shipped.txt")); err == nil {
		t.Error("a shipped file went into shared/ through the link of a former shared entry")
	}
	fi, err := os.Lstat(filepath.Join(f.app.Path, "releases", o.ReleaseID, "logs"))
	if err != nil || !fi.IsDir() {
		t.Fatalf("logs in the new release = %v, %v; want a real directory", fi, err)
	}
	if err := ship.Verify(ctx, f.conn, f.layout(), o.ReleaseID, o.Manifest); err != nil {
		t.Error(err)
	}
}

// TestDeploySource_MissingBaseFileSendsEverything removes a file of the live release by hand: the next release
// cannot be made from it, so every file is sent and the release is complete.
func TestDeploySource_MissingBaseFileSendsEverything(t *testing.T) {
	t.Parallel()
	f := newFlowApp(t, "missing-base")
	ctx := context.Background()
	o1 := f.options(t, flowTree(t, "one"))
	if out := deploy.DeploySource(ctx, f.conn, f.app, f.host.Name, o1); out.Err != nil {
		t.Fatal(out.Err)
	}
	if err := os.Remove(filepath.Join(f.app.Path, "releases", o1.ReleaseID, "lib", "a.txt")); err != nil {
		t.Fatal(err)
	}
	o2 := f.options(t, flowTree(t, "two"))
	out := deploy.DeploySource(ctx, f.conn, f.app, f.host.Name, o2)
	if out.Err != nil {
		t.Fatal(out.Err)
	}
	if out.Files != 3 {
		t.Errorf("files sent = %d, want all 3", out.Files)
	}
	if err := ship.Verify(ctx, f.conn, f.layout(), o2.ReleaseID, o2.Manifest); err != nil {
		t.Error(err)
	}
}

// TestDeploySource_HooksDroppedNoLinkToTheirWork deploys with a hook that appends to a shipped file, then
// without hooks: the release made by hard links must not link the file the hook changed.
func TestDeploySource_HooksDroppedNoLinkToTheirWork(t *testing.T) {
	t.Parallel()
	f := newFlowApp(t, "hooks-dropped")
	f.app.Hooks.BeforeSwitch = []string{"echo appended >> lib/a.txt && echo made > made.txt"}
	ctx := context.Background()
	first := f.options(t, flowTree(t, "one"))
	if out := deploy.DeploySource(ctx, f.conn, f.app, f.host.Name, first); out.Err != nil {
		t.Fatal(out.Err)
	}
	f.app.Hooks.BeforeSwitch = nil
	for _, v := range []string{"two", "three"} {
		o := f.options(t, flowTree(t, v))
		if out := deploy.DeploySource(ctx, f.conn, f.app, f.host.Name, o); out.Err != nil {
			t.Fatal(out.Err)
		}
		if err := ship.Verify(ctx, f.conn, f.layout(), o.ReleaseID, o.Manifest); err != nil {
			t.Errorf("release %s: %v", v, err)
		}
	}
	rel := filepath.Join(f.app.Path, "releases", first.ReleaseID)
	if got, err := os.ReadFile(filepath.Join(rel, "lib", "a.txt")); err != nil || string(got) != "a\nappended\n" {
		t.Errorf("the first release changed: lib/a.txt = %q, %v", got, err)
	}
}

// TestDeploySource_BaseLinksAndModesMadeAgain changes, on the target, a directory's mode and a symlink of the
// live release, then deploys a new version: the new release, cloned from the live one, has the manifest's
// mode and link again, made over SFTP without a remote shell (two commands in all: the begin and the end).
func TestDeploySource_BaseLinksAndModesMadeAgain(t *testing.T) {
	t.Parallel()
	f := newFlowApp(t, "relink")
	ctx := context.Background()
	tree := func(v string) string {
		src := flowTree(t, v)
		if err := os.Symlink("lib/a.txt", filepath.Join(src, "link")); err != nil {
			t.Fatal(err)
		}
		return src
	}
	o1 := f.options(t, tree("one"))
	first := deploy.DeploySource(ctx, f.conn, f.app, f.host.Name, o1)
	if first.Err != nil {
		t.Fatal(first.Err)
	}
	live := filepath.Join(f.app.Path, "releases", o1.ReleaseID)
	if err := os.Chmod(filepath.Join(live, "lib"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(live, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("lib/b.txt", filepath.Join(live, "link")); err != nil {
		t.Fatal(err)
	}
	o2 := f.options(t, tree("two"))
	out := deploy.DeploySource(ctx, f.conn, f.app, f.host.Name, o2)
	if out.Err != nil {
		t.Fatal(out.Err)
	}
	rel := filepath.Join(f.app.Path, "releases", o2.ReleaseID)
	if fi, err := os.Stat(filepath.Join(rel, "lib")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("lib in the new release = %v, %v; want mode 0755 from the manifest", fi, err)
	}
	if got, err := os.Readlink(filepath.Join(rel, "link")); err != nil || got != "lib/a.txt" {
		t.Errorf("link in the new release = %q, %v; want lib/a.txt from the manifest", got, err)
	}
	if out.Remote == nil || first.Remote == nil || out.Remote.Commands-first.Remote.Commands != 0 {
		t.Errorf("remote = %+v after the first deploy's %+v, want no command more: lock, clone, switch, history and unlock go over SFTP", out.Remote, first.Remote)
	}
}
