package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffdeploy/skiff/release"
)

// TestE2E_ReleasesShowBuildKeys deploys an app with a build twice, with a new input the second time, and
// reads the build keys back from `skiff releases`, as text and as JSON.
func TestE2E_ReleasesShowBuildKeys(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, "e2e-builds", appOptions{supervisor: supervisorNone, extra: `
[[apps.e2e-builds.builds]]
name = "deps"
path = "vendor/deps"
inputs = ["requirements.txt"]
run = 'cp requirements.txt "$SKIFF_BUILD_DIR/installed.txt"'
`})
	keys := map[string]string{}
	for _, pin := range []string{"1.0", "2.0"} {
		tree := e2eAppTree(t, pin, func(dir string) { e2eWrite(t, filepath.Join(dir, "requirements.txt"), "pkg=="+pin+"\n") })
		res := a.deploy(0, tree)
		if len(res.Builds) != 1 || !res.Builds[0].Built {
			t.Fatalf("deploy %s: builds %+v, want deps built", pin, res.Builds)
		}
		keys[a.current()] = res.Builds[0].Key
		got, err := os.ReadFile(filepath.Join(a.path, "current", "vendor", "deps", "installed.txt"))
		if err != nil || string(got) != "pkg=="+pin+"\n" {
			t.Fatalf("the live build has %q, %v; want pin %s", got, err, pin)
		}
	}
	rep := a.skiffJSON(0, "releases", a.name)
	if len(rep.Releases) != 2 {
		t.Fatalf("releases = %+v, want two", rep.Releases)
	}
	for _, r := range rep.Releases {
		if len(r.Builds) != 1 || r.Builds[0].Name != "deps" || r.Builds[0].Key != keys[r.ID] {
			t.Errorf("release %s: builds %+v, want deps %s", r.ID, r.Builds, keys[r.ID])
		}
	}
	text := a.mustSkiff(0, "releases", a.name)
	for id, key := range keys {
		if !strings.Contains(text.stdout, id) || !strings.Contains(text.stdout, "builds: deps-"+key) {
			t.Errorf("`skiff releases` does not show deps-%s for %s:\n%s", key, id, text)
		}
	}
}

// TestE2E_CurrentIsARealDirectory replaces current by a real directory, once before a deploy and once while
// it runs (from a before_switch hook): both deploys fail with exit 1 and an error naming the cause, nothing
// reports success, and the directory is left as it was.
func TestE2E_CurrentIsARealDirectory(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, "e2e-realdir", appOptions{supervisor: supervisorNone})
	a.deploy(0, e2eAppTree(t, "one", nil))
	live := a.current()
	cur := filepath.Join(a.path, "current")

	if err := os.Remove(cur); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(cur, 0o755); err != nil {
		t.Fatal(err)
	}
	e2eWrite(t, filepath.Join(cur, "keep.txt"), "another tool's\n")
	res := a.deploy(1, e2eAppTree(t, "two", nil))
	if res.OK || !strings.Contains(res.Error, "is not a symlink") {
		t.Errorf("deploy over a real current: ok %v, error %q; want a failure naming the cause", res.OK, res.Error)
	}
	if got, err := os.ReadFile(filepath.Join(cur, "keep.txt")); err != nil || string(got) != "another tool's\n" {
		t.Errorf("the directory at current changed: %q, %v", got, err)
	}
	entries, _ := os.ReadDir(cur)
	if len(entries) != 1 {
		t.Errorf("current holds %d entries, want only keep.txt: nothing may be moved into it", len(entries))
	}

	// Put the link back; this time the directory appears while the deploy runs, just before the switch.
	if err := os.RemoveAll(cur); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("releases", live), cur); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(a.inv, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The inventory ends inside the app's table.
	if _, err := f.WriteString("\nhooks.before_switch = ['rm \"$SKIFF_PATH/current\" && mkdir \"$SKIFF_PATH/current\"']\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	b := a
	res = b.deploy(1, e2eAppTree(t, "two", nil))
	if res.OK || !strings.Contains(res.Error, "switch") || !strings.Contains(res.Error, "is not a symlink") {
		t.Errorf("deploy whose current became a directory: ok %v, error %q; want the switch to fail naming the cause", res.OK, res.Error)
	}
	if entries, _ := os.ReadDir(filepath.Join(b.path, "current")); len(entries) != 0 {
		t.Errorf("the switch moved something into the directory at current: %v", entries)
	}
	data, err := os.ReadFile(filepath.Join(b.path, ".skiff", "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	hist, skipped := release.ParseHistory(data)
	if len(skipped) > 0 {
		t.Fatalf("history has unreadable lines: %v", skipped)
	}
	for _, e := range hist {
		if e.Op == release.ActionDeploy && e.Result == release.ResultOK && e.ID != live {
			t.Errorf("history claims a successful deploy: %+v", e)
		}
	}
}
