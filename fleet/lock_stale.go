package fleet

import (
	"context"

	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
)

// ReleaseStaleLock removes the app's lock on each host where it is older than the app's timeout and held by
// origin: what a run of that origin left when it was killed (`skiff serve` after a SIGKILL). A lock of any
// other run, or one not stale yet, stays and is reported in Lock.
func (e *Engine) ReleaseStaleLock(ctx context.Context, req AppRequest, origin string) (*Report, error) {
	return e.inspect(ctx, "lock", req, false, func(ctx context.Context, app *inventory.App, conn *remote.Conn, r *HostResult) error {
		l := release.Layout{Path: app.Path}
		held, err := release.LockStatus(ctx, conn, l, app.Timeout.Duration)
		if err != nil || held == nil {
			return err
		}
		if held.Owner == nil || held.Owner.Origin != origin || !held.Stale || e.cfg.DryRun {
			r.Lock = held.Error()
			return nil
		}
		if err := release.ReleaseInspected(ctx, conn, held, app.Timeout.Duration, true); err != nil {
			return err
		}
		r.Released = held.Error()
		return nil
	})
}
