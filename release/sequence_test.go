package release

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/skiffdeploy/skiff/remote"
)

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
