package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/internal/testenv"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/ship"
)

// flowApp is a source app on the shared host h3 with a directory of its own, for driving DeploySource and
// RollbackSource without the CLI.
type flowApp struct {
	env  *testenv.Env
	host *testenv.Host
	app  *inventory.App
	conn deploy.HostConn
	last time.Time // when the last release id was made
	logs []string
}

func newFlowApp(t *testing.T, name string) *flowApp {
	t.Helper()
	env := testenv.Shared(t)
	h := env.Hosts[2]
	path := filepath.Join(h.Root, "srv", "flow-"+name)
	env.MkdirOwned(t, filepath.Dir(path))
	t.Cleanup(func() { os.RemoveAll(path) })
	return &flowApp{env: env, host: h, conn: dialHost(t, env, h), app: &inventory.App{
		Name: name, Kind: inventory.KindSource, Hosts: []string{h.Name}, Path: path, KeepReleases: 5,
		Timeout: inventory.Duration{Duration: time.Minute},
	}}
}

// options returns the Options of a run that ships src as a new release (ids differ from the last one's).
func (f *flowApp) options(t *testing.T, src string) *deploy.Options {
	t.Helper()
	m, err := ship.ScanApp(context.Background(), src, f.app, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if now := time.Now(); now.Unix() == f.last.Unix() {
		time.Sleep(now.Truncate(time.Second).Add(time.Second).Sub(now))
	}
	f.last = time.Now()
	return &deploy.Options{
		Operator: "tester", Machine: "ci-9", PID: 99, Origin: "https://ci.example/jobs/1", Run: fmt.Sprintf("run%d", f.last.UnixNano()),
		Log:       func(host, line string) { f.logs = append(f.logs, host+" | "+line) },
		Secret:    os.Getenv,
		SourceDir: src, Manifest: m, ReleaseID: release.NewReleaseID(f.last, ""), Revision: "rev-" + filepath.Base(src),
	}
}

func (f *flowApp) layout() release.Layout { return release.Layout{Path: f.app.Path} }

// flowTree writes a small tree whose VERSION is version into a fresh directory.
func flowTree(t *testing.T, version string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{"VERSION": version + "\n", "lib/a.txt": "a\n", "lib/b.txt": "b\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDeploySource_ReleaseMatchesManifestAndHistory(t *testing.T) {
	t.Parallel()
	f := newFlowApp(t, "manifest")
	ctx := context.Background()
	o1 := f.options(t, flowTree(t, "one"))
	first := deploy.DeploySource(ctx, f.conn, f.app, f.host.Name, o1)
	if first.Err != nil {
		t.Fatal(first.Err)
	}
	o2 := f.options(t, flowTree(t, "two"))
	second := deploy.DeploySource(ctx, f.conn, f.app, f.host.Name, o2)
	if second.Err != nil {
		t.Fatal(second.Err)
	}
	if second.Before != o1.ReleaseID || second.After != o2.ReleaseID || second.Files != 1 || second.Reused != 2 {
		t.Errorf("second outcome = %+v, want %s -> %s with 1 file sent and 2 reused", second, o1.ReleaseID, o2.ReleaseID)
	}
	for _, o := range []*deploy.Options{o1, o2} {
		stored, err := ship.ReadManifest(ctx, f.conn, f.layout(), o.ReleaseID)
		if err != nil {
			t.Fatal(err)
		}
		if err := ship.Verify(ctx, f.conn, f.layout(), o.ReleaseID, o.Manifest); err != nil {
			t.Errorf("release %s does not match the tree that was shipped: %v", o.ReleaseID, err)
		}
		if len(stored.Entries) != len(o.Manifest.Entries) {
			t.Errorf("stored manifest of %s has %d entries, want %d", o.ReleaseID, len(stored.Entries), len(o.Manifest.Entries))
		}
	}
	cur, err := release.ReadCurrent(ctx, f.conn, f.layout())
	if err != nil || cur != o2.ReleaseID {
		t.Fatalf("ReadCurrent = %q, %v; want %s", cur, err, o2.ReleaseID)
	}
	hist, err := release.ReadHistory(ctx, f.conn, f.layout())
	if err != nil || len(hist) != 2 {
		t.Fatalf("history = %+v, %v; want two entries", hist, err)
	}
	got := hist[1]
	if got.Op != "deploy" || got.Result != release.ResultOK || got.ID != o2.ReleaseID || got.Previous != o1.ReleaseID ||
		got.Operator != "tester" || got.Origin != o2.Origin || got.Run != o2.Run || got.Revision != o2.Revision || got.App != f.app.Name {
		t.Errorf("history entry = %+v, want who, what and from where of the second run", got)
	}
	if _, err := os.Stat(filepath.Join(f.app.Path, ".skiff", "lock")); err == nil {
		t.Errorf("the lock is still held after the run")
	}
}

// TestDeploySource_LiveReleaseWithoutManifest deploys over a release an older tool shipped, which has no
// manifest: the clone made meanwhile is dropped and every file is sent into an empty release; the live one is
// left as it was.
func TestDeploySource_LiveReleaseWithoutManifest(t *testing.T) {
	t.Parallel()
	f := newFlowApp(t, "nomanifest")
	ctx := context.Background()
	o1 := f.options(t, flowTree(t, "one"))
	if first := deploy.DeploySource(ctx, f.conn, f.app, f.host.Name, o1); first.Err != nil {
		t.Fatal(first.Err)
	}
	if err := os.Remove(f.layout().Manifest(o1.ReleaseID)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.layout().Release(o1.ReleaseID), "stray"), []byte("old tool\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o2 := f.options(t, flowTree(t, "two"))
	second := deploy.DeploySource(ctx, f.conn, f.app, f.host.Name, o2)
	if second.Err != nil {
		t.Fatal(second.Err)
	}
	if second.Files != 3 || second.Reused != 0 {
		t.Errorf("sent %d files and reused %d, want all 3 sent", second.Files, second.Reused)
	}
	if err := ship.Verify(ctx, f.conn, f.layout(), o2.ReleaseID, o2.Manifest); err != nil {
		t.Errorf("release %s: %v (the stray file of the clone must be gone)", o2.ReleaseID, err)
	}
	if _, err := os.Stat(filepath.Join(f.layout().Release(o1.ReleaseID), "stray")); err != nil {
		t.Errorf("the live release lost a file: %v", err)
	}
}

// TestDeploySource_CancelledDuringHook is Ctrl-C in the middle of a slow hook: the run ends promptly, the
// live release is untouched, the half-made release is removed and the lock is freed.
func TestDeploySource_CancelledDuringHook(t *testing.T) {
	t.Parallel()
	f := newFlowApp(t, "cancel")
	first := f.options(t, flowTree(t, "one"))
	if out := deploy.DeploySource(context.Background(), f.conn, f.app, f.host.Name, first); out.Err != nil {
		t.Fatal(out.Err)
	}
	f.app.Hooks.BeforeSwitch = []string{"sleep 30"}
	o := f.options(t, flowTree(t, "two"))
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	out := deploy.DeploySource(ctx, f.conn, f.app, f.host.Name, o)
	if !errors.Is(out.Err, context.DeadlineExceeded) || time.Since(start) > 15*time.Second {
		t.Fatalf("cancelled deploy: error %v after %s, want the context's error promptly", out.Err, time.Since(start))
	}
	bg := context.Background()
	if cur, err := release.ReadCurrent(bg, f.conn, f.layout()); err != nil || cur != first.ReleaseID {
		t.Errorf("current = %q, %v after a cancelled deploy, want %s", cur, err, first.ReleaseID)
	}
	if _, err := os.Stat(filepath.Join(f.app.Path, "releases", o.ReleaseID)); err == nil {
		t.Errorf("the cancelled release %s is still on the host", o.ReleaseID)
	}
	if held, err := release.LockStatus(bg, f.conn, f.layout(), time.Hour); err != nil || held != nil {
		t.Errorf("lock after a cancelled deploy: %v, %v; want it free", held, err)
	}
	hist, err := release.ReadHistory(bg, f.conn, f.layout())
	if err != nil {
		t.Fatal(err)
	}
	if last := hist[len(hist)-1]; last.ID != o.ReleaseID || last.Result != release.ResultFailed || !strings.Contains(last.Error, "deadline exceeded") {
		t.Errorf("last history entry = %+v, want the cancelled deploy recorded as failed", last)
	}
}

// TestRollbackSource_FailingTargetPutsCurrentBack rolls back to a release that no longer starts: the release
// that was live is put back and serves again, and history records the failed rollback.
func TestRollbackSource_FailingTargetPutsCurrentBack(t *testing.T) {
	t.Parallel()
	f := newFlowApp(t, "rbfail")
	port := freePort(t)
	svDir := filepath.Join(f.host.Root, "sv-flow-rbfail")
	f.env.MkdirOwned(t, svDir)
	t.Cleanup(func() { os.RemoveAll(svDir) })
	sv, err := testenv.StartSupervisord(testenv.SupervisordOptions{Dir: svDir, User: f.env.User, Programs: fmt.Sprintf(`[program:web]
command=/bin/sh %s/current/run.sh %d
autostart=false
startsecs=1
startretries=0
stopasgroup=true
killasgroup=true
`, f.app.Path, port)})
	if errors.Is(err, testenv.ErrMissingTool) {
		testenv.SkipOrFail(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sv.Stop() })
	f.app.Supervisor = inventory.Supervisor{URL: sv.URL, Programs: []string{"web"}}
	f.app.Check = inventory.Check{Ports: []int{port}, Timeout: inventory.Duration{Duration: 5 * time.Second}}

	// run.sh serves its release directory with busybox httpd, unless the host has a file fail-VERSION.
	tree := func(version string) string {
		dir := flowTree(t, version)
		script := fmt.Sprintf("[ -e %q ] && exit 1\nexec busybox httpd -f -p 127.0.0.1:$1 -h \"$(dirname \"$0\")\"\n",
			filepath.Join(f.app.Path, "fail-"+version))
		if err := os.WriteFile(filepath.Join(dir, "run.sh"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	if _, err := exec.LookPath("busybox"); err != nil {
		testenv.SkipOrFail(t, "busybox is not installed (apt-get install busybox-static)")
	}
	ctx := context.Background()
	o1 := f.options(t, tree("one"))
	if out := deploy.DeploySource(ctx, f.conn, f.app, f.host.Name, o1); out.Err != nil {
		t.Fatal(out.Err)
	}
	o2 := f.options(t, tree("two"))
	if out := deploy.DeploySource(ctx, f.conn, f.app, f.host.Name, o2); out.Err != nil {
		t.Fatal(out.Err)
	}
	if err := os.WriteFile(filepath.Join(f.app.Path, "fail-one"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ro := f.options(t, tree("unused"))
	ro.To = o1.ReleaseID
	out := deploy.RollbackSource(ctx, f.conn, f.app, f.host.Name, ro)
	if out.Err == nil || !strings.Contains(out.Err.Error(), o2.ReleaseID+" put back") {
		t.Fatalf("rollback to a failing release: error %v, want it to say %s was put back\n%s", out.Err, o2.ReleaseID, strings.Join(f.logs, "\n"))
	}
	if cur, err := release.ReadCurrent(ctx, f.conn, f.layout()); err != nil || cur != o2.ReleaseID {
		t.Errorf("current = %q, %v; want %s put back", cur, err, o2.ReleaseID)
	}
	if err := deploy.CheckApp(ctx, f.conn, f.app.Check); err != nil {
		t.Errorf("the release put back does not answer: %v", err)
	}
	hist, err := release.ReadHistory(ctx, f.conn, f.layout())
	if err != nil {
		t.Fatal(err)
	}
	if last := hist[len(hist)-1]; last.Op != "rollback" || last.Result != release.ResultFailed || last.ID != o1.ReleaseID || last.Previous != o2.ReleaseID {
		t.Errorf("last history entry = %+v, want the failed rollback to %s", last, o1.ReleaseID)
	}
}

// freePort asks the kernel for a loopback port that is free right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
