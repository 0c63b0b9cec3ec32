package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/release"
)

func TestLock_HeldLockRefusesAndIsReleased(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, "locked", appOptions{})
	good := a.deploy(0, e2eAppTree(t, "l1", nil)).After

	// Another run (on another machine) holds the lock.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := release.AcquireLock(ctx, a.remoteConn(), release.Layout{Path: a.path}, release.LockOwner{
		Operator: "alice", Machine: "ci-runner-7", PID: 4242, Origin: "https://ci.example/jobs/99", Op: "deploy", App: a.name,
	}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	holder := "held by alice@ci-runner-7 (pid 4242, deploy " + a.name + ", origin https://ci.example/jobs/99)"

	for _, tc := range []struct {
		name string
		args []string
	}{
		{name: "deploy", args: []string{"deploy", a.name, "--source", e2eAppTree(t, "l2", nil)}},
		{name: "rollback", args: []string{"rollback", a.name}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := a.skiff(tc.args...)
			if r.code != exitLocked || !strings.Contains(r.stdout, holder) {
				t.Errorf("%s with the lock held: want exit 3 naming the holder (%q), got %s", tc.name, holder, r)
			}
		})
	}
	if got := a.current(); got != good {
		t.Fatalf("current = %q while locked, want %s", got, good)
	}
	if got := a.releases(); len(got) != 1 {
		t.Fatalf("releases = %v while locked, want only %s", got, good)
	}

	st := a.skiffJSON(0, "lock", "status", a.name)
	if !strings.Contains(st.Lock, holder) {
		t.Errorf("lock status = %q, want it to name the holder", st.Lock)
	}
	if st := a.mustSkiff(0, "lock", "status", a.name); !strings.Contains(st.stdout, "held: ") {
		t.Errorf("lock status (text) does not say held:\n%s", st)
	}
	// The lock was taken a moment ago, well within the app's timeout: its run may still be going.
	if rel := a.skiff("lock", "release", a.name); rel.code != exitLocked || !strings.Contains(rel.all(), "younger than the app's timeout") {
		t.Errorf("lock release of a young lock without --force: want exit 3 and a refusal, got %s", rel)
	}
	if _, err := os.Stat(filepath.Join(a.path, ".skiff", "lock")); err != nil {
		t.Fatalf("lock release without --force removed a young lock: %v", err)
	}
	if rel := a.mustSkiff(0, "lock", "release", "--force", a.name); !strings.Contains(rel.stdout, "released (was: ") {
		t.Errorf("lock release does not say what it released:\n%s", rel)
	}
	if _, err := os.Stat(filepath.Join(a.path, ".skiff", "lock")); err == nil {
		t.Fatalf("the lock directory is still there after lock release")
	}
	if st := a.skiffJSON(0, "lock", "status", a.name); st.Lock != "" {
		t.Errorf("lock status after release = %q, want free", st.Lock)
	}
	next := a.deploy(0, e2eAppTree(t, "l3", nil))
	if next.Before != good {
		t.Errorf("deploy after the release went %q -> %q", next.Before, next.After)
	}
	a.wantServing("l3")
	if _, err := os.Stat(filepath.Join(a.path, ".skiff", "lock")); err == nil {
		t.Errorf("a finished deploy left its lock behind")
	}
}
