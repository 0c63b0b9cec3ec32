package release

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"testing"
	"time"
)

// acquireFunc takes a lock: AcquireLock (a remote command) or AcquireLockSFTP.
type acquireFunc func(context.Context, Conn, Layout, LockOwner, time.Duration) (*Lock, error)

var lockAcquirers = []struct {
	name string
	take acquireFunc
}{
	{name: "remote command", take: func(ctx context.Context, c Conn, l Layout, o LockOwner, stale time.Duration) (*Lock, error) {
		return AcquireLock(ctx, c, l, o, stale)
	}},
	{name: "sftp", take: AcquireLockSFTP},
}

// TestAcquireLockSFTP_SameLockAsTheCommand takes the lock one way and tries the other, both ways round: each
// sees the other's lock held, and who holds it.
func TestAcquireLockSFTP_SameLockAsTheCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	for i, first := range lockAcquirers {
		second := lockAcquirers[1-i]
		t.Run(first.name+" then "+second.name, func(t *testing.T) {
			c, l, _ := connect(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			held, err := first.take(ctx, c, l, LockOwner{Operator: "alice", Op: "deploy", App: "x"}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			_, err = second.take(ctx, c, l, LockOwner{Operator: "bob", Op: "deploy", App: "x"}, time.Hour)
			var le *LockedError
			if !errors.As(err, &le) || le.Owner == nil || le.Owner.Operator != "alice" || le.Stale {
				t.Fatalf("second lock: %v, want held by alice, not stale", err)
			}
			if err := held.Release(ctx); err != nil {
				t.Fatal(err)
			}
			again, err := second.take(ctx, c, l, LockOwner{Operator: "bob", Op: "deploy", App: "x"}, time.Hour)
			if err != nil {
				t.Fatalf("lock after its release: %v", err)
			}
			if err := again.Release(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestLockSFTP_ReleaseRemovesWhatAKilledWriteLeft releases a lock whose directory holds, besides owner.json,
// the temporary file a killed run's write left: the whole directory goes.
func TestLockSFTP_ReleaseRemovesWhatAKilledWriteLeft(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	c, l, _ := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lock, err := AcquireLockSFTP(ctx, c, l, LockOwner{Op: "deploy", App: "x"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.LockDir()+"/owner.json.tmp", []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := lock.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(l.LockDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("lock still there: %v", err)
	}
}
