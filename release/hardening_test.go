package release

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"
)

// TestReleaseInspected_LeavesALockTakenSince inspects a held lock, lets its run end and another take the
// lock, and then releases what it inspected: the new run's lock must stay.
func TestReleaseInspected_LeavesALockTakenSince(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	c, layout, _ := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first, err := AcquireLock(ctx, c, layout, LockOwner{Operator: "alice", Op: "deploy", App: "x"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	held, err := LockStatus(ctx, c, layout, time.Hour)
	if err != nil || held == nil {
		t.Fatalf("lock status: %v, %v", held, err)
	}
	if err := first.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := AcquireLock(ctx, c, layout, LockOwner{Operator: "bob", Op: "deploy", App: "x"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	err = ReleaseInspected(ctx, c, held, 0, true)
	if err == nil || !strings.Contains(err.Error(), "no longer the one inspected") {
		t.Fatalf("releasing the inspected lock after it changed hands: %v, want a refusal", err)
	}
	now, err := LockStatus(ctx, c, layout, time.Hour)
	if err != nil || now == nil || now.Owner == nil || now.Owner.Operator != "bob" {
		t.Fatalf("bob's lock is gone: %+v, %v", now, err)
	}
	if err := ReleaseInspected(ctx, c, now, time.Hour, false); err == nil || !strings.Contains(err.Error(), "younger than the app's timeout") {
		t.Fatalf("releasing a young lock without force: %v, want a refusal", err)
	}
	var le *LockedError
	if !errors.As(ReleaseInspected(ctx, c, now, time.Hour, false), &le) {
		t.Fatalf("the refusal is not a *LockedError (exit code 3)")
	}
	if err := ReleaseInspected(ctx, c, now, time.Hour, true); err != nil {
		t.Fatalf("forced release of the inspected lock: %v", err)
	}
	if _, err := os.Stat(layout.LockDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("lock still there after a forced release: %v", err)
	}
}

// TestHistory_HalfLineNeitherHidesNorBlocks leaves a half line at the end of a history on a host, as a disk
// that filled during an append does, appends an entry and reads the history back: the half line is skipped
// with a warning naming the file and line, and the new entry is there.
func TestHistory_HalfLineNeitherHidesNorBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	for _, tc := range []struct {
		name   string
		append func(context.Context, Conn, Layout, HistoryEntry) error
	}{
		{name: "remote command", append: func(ctx context.Context, c Conn, l Layout, e HistoryEntry) error { return AppendHistory(ctx, c, l, e) }},
		{name: "sftp", append: AppendHistorySFTP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, layout, _ := connect(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			good := HistoryEntry{Op: ActionDeploy, App: "x", ID: "20260101T000000Z", Result: ResultOK}
			if err := tc.append(ctx, c, layout, good); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(layout.History(), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = f.WriteString(`{"time":"2026-01-01T00:00:01Z","op":"deploy","app":"x","id":"2026`)
			f.Close()
			next := HistoryEntry{Op: ActionDeploy, App: "x", ID: "20260101T000002Z", Result: ResultOK}
			if err := tc.append(ctx, c, layout, next); err != nil {
				t.Fatal(err)
			}
			var warnings []string
			wctx := WithWarn(ctx, func(msg string) { warnings = append(warnings, msg) })
			h, err := ReadHistory(wctx, c, layout)
			if err != nil {
				t.Fatalf("ReadHistory: %v", err)
			}
			if len(h) != 2 || h[0].ID != good.ID || h[1].ID != next.ID {
				t.Fatalf("history %+v, want the two whole entries", h)
			}
			if want := layout.History() + " line 2 skipped"; len(warnings) != 1 || !strings.Contains(warnings[0], want) {
				t.Fatalf("warnings %q, want one with %q", warnings, want)
			}
		})
	}
}
