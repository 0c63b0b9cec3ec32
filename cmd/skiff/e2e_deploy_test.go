package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skiffdeploy/skiff/release"
)

func TestDeploy_FirstAndIncremental(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, "firstinc", appOptions{})
	v1 := e2eAppTree(t, "v1", nil)
	v2 := e2eAppTree(t, "v2-changed", nil)

	first := a.deploy(0, v1)
	if first.Before != "" || first.After == "" || first.RolledBack {
		t.Fatalf("first deploy: before %q after %q rolled back %v", first.Before, first.After, first.RolledBack)
	}
	if first.Files != 2 || first.Reused != 0 {
		t.Errorf("first deploy sent %d file(s), reused %d; want every file (2) sent", first.Files, first.Reused)
	}
	if len(first.Restarted) != 1 || first.Restarted[0].NewPID == 0 {
		t.Errorf("first deploy restarted %+v, want the one program with a pid", first.Restarted)
	}
	if got := a.current(); got != first.After {
		t.Fatalf("current = %q, want %q", got, first.After)
	}
	a.wantServing("v1")

	second := a.deploy(0, v2)
	if second.Before != first.After || second.After == first.After {
		t.Fatalf("second deploy: before %q after %q, want %q -> a new release", second.Before, second.After, first.After)
	}
	if want := int64(len("v2-changed\n")); second.Files != 1 || second.Bytes != want || second.Reused != 1 {
		t.Errorf("incremental deploy sent %d file(s) / %d bytes, reused %d; want only VERSION: 1 file, %d bytes, 1 reused",
			second.Files, second.Bytes, second.Reused, want)
	}
	if len(second.Restarted) != 1 || second.Restarted[0].OldPID != first.Restarted[0].NewPID {
		t.Errorf("second deploy restarted %+v, want the program that ran as pid %d", second.Restarted, first.Restarted[0].NewPID)
	}
	a.wantServing("v2-changed")

	// The unchanged file is a hard link to the previous release's copy, and the previous release is untouched.
	old, err := os.Stat(filepath.Join(a.path, "releases", first.After, "server.py"))
	if err != nil {
		t.Fatal(err)
	}
	cur, err := os.Stat(filepath.Join(a.path, "releases", second.After, "server.py"))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(old, cur) {
		t.Errorf("server.py of %s is not a hard link to %s's", second.After, first.After)
	}
	if data, _ := os.ReadFile(filepath.Join(a.path, "releases", first.After, "VERSION")); string(data) != "v1\n" {
		t.Errorf("VERSION of the previous release = %q, want it unchanged", data)
	}

	hist, rels := a.history()
	if len(hist) != 2 || hist[1].Op != "deploy" || hist[1].Result != release.ResultOK || hist[1].ID != second.After || hist[1].Previous != first.After {
		t.Errorf("history = %+v, want two ok deploys ending with %s <- %s", hist, second.After, first.After)
	}
	if len(rels) != 2 || !rels[1].Current || rels[1].ID != second.After {
		t.Errorf("releases = %+v, want two with %s current", rels, second.After)
	}
}

func TestRollback_PreviousAndTo(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, "rollback", appOptions{})
	r1 := a.deploy(0, e2eAppTree(t, "r1", nil)).After
	r2 := a.deploy(0, e2eAppTree(t, "r2", nil)).After
	r3 := a.deploy(0, e2eAppTree(t, "r3", nil)).After
	a.wantServing("r3")

	back := a.skiffJSON(0, "rollback", a.name)
	if back.Before != r3 || back.After != r2 {
		t.Fatalf("rollback went %q -> %q, want %s -> %s", back.Before, back.After, r3, r2)
	}
	if got := a.current(); got != r2 {
		t.Fatalf("current = %q after rollback, want %s", got, r2)
	}
	a.wantServing("r2")

	to := a.skiffJSON(0, "rollback", a.name, "--to", r1)
	if to.Before != r2 || to.After != r1 {
		t.Fatalf("rollback --to %s went %q -> %q", r1, to.Before, to.After)
	}
	a.wantServing("r1")

	// A release directory without a manifest is what a killed deploy leaves: never a rollback target.
	if err := os.MkdirAll(filepath.Join(a.path, "releases", "20010101T000000Z"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, to, want string
	}{
		{name: "current release", to: r1, want: "release " + r1 + " is already current"},
		{name: "not a release id", to: "../../etc", want: `--to "../../etc" is not a release id`},
		{name: "release not on the host", to: "20000101T000000Z", want: "release 20000101T000000Z is not a complete release on the host"},
		{name: "release left incomplete", to: "20010101T000000Z", want: "release 20010101T000000Z is not a complete release on the host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := a.skiff("rollback", a.name, "--to", tc.to)
			if r.code != exitFailed || !strings.Contains(r.all(), tc.want) {
				t.Errorf("rollback --to %s: want exit 1 with %q, got %s", tc.to, tc.want, r)
			}
		})
	}
	if got := a.current(); got != r1 {
		t.Fatalf("current = %q after refused rollbacks, want %s", got, r1)
	}

	hist, _ := a.history()
	var ops []string
	for _, e := range hist {
		ops = append(ops, e.Op+":"+e.Result+":"+e.ID)
	}
	want := []string{"deploy:ok:" + r1, "deploy:ok:" + r2, "deploy:ok:" + r3, "rollback:ok:" + r2, "rollback:ok:" + r1}
	if !slices.Equal(ops, want) {
		t.Errorf("history = %q, want %q", ops, want)
	}
}

// TestRollback_FailedReleaseNeedsForce deploys a release that fails only while a flag file exists on the host,
// so that, once the flag is gone, going back to it with --force works.
func TestRollback_FailedReleaseNeedsForce(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, "force", appOptions{})
	flag := filepath.Join(a.path, "fail-now")
	good := a.deploy(0, e2eAppTree(t, "good", nil)).After
	moody := e2eAppTree(t, "moody", func(dir string) {
		server, _ := os.ReadFile(filepath.Join(dir, "server.py"))
		e2eWrite(t, filepath.Join(dir, "server.py"),
			"import os, sys\nif os.path.exists("+pyString(flag)+"):\n    sys.exit('failing on purpose')\n"+string(server))
	})
	e2eWrite(t, flag, "")
	failed := a.deploy(exitFailed, moody)
	if !failed.RolledBack || failed.After != good {
		t.Fatalf("failing deploy: rolled back %v, after %q; want rolled back to %s", failed.RolledBack, failed.After, good)
	}
	bad := failedRelease(t, a)
	a.wantServing("good")
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}

	r := a.skiff("rollback", a.name, "--to", bad)
	if want := "release " + bad + " is marked failed in history; use --force"; r.code != exitFailed || !strings.Contains(r.all(), want) {
		t.Fatalf("rollback --to a failed release: want exit 1 with %q, got %s", want, r)
	}
	if got := a.current(); got != good {
		t.Fatalf("current = %q after a refused rollback, want %s", got, good)
	}

	forced := a.skiffJSON(0, "rollback", a.name, "--to", bad, "--force")
	if forced.After != bad {
		t.Fatalf("rollback --force went to %q, want %s", forced.After, bad)
	}
	a.wantServing("moody")
}

// failedRelease returns the id of the one release that history marks as failed.
func failedRelease(t *testing.T, a *e2eApp) string {
	t.Helper()
	_, rels := a.history()
	for _, r := range rels {
		if r.Failed {
			return r.ID
		}
	}
	t.Fatalf("no release is marked failed: %+v", rels)
	return ""
}

// pyString quotes s for Python source.
func pyString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
