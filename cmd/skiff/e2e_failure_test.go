package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skiffdeploy/skiff/release"
)

func TestDeploy_BrokenReleaseRollsBack(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		app    string
		server string // replaces server.py in the broken release
		want   string // in the host's error
	}{
		{
			name:   "program exits at once",
			app:    "brokenexit",
			server: "import sys\nsys.exit('broken on purpose')\n",
			want:   "did not start",
		},
		{
			name:   "program never listens",
			app:    "brokenquiet",
			server: "import time\ntime.sleep(600)\n",
			want:   "does not accept connections on the target",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newE2EApp(t, tc.app, appOptions{checkTimeout: "3s"})
			good := a.deploy(0, e2eAppTree(t, "good", nil))
			broken := e2eAppTree(t, "broken", func(dir string) { e2eWrite(t, filepath.Join(dir, "server.py"), tc.server) })

			res := a.deploy(exitFailed, broken)
			if !res.RolledBack || res.Before != good.After || res.After != good.After {
				t.Fatalf("broken deploy: rolled back %v, %q -> %q; want rolled back to %s", res.RolledBack, res.Before, res.After, good.After)
			}
			if !strings.Contains(res.Error, tc.want) || !strings.Contains(res.Error, "rolled back to "+good.After) {
				t.Errorf("error = %q, want it to say %q and that it rolled back to %s", res.Error, tc.want, good.After)
			}
			if got := a.current(); got != good.After {
				t.Fatalf("current = %q, want %s", got, good.After)
			}
			a.wantServing("good")

			hist, rels := a.history()
			if len(hist) != 3 {
				t.Fatalf("history has %d entries, want deploy ok, deploy failed, rollback ok: %+v", len(hist), hist)
			}
			bad := hist[1]
			if bad.Op != "deploy" || bad.Result != release.ResultFailed || bad.Previous != good.After || !strings.Contains(bad.Error, tc.want) {
				t.Errorf("history[1] = %+v, want the failed deploy with its error", bad)
			}
			if back := hist[2]; back.Op != "rollback" || back.Result != release.ResultOK || back.ID != good.After || back.Previous != bad.ID {
				t.Errorf("history[2] = %+v, want the rollback %s <- %s", back, good.After, bad.ID)
			}
			i := slices.IndexFunc(rels, func(r releaseInfo) bool { return r.ID == bad.ID })
			if i < 0 || !rels[i].Failed || rels[i].Current {
				t.Errorf("releases = %+v, want %s listed as failed and not current", rels, bad.ID)
			}

			// A plain rollback now does not go to the failed release: there is no good one before the current.
			r := a.skiff("rollback", a.name)
			if r.code != exitFailed || !strings.Contains(r.all(), "no earlier good release") {
				t.Errorf("rollback after a failed deploy: want exit 1, no earlier good release; got %s", r)
			}
		})
	}
}

func TestDeploy_BeforeSwitchHookFails(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, "hookfail", appOptions{extra: `hooks.before_switch = ["test -f VERSION",
  "if [ -f fail-hook ]; then echo hook-says-hello; echo hook-complains >&2; exit 7; fi"]`})
	good := a.deploy(0, e2eAppTree(t, "good", nil)).After
	pid := a.programPID()
	releases := a.releases()
	live := e2eSnapshot(t, filepath.Join(a.path, "releases", good))

	failing := e2eAppTree(t, "next", func(dir string) { e2eWrite(t, filepath.Join(dir, "fail-hook"), "") })
	r := a.mustSkiff(exitFailed, "deploy", a.name, "--source", failing)
	for _, want := range []string{"h1 | hook-says-hello", "h1 | hook-complains", "before_switch[1]", "exit status 7"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r)
		}
	}
	if got := a.current(); got != good {
		t.Errorf("current = %q after a failed hook, want %s", got, good)
	}
	if got := a.releases(); !slices.Equal(got, releases) {
		t.Errorf("releases = %v after a failed hook, want %v (the new release removed)", got, releases)
	}
	if diff := e2eDiff(live, e2eSnapshot(t, filepath.Join(a.path, "releases", good))); len(diff) > 0 {
		t.Errorf("the live release changed: %v", diff)
	}
	if got := a.programPID(); got != pid {
		t.Errorf("program pid %d -> %d: a failed hook must not restart anything", pid, got)
	}
	a.wantServing("good")
	hist, _ := a.history()
	if last := hist[len(hist)-1]; last.Result != release.ResultFailed || !strings.Contains(last.Error, "exit status 7") || last.Previous != good {
		t.Errorf("last history entry = %+v, want the failed deploy with the hook's exit status", last)
	}
	if held := a.skiffJSON(0, "lock", "status", a.name); held.Lock != "" {
		t.Errorf("lock still held after a failed hook: %s", held.Lock)
	}
}

func TestDeploy_SharedEntriesPersist(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, "shared", appOptions{extra: `shared = ["logs", ".env", "data/uploads"]
hooks.before_switch = ["test -L logs && test -L .env && printf '%s <- %s' \"$SKIFF_RELEASE\" \"$SKIFF_PREVIOUS\" > hook-env.txt"]
hooks.after_switch = ["printf '%s <- %s' \"$SKIFF_RELEASE\" \"$SKIFF_PREVIOUS\" > logs/after-switch.txt"]`})
	shared := filepath.Join(a.path, "shared")
	tree := func(version, env string) string {
		return e2eAppTree(t, version, func(dir string) {
			e2eWrite(t, filepath.Join(dir, ".env"), env)
			e2eWrite(t, filepath.Join(dir, "logs", "shipped.log"), "must not be shipped\n")
		})
	}

	r1 := a.deploy(0, tree("s1", "TOKEN=from-v1\n"))
	if r1.Files != 2 {
		t.Errorf("first deploy sent %d files, want 2 (shared entries are linked, not shipped)", r1.Files)
	}
	wantFile(t, filepath.Join(shared, ".env"), "TOKEN=from-v1\n")
	if fi, err := os.Stat(filepath.Join(shared, "logs")); err != nil || !fi.IsDir() {
		t.Fatalf("shared/logs: %v, want a directory", err)
	}
	wantFile(t, filepath.Join(a.path, "releases", r1.After, "hook-env.txt"), r1.After+" <- ")
	wantFile(t, filepath.Join(shared, "logs", "after-switch.txt"), r1.After+" <- ")

	// The app (here: a command on the host) writes through the links of the live release.
	if r := a.skiff("exec", "--hosts", "h1", "--", fmt.Sprintf("cd %s && echo line1 >> logs/app.log && echo TOKEN=edited-on-host > .env && echo up > data/uploads/u1",
		shellQuote(filepath.Join(a.path, "current")))); r.code != 0 {
		t.Fatalf("write through the links: %s", r)
	}

	r2 := a.deploy(0, tree("s2", "TOKEN=from-v2\n"))
	wantFile(t, filepath.Join(a.path, "releases", r2.After, "hook-env.txt"), r2.After+" <- "+r1.After)
	wantFile(t, filepath.Join(shared, "logs", "after-switch.txt"), r2.After+" <- "+r1.After)
	for _, rel := range []string{r1.After, r2.After} {
		dir := filepath.Join(a.path, "releases", rel)
		for _, e := range []string{"logs", ".env", "data/uploads"} {
			if target, err := os.Readlink(filepath.Join(dir, e)); err != nil || target != filepath.Join(shared, e) {
				t.Errorf("release %s: %s -> %q, %v; want a link to %s", rel, e, target, err, filepath.Join(shared, e))
			}
		}
	}
	wantFile(t, filepath.Join(a.path, "current", ".env"), "TOKEN=edited-on-host\n")
	wantFile(t, filepath.Join(a.path, "current", "logs", "app.log"), "line1\n")
	wantFile(t, filepath.Join(a.path, "current", "data", "uploads", "u1"), "up\n")
	if _, err := os.Stat(filepath.Join(shared, "logs", "shipped.log")); err == nil {
		t.Errorf("logs/shipped.log of the source tree reached shared/logs")
	}
	a.wantServing("s2")

	a.skiffJSON(0, "rollback", a.name)
	wantFile(t, filepath.Join(shared, "logs", "after-switch.txt"), r1.After+" <- "+r2.After)
	wantFile(t, filepath.Join(a.path, "current", ".env"), "TOKEN=edited-on-host\n")
	wantFile(t, filepath.Join(a.path, "current", "logs", "app.log"), "line1\n")
	a.wantServing("s1")
}

func TestDeploy_DryRunChangesNothing(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, "dryrun", appOptions{extra: `shared = ["logs"]
hooks.before_switch = ["touch hook-ran"]`})

	// On a host that has never seen the app, a dry run creates nothing at all.
	r := a.mustSkiff(0, "--dry-run", "deploy", a.name, "--source", e2eAppTree(t, "d0", nil))
	if _, err := os.Lstat(a.path); err == nil {
		t.Fatalf("a dry run created %s:\n%s", a.path, r)
	}
	for _, want := range []string{"would upload VERSION", "would upload server.py", "would run: cd ", "touch hook-ran", "would restart"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("first dry run output lacks %q:\n%s", want, r)
		}
	}

	first := a.deploy(0, e2eAppTree(t, "d1", nil)).After
	second := a.deploy(0, e2eAppTree(t, "d2", nil)).After
	pid := a.programPID()
	before := e2eSnapshot(t, a.path)

	r = a.mustSkiff(0, "--dry-run", "deploy", a.name, "--source", e2eAppTree(t, "d3", nil))
	for _, want := range []string{"would upload VERSION", "would base " + filepath.Join(a.path, "releases", second), "would run: cd ", "would restart"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, r)
		}
	}
	if strings.Contains(r.stdout, "would upload server.py") {
		t.Errorf("dry run would upload the unchanged server.py:\n%s", r)
	}
	r2 := a.mustSkiff(0, "--dry-run", "rollback", a.name)
	if !strings.Contains(r2.stdout, "releases/"+first) || !strings.Contains(r2.stdout, "would restart") {
		t.Errorf("dry run of a rollback does not show the switch to %s and the restart:\n%s", first, r2)
	}
	if diff := e2eDiff(before, e2eSnapshot(t, a.path)); len(diff) > 0 {
		t.Errorf("dry runs changed the target: %v\n%s\n%s", diff, r, r2)
	}
	if got := a.programPID(); got != pid {
		t.Errorf("program pid %d -> %d after dry runs", pid, got)
	}
	a.wantServing("d2")
}

// programPID is the pid of the app's program according to `skiff status`.
func (a *e2eApp) programPID() int {
	a.t.Helper()
	st := a.skiffJSON(0, "status", a.name).Status
	if st == nil || len(st.Processes) != 1 || st.Processes[0].State != "RUNNING" {
		a.t.Fatalf("status: %+v, want one RUNNING process", st)
	}
	return st.Processes[0].PID
}

// wantFile fails the test unless the file at path holds exactly want.
func wantFile(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Errorf("%s = %q, %v; want %q", path, got, err, want)
	}
}

// shellQuote quotes s for a POSIX shell, for commands the tests themselves send.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TestDeploy_ScanErrorLeavesHostAsItWas deploys a tree the scan refuses (a symlink out of it) while the host
// is already locked and cloning: the deploy fails naming the entry, and the host keeps its release, its
// releases, its history and no lock.
func TestDeploy_ScanErrorLeavesHostAsItWas(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, "scanfail", appOptions{})
	good := a.deploy(0, e2eAppTree(t, "good", nil)).After
	releases := a.releases()
	hist, _ := a.history()

	bad := e2eAppTree(t, "bad", func(dir string) {
		if err := os.Symlink("../../../etc/passwd", filepath.Join(dir, "leak")); err != nil {
			t.Fatal(err)
		}
	})
	if r := a.skiff("deploy", a.name, "--source", bad); r.code == 0 || !strings.Contains(r.all(), `"leak"`) {
		t.Fatalf("deploy of a tree with a symlink out of it: %s; want a failure naming leak", r)
	}
	if got := a.current(); got != good {
		t.Errorf("current = %q, want %s", got, good)
	}
	if got := a.releases(); !slices.Equal(got, releases) {
		t.Errorf("releases = %v, want %v", got, releases)
	}
	if after, _ := a.history(); len(after) != len(hist) {
		t.Errorf("history has %d entries after a local scan error, want the %d it had", len(after), len(hist))
	}
	a.deploy(0, e2eAppTree(t, "next", nil)) // the lock was released
}
