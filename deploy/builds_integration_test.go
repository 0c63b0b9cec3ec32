package deploy_test

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/release"
)

// writeWheel writes a pure-Python wheel of package name at version into dir: a zip with the module, METADATA,
// WHEEL and a RECORD with the hashes pip checks.
func writeWheel(t testing.TB, dir, name, version string) {
	t.Helper()
	info := fmt.Sprintf("%s-%s.dist-info", name, version)
	files := []struct{ name, body string }{
		{name + "/__init__.py", fmt.Sprintf("VERSION = %q\n", version)},
		{info + "/METADATA", fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\n", name, version)},
		{info + "/WHEEL", "Wheel-Version: 1.0\nGenerator: skiff-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	var record strings.Builder
	for _, f := range files {
		sum := sha256.Sum256([]byte(f.body))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f.name, base64.RawURLEncoding.EncodeToString(sum[:]), len(f.body))
	}
	fmt.Fprintf(&record, "%s/RECORD,,\n", info)
	files = append(files, struct{ name, body string }{info + "/RECORD", record.String()})
	out, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%s-py3-none-any.whl", name, version)))
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(out)
	for _, f := range files {
		w, err := zw.Create(f.name)
		if err == nil {
			_, err = w.Write([]byte(f.body))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// venvApp is a flow app whose venv is a build made by pip from wheels the test wrote.
func venvApp(t *testing.T, name string) (*flowApp, func(pin, code string) string) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 missing (apt-get install python3-venv)")
	}
	f := newFlowApp(t, name)
	wheels := filepath.Join(filepath.Dir(f.app.Path), "wheels-"+name)
	if err := os.MkdirAll(wheels, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(wheels) })
	writeWheel(t, wheels, "tinypkg", "1.0")
	writeWheel(t, wheels, "tinypkg", "2.0")
	f.app.KeepReleases = 2
	f.app.Builds = []inventory.Build{{
		Name: "venv", Path: ".venv", Inputs: []string{"requirements.txt"},
		Run: `python3 -m venv "$SKIFF_BUILD_DIR" && "$SKIFF_BUILD_DIR/bin/pip" install -q --no-cache-dir --disable-pip-version-check --no-index --find-links ` +
			wheels + ` -r requirements.txt`,
	}}
	tree := func(pin, code string) string {
		dir := t.TempDir()
		for name, body := range map[string]string{"requirements.txt": "tinypkg==" + pin + "\n", "app.py": code + "\n"} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	return f, tree
}

// liveVersion imports tinypkg with the live release's venv.
func liveVersion(t *testing.T, f *flowApp) string {
	t.Helper()
	py := filepath.Join(f.app.Path, "current", ".venv", "bin", "python")
	out, err := exec.Command(py, "-c", "import tinypkg; print(tinypkg.VERSION)").CombinedOutput()
	if err != nil {
		t.Fatalf("import tinypkg with %s: %v\n%s", py, err, out)
	}
	return strings.TrimSpace(string(out))
}

// builtDirs lists <path>/builds (build directories and markers).
func builtDirs(t *testing.T, f *flowApp) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(f.app.Path, "builds"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func stepMillis(out *deploy.Outcome, step string) int64 {
	for _, s := range out.Steps {
		if s.Step == step {
			return s.DurationMS
		}
	}
	return -1
}

// TestDeploySource_VenvBuiltOncePerRequirements deploys an app whose venv is a build: the first deploy
// builds, a redeploy with the same requirements.txt links the same build without running pip, a new pin
// builds once, a rollback imports the old version again without a build, and after seven deploys only the
// builds of kept releases remain.
func TestDeploySource_VenvBuiltOncePerRequirements(t *testing.T) {
	t.Parallel()
	f, tree := venvApp(t, "venv")
	ctx := context.Background()
	deployTree := func(pin, code string) (*deploy.Outcome, *deploy.Options) {
		t.Helper()
		o := f.options(t, tree(pin, code))
		out := deploy.DeploySource(ctx, f.conn, f.app, f.host.Name, o)
		if out.Err != nil {
			t.Fatalf("deploy %s/%s: %v\n%s", pin, code, out.Err, strings.Join(f.logs, "\n"))
		}
		return out, o
	}
	built := func(out *deploy.Outcome) bool {
		if len(out.Builds) != 1 {
			t.Fatalf("builds of the deploy = %+v, want one", out.Builds)
		}
		return out.Builds[0].Built
	}

	first, _ := deployTree("1.0", "one")
	if !built(first) || liveVersion(t, f) != "1.0" {
		t.Fatalf("first deploy: built %v, live tinypkg %s; want a build and 1.0", first.Builds, liveVersion(t, f))
	}
	again, o2 := deployTree("1.0", "two")
	if built(again) || again.Builds[0].Key != first.Builds[0].Key {
		t.Fatalf("redeploy with the same requirements: %+v, want the build of key %s reused", again.Builds, first.Builds[0].Key)
	}
	if ms := stepMillis(again, "build[venv]"); ms < 0 || ms >= 1000 {
		t.Errorf("linking the existing build took %d ms, want under 1 s", ms)
	}
	if v := liveVersion(t, f); v != "1.0" {
		t.Fatalf("live tinypkg = %s after the redeploy, want 1.0", v)
	}
	bumped, _ := deployTree("2.0", "two")
	if !built(bumped) || bumped.Builds[0].Key == first.Builds[0].Key || liveVersion(t, f) != "2.0" {
		t.Fatalf("deploy with a new pin: %+v, live %s; want a new build and 2.0", bumped.Builds, liveVersion(t, f))
	}

	f.logs = nil
	back := deploy.RollbackSource(ctx, f.conn, f.app, f.host.Name, &deploy.Options{Operator: "tester", Run: "rollback",
		Log: func(host, line string) { f.logs = append(f.logs, line) }})
	if back.Err != nil || back.After != o2.ReleaseID {
		t.Fatalf("rollback = %+v, %v; want %s", back, back.Err, o2.ReleaseID)
	}
	if v := liveVersion(t, f); v != "1.0" {
		t.Fatalf("live tinypkg = %s after the rollback, want 1.0", v)
	}
	if len(back.Builds) != 0 || slices.ContainsFunc(f.logs, func(l string) bool { return strings.Contains(l, "build") }) {
		t.Errorf("the rollback built something: %+v\n%s", back.Builds, strings.Join(f.logs, "\n"))
	}

	deployTree("1.0", "four")
	for _, code := range []string{"five", "six", "seven"} {
		if out, _ := deployTree("2.0", code); code != "five" && built(out) {
			t.Errorf("deploy %s rebuilt a venv the host has", code)
		}
	}
	key2 := bumped.Builds[0].Key
	if got, want := builtDirs(t, f), []string{"venv-" + key2, "venv-" + key2 + ".complete"}; !slices.Equal(got, want) {
		t.Errorf("builds after seven deploys = %v, want only those of kept releases %v", got, want)
	}
	ids, err := release.ListReleases(ctx, f.conn, f.layout())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		bs, err := deploy.ReadReleaseBuilds(ctx, f.conn, f.layout(), id)
		if err != nil || len(bs) != 1 || bs[0].Key != key2 {
			t.Errorf("builds recorded for kept release %s = %+v, %v; want venv %s", id, bs, err, key2)
		}
	}
}

// TestDeploySource_BadBuildChangesNothing deploys a tree that lacks a build's input, then one that ships the
// build's path: both fail before anything changes on the host, naming the build and the path.
func TestDeploySource_BadBuildChangesNothing(t *testing.T) {
	t.Parallel()
	f := newFlowApp(t, "bad-build")
	ctx := context.Background()
	if out := deploy.DeploySource(ctx, f.conn, f.app, f.host.Name, f.options(t, flowTree(t, "one"))); out.Err != nil {
		t.Fatal(out.Err)
	}
	before := treeSum(t, f.app.Path)
	tests := []struct {
		name  string
		build inventory.Build
		want  string
	}{
		{"missing input", inventory.Build{Name: "deps", Path: "deps", Inputs: []string{"lock.json"}, Run: "true"}, `input "lock.json"`},
		{"shipped path", inventory.Build{Name: "deps", Path: "lib", Inputs: []string{"VERSION"}, Run: "true"}, `path "lib" is also in the source tree`},
		{"under a shipped file", inventory.Build{Name: "deps", Path: "VERSION/x", Inputs: []string{"VERSION"}, Run: "true"}, `lies under "VERSION"`},
	}
	for _, tc := range tests {
		f.app.Builds = []inventory.Build{tc.build}
		out := deploy.DeploySource(ctx, f.conn, f.app, f.host.Name, f.options(t, flowTree(t, "two")))
		if out.Err == nil || !strings.Contains(out.Err.Error(), tc.want) || !strings.Contains(out.Err.Error(), `build "deps"`) {
			t.Errorf("%s: deploy error = %v, want one naming the build and %s", tc.name, out.Err, tc.want)
		}
		if got := treeSum(t, f.app.Path); got != before {
			t.Errorf("%s: the failed deploy changed the host", tc.name)
		}
	}
}

// TestDeploySource_FailedBuildIsNeverLinked fails a build: the deploy fails before its switch naming the
// build, nothing is marked complete, and the next deploy of the same key builds again.
func TestDeploySource_FailedBuildIsNeverLinked(t *testing.T) {
	t.Parallel()
	f := newFlowApp(t, "failed-build")
	ctx := context.Background()
	first := f.options(t, flowTree(t, "one"))
	if out := deploy.DeploySource(ctx, f.conn, f.app, f.host.Name, first); out.Err != nil {
		t.Fatal(out.Err)
	}
	// The build fails while the release's lib/b.txt says so; lib/b.txt is not an input, so the key stays.
	f.app.Builds = []inventory.Build{{Name: "deps", Path: "deps", Inputs: []string{"VERSION"},
		Run: `echo partial > "$SKIFF_BUILD_DIR/x"; ! grep -q fail lib/b.txt`}}
	failing := flowTree(t, "two")
	if err := os.WriteFile(filepath.Join(failing, "lib", "b.txt"), []byte("fail\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := deploy.DeploySource(ctx, f.conn, f.app, f.host.Name, f.options(t, failing))
	if out.Err == nil || !strings.Contains(out.Err.Error(), "build[deps]") || out.After != first.ReleaseID {
		t.Fatalf("deploy with a failing build: %+v, %v; want a failure of build[deps] with %s still live", out, out.Err, first.ReleaseID)
	}
	if m, _ := filepath.Glob(filepath.Join(f.app.Path, "builds", "*.complete")); len(m) != 0 {
		t.Errorf("a failed build is marked complete: %v", m)
	}
	out = deploy.DeploySource(ctx, f.conn, f.app, f.host.Name, f.options(t, flowTree(t, "two")))
	if out.Err != nil || len(out.Builds) != 1 || !out.Builds[0].Built {
		t.Fatalf("deploy after the failed build: %+v, %v; want deps built again", out.Builds, out.Err)
	}
	if got, err := os.ReadFile(filepath.Join(f.app.Path, "current", "deps", "x")); err != nil || string(got) != "partial\n" {
		t.Errorf("current/deps/x = %q, %v", got, err)
	}
}
