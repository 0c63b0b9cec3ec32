package release

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/skiffdeploy/skiff/remote"
)

func TestPrepareCommand_ProvesCurrentAndClearsLeftovers(t *testing.T) {
	const live, other, id = "20260101T000000Z", "20260101T000100Z", "20260101T000200Z"
	tests := []struct {
		name   string
		setup  string // run with $1 the app, $2 releases/, $3 manifests/
		prev   string
		status int
	}{
		{name: "first release", prev: ""},
		{name: "current as read", setup: `ln -s releases/` + live + ` "$1/current"`, prev: live},
		{name: "current moved", setup: `ln -s releases/` + other + ` "$1/current"`, prev: live, status: CurrentMoved},
		{name: "current appeared", setup: `ln -s releases/` + other + ` "$1/current"`, prev: "", status: CurrentMoved},
		{name: "current gone", prev: live, status: CurrentMoved},
		{name: "current is a directory", setup: `rm -rf "$1/current"; mkdir "$1/current"`, prev: "", status: CurrentMoved},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c, l, _ := connect(t)
			// Every case also has the remains of a killed run of id: its release, manifest and build record.
			setup := `set -e; mkdir -p "$2/` + live + `" "$2/` + other + `" "$2/` + id + `/d" "$3"
touch "$3/` + id + `" "$3/` + id + ReleaseBuildsSuffix + `"
` + tc.setup
			if _, err := c.Run(ctx, remote.Script(setup, l.Path, l.Releases(), l.Manifests())); err != nil {
				t.Fatal(err)
			}
			_, err := c.Run(ctx, PrepareCommand(l, tc.prev, id))
			var ee *remote.ExitError
			switch {
			case tc.status == 0 && err != nil:
				t.Fatalf("prepare: %v", err)
			case tc.status != 0 && (!errors.As(err, &ee) || ee.Status != tc.status):
				t.Fatalf("prepare: %v, want exit status %d", err, tc.status)
			}
			for _, p := range []string{l.Release(id), l.Manifest(id), l.Manifest(id) + ReleaseBuildsSuffix} {
				_, err := os.Lstat(p)
				if gone := errors.Is(err, fs.ErrNotExist); gone != (tc.status == 0) {
					t.Errorf("%s: removed %v, want %v", p, gone, tc.status == 0)
				}
			}
			for _, keep := range []string{live, other} {
				if _, err := os.Lstat(l.Release(keep)); err != nil {
					t.Errorf("release %s: %v", keep, err)
				}
			}
		})
	}
}

func TestLock_ReleaseAfterRunsStepsThenUnlocks(t *testing.T) {
	for _, acquire := range lockAcquirers {
		t.Run(acquire.name, func(t *testing.T) { testReleaseAfter(t, acquire.take) })
	}
}

func testReleaseAfter(t *testing.T, acquire acquireFunc) {
	ctx := context.Background()
	c, l, _ := connect(t)
	lock, err := acquire(ctx, c, l, LockOwner{Op: "deploy", App: "a"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := AppendHistoryCommand(l, HistoryEntry{Op: ActionDeploy, App: "a", ID: "20260101T000000Z", Result: ResultOK})
	if err != nil {
		t.Fatal(err)
	}
	failing := remote.Script(`echo "no space left" >&2; exit 1`)
	skipped := remote.Script(`touch "$1"`, l.Path+"/skipped")
	stepErrs, err := lock.ReleaseAfter(ctx, remote.Step{Command: entry}, remote.Step{Command: failing}, remote.Step{Command: skipped})
	if err != nil {
		t.Fatalf("unlock: %v", err)
	}
	var ee *remote.ExitError
	if stepErrs[0] != nil || !errors.As(stepErrs[1], &ee) || ee.Status != 1 || ee.Stderr != "no space left" || !errors.Is(stepErrs[2], remote.ErrStepSkipped) {
		t.Errorf("step errors %v", stepErrs)
	}
	if _, err := os.Lstat(l.LockDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the lock is still there after a failed step: %v", err)
	}
	if _, err := os.Lstat(l.Path + "/skipped"); err == nil {
		t.Error("a step after a failed one ran")
	}
	h, err := ReadHistory(ctx, c, l)
	if err != nil || len(h) != 1 {
		t.Errorf("history %v, %v", h, err)
	}

	// A lock another run holds by now is left alone, and said so.
	lock, err = acquire(ctx, c, l, LockOwner{Op: "deploy", App: "a"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.LockDir()+"/owner.json", []byte(`{"op":"deploy","token":"0123456789abcdef01234567"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := lock.ReleaseAfter(ctx, remote.Step{Command: entry}); err == nil {
		t.Error("a lock taken over by another run was released without an error")
	}
	if _, err := os.Lstat(l.LockDir()); err != nil {
		t.Errorf("another run's lock was removed: %v", err)
	}
}
