package deploy

import (
	"context"
	"errors"
	"fmt"

	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/release"
)

// RollbackSource makes an earlier release live again on one host: opts.To, or the release that was live
// before the current one. A release that history marks as failed is refused unless opts.Force. When the
// release it goes back to fails its checks, the one that was live is put back.
func RollbackSource(ctx context.Context, c HostConn, app *inventory.App, host string, opts *Options) *Outcome {
	r := newHostRun(c, app, host, opts)
	return r.locked(ctx, "rollback", r.rollbackSource)
}

func (r *hostRun) rollbackSource(ctx context.Context) error {
	cur, err := release.ReadCurrent(ctx, r.c, r.l)
	if err != nil {
		return err
	}
	r.out.Before, r.out.After = cur, cur
	ids, err := release.ListReleases(ctx, r.c, r.l)
	if err != nil {
		return err
	}
	complete, err := release.CompleteReleases(ctx, r.c, r.l)
	if err != nil {
		return err
	}
	ids = release.OnlyComplete(ids, complete)
	hist, err := release.ReadHistory(ctx, r.c, r.l)
	if err != nil {
		return err
	}
	to, err := RollbackTarget(ids, hist, cur, r.opts.To, r.opts.Force)
	if err != nil {
		return err
	}
	r.logf("rolling back %s -> %s", cur, to)
	if err := r.activate(ctx, to, cur); err != nil {
		r.diagnose(ctx, err)
		entry := release.HistoryEntry{Op: release.ActionRollback, ID: to, Previous: cur, Result: release.ResultFailed, Error: err.Error()}
		if cur == "" {
			return errors.Join(err, r.history(ctx, entry))
		}
		bctx, cancel := switchBackCtx(ctx, r.app)
		defer cancel()
		back := r.activate(bctx, cur, to)
		if back != nil {
			r.out.After = to
			return errors.Join(err, fmt.Errorf("putting %s back also failed: %w", cur, back), r.history(ctx, entry))
		}
		return errors.Join(fmt.Errorf("%w (%s put back)", err, cur), r.history(ctx, entry))
	}
	r.out.After = to
	return r.history(ctx, release.HistoryEntry{Op: release.ActionRollback, ID: to, Previous: cur, Result: release.ResultOK})
}

// RollbackTarget picks the release a rollback goes to. Without to it is the release that was live before
// cur according to history, or else the newest good release older than cur.
func RollbackTarget(ids []string, hist []release.HistoryEntry, cur, to string, force bool) (string, error) {
	present := map[string]bool{}
	for _, id := range ids {
		present[id] = true
	}
	failed := release.FailedIDs(hist)
	if to != "" {
		switch {
		case !release.ValidReleaseID(to):
			return "", fmt.Errorf("--to %q is not a release id (like 20261122T101500Z)", to)
		case !present[to]:
			return "", fmt.Errorf("release %s is not a complete release on the host (have %v)", to, ids)
		case to == cur:
			return "", fmt.Errorf("release %s is already current", to)
		case failed[to] && !force:
			return "", fmt.Errorf("release %s is marked failed in history; use --force to go back to it anyway", to)
		}
		return to, nil
	}
	for i := len(hist) - 1; i >= 0; i-- {
		e := hist[i]
		if e.ID == cur && e.Result == release.ResultOK && e.Previous != "" && present[e.Previous] && !failed[e.Previous] {
			return e.Previous, nil
		}
	}
	for i := len(ids) - 1; i >= 0; i-- {
		if id := ids[i]; id < cur && !failed[id] {
			return id, nil
		}
	}
	return "", fmt.Errorf("no earlier good release to roll back to (current %s, releases %v)", orNone(cur), ids)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
