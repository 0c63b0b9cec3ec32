package deploy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
	"github.com/skiffdeploy/skiff/ship"
)

// DeploySource ships opts.Manifest (scanned from opts.SourceDir) to one host as release opts.ReleaseID and
// makes it live: lock, new release from the current one, shared links, before_switch hooks, atomic switch,
// supervisor restart, checks, history, retention, unlock. A failure before the switch leaves current as it
// was; a failure after it switches back, restarts and checks the previous release, and records both.
func DeploySource(ctx context.Context, c HostConn, app *inventory.App, host string, opts *Options) *Outcome {
	r := newHostRun(c, app, host, opts)
	return countRemote(c, r.lockedBy(ctx, r.beginSource, r.deploySource))
}

func (r *hostRun) deploySource(ctx context.Context) error {
	id := r.opts.ReleaseID
	var start sourceStart
	if r.started != nil {
		start = <-r.started // the start ends with ctx
	} else {
		prev, err := release.ReadCurrentSFTP(ctx, r.c, r.l)
		if err == nil && prev == id {
			err = alreadyCurrent(id)
		}
		if err != nil {
			return err
		}
		start = r.startRelease(ctx, prev, id)
	}
	prev := start.prev
	r.out.Before, r.out.After = prev, prev
	if err := r.prepareSource(ctx, prev, start); err != nil {
		r.discard(ctx, id)
		var local *scanError
		if errors.As(err, &local) {
			return local.err // the source tree's fault, not the host's: nothing goes into its history
		}
		return errors.Join(err, r.history(ctx, release.HistoryEntry{Op: release.ActionDeploy, ID: id, Previous: prev, Result: release.ResultFailed, Revision: r.opts.Revision, Error: err.Error()}))
	}
	if err := r.activate(ctx, id, prev); err != nil {
		r.diagnose(ctx, err)
		return r.revert(ctx, id, prev, err)
	}
	r.out.After = id
	if err := r.history(ctx, release.HistoryEntry{Op: release.ActionDeploy, ID: id, Previous: prev, Result: release.ResultOK, Revision: r.opts.Revision}); err != nil {
		return err
	}
	if err := r.retain(ctx, id, prev); err != nil {
		r.warn(err.Error()) // the release is live and checked: housekeeping does not fail the host
	}
	return nil
}

// scanError carries a failure of the local scan through a host's deploy.
type scanError struct{ err error }

func (e *scanError) Error() string { return e.err.Error() }
func (e *scanError) Unwrap() error { return e.err }

// manifest is the scanned source tree, once the scan is done.
func (r *hostRun) manifest(ctx context.Context) (*ship.Manifest, error) {
	if r.opts.Scan == nil {
		return r.opts.Manifest, nil
	}
	m, err := r.opts.Scan(ctx)
	if err != nil {
		return nil, &scanError{err}
	}
	return m, nil
}

// prepareSource builds the new release next to the live one; nothing it does is visible to the app. The
// release is made from the live one's manifest (see CloneReleaseCommand) while the scan finishes; then the
// differences are shipped, the shared entries linked, the builds linked (made where the host lacks them) and
// the before_switch hooks run.
func (r *hostRun) prepareSource(ctx context.Context, prev string, start sourceStart) error {
	id := r.opts.ReleaseID
	copyFiles := r.copiesFiles()
	c := start.clone
	m, err := r.manifest(ctx)
	if err == nil {
		err = c.err
	}
	if err != nil {
		return err
	}
	base := c.base
	if c.cloneErr != nil {
		// A base file missing or unreadable on the target: the deploy goes on without a base.
		r.logf("could not take the files of %s from its manifest (%v); sending every file", prev, c.cloneErr)
		if err := r.run(ctx, release.RemoveReleasesCommand(r.l, []string{id})); err != nil {
			return err
		}
		base = nil
	}
	builds, err := PlanBuilds(r.app, m, r.opts.SourceDir)
	if err != nil {
		return &scanError{err}
	}
	if base == nil {
		prev = ""
	}
	counter := ship.NewCounter()
	err = r.stepWith("upload", counterFill(counter), counter.Milestone(), func() error {
		stats, err := ship.Ship(ctx, r.c, r.opts.SourceDir, m, r.l, id, prev, base, ship.ShipOptions{
			DryRun:      r.opts.DryRun,
			Plan:        func(op, p string) { r.logf("would %s %s", op, p) },
			Cloned:      base != nil,
			ClonedExact: c.exact,
			Progress:    counter,
			Copy:        copyFiles,
		})
		if stats != nil {
			r.out.Files, r.out.Bytes, r.out.Reused = stats.Files, stats.Bytes, stats.Reused
		}
		return err
	})
	if err != nil {
		return err
	}
	if _, err := r.writeEnv(ctx); err != nil {
		return err
	}
	if len(r.app.Shared) > 0 {
		err := r.step("shared", func() error {
			if err := r.seedShared(ctx); err != nil {
				return err
			}
			return r.run(ctx, release.SharedCommand(r.l, id, r.app.Shared))
		})
		if err != nil {
			return err
		}
	}
	if err := r.makeBuilds(ctx, id, builds, copyFiles); err != nil {
		return err
	}
	return r.hooks(ctx, "before_switch", r.app.Hooks.BeforeSwitch, id, prev)
}

// copiesFiles says whether the new release's files are copies of the base's rather than hard links: they are
// wherever a command of the app's (a hook, a build) runs inside a release, since a write, append or chmod
// through a hard link would reach every release sharing the inode. Copies are made with --reflink=auto, so
// they cost no data blocks where the filesystem can share them copy-on-write.
func (r *hostRun) copiesFiles() bool {
	h := r.app.Hooks
	return len(h.BeforeSwitch) > 0 || len(h.AfterSwitch) > 0 || len(r.app.Builds) > 0
}

// seedShared copies the shared entries that are regular files in the source tree (a .env) into shared/ on a
// host that does not have them yet, so that the first one shipped becomes the persistent one; Scan leaves
// shared entries out of the release, so SharedCommand alone would find nothing to seed from. What the host
// already has is never overwritten, and shared directories start empty (a source tree's logs/ is not shipped).
func (r *hostRun) seedShared(ctx context.Context) error {
	for _, e := range r.app.Shared {
		local := filepath.Join(r.opts.SourceDir, filepath.FromSlash(e))
		fi, err := os.Lstat(local)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		dst := path.Join(r.l.Shared(), e)
		if err := r.seedFile(ctx, local, dst, fi.Mode().Perm()); err != nil {
			return fmt.Errorf("seed shared %s: %w", e, err)
		}
	}
	return nil
}

// seedFile uploads local to dst through a temporary name unless dst exists.
func (r *hostRun) seedFile(ctx context.Context, local, dst string, mode fs.FileMode) error {
	client, err := r.c.SFTP(ctx)
	if err != nil {
		return err
	}
	if _, err := client.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return r.change("", fmt.Sprintf("seed %s from %s", dst, local), func() error {
		if err := client.MkdirAll(path.Dir(dst)); err != nil {
			return err
		}
		src, err := os.Open(local)
		if err != nil {
			return err
		}
		defer src.Close()
		if err := writeAtomic(client, path.Join(path.Dir(dst), ".skiff-seed-"+r.opts.Run), dst, mode, src); err != nil {
			return err
		}
		r.logf("seeded %s from the source tree", dst)
		return nil
	})
}

// hooks runs the app's hook commands in the release directory with SKIFF_* set inline.
func (r *hostRun) hooks(ctx context.Context, name string, hooks []string, id, prev string) error {
	for i, h := range hooks {
		cmd := hookCommand(r.l, r.app.Name, h, id, prev)
		if err := r.step(fmt.Sprintf("%s[%d]", name, i), func() error { return r.run(ctx, cmd) }); err != nil {
			return err
		}
	}
	return nil
}

// activate switches current from prev to id, restarts the programs, checks the app and runs the after_switch
// hooks (which see prev as SKIFF_PREVIOUS, as the before_switch hooks do).
func (r *hostRun) activate(ctx context.Context, id, prev string) error {
	if err := r.step("switch", func() error { return r.switchTo(ctx, id) }); err != nil {
		return err
	}
	if err := r.restart(ctx); err != nil {
		return err
	}
	if err := r.check(ctx); err != nil {
		return err
	}
	return r.hooks(ctx, "after_switch", r.app.Hooks.AfterSwitch, id, prev)
}

// switchTo makes release id live and proves it by reading current back: a switch that did not take is an
// error naming what current is, never a success.
func (r *hostRun) switchTo(ctx context.Context, id string) error {
	return r.change("", "point "+r.l.Current()+" at "+r.l.ReleaseLink(id), func() error {
		out, err := release.Switch(ctx, r.c, r.l, id)
		if err != nil {
			return err
		}
		got, err := release.ParseCurrent(r.l, out)
		if err != nil {
			return fmt.Errorf("after the switch: %w", err)
		}
		if got != id {
			return fmt.Errorf("after the switch %s names %s, not %s", r.l.Current(), orNone(got), id)
		}
		return nil
	})
}

// revert puts prev back after id failed once live, and records both in history.
func (r *hostRun) revert(ctx context.Context, id, prev string, cause error) error {
	r.logf("FAILED: %v", cause)
	failed := release.HistoryEntry{Op: release.ActionDeploy, ID: id, Previous: prev, Result: release.ResultFailed, Revision: r.opts.Revision, Error: cause.Error()}
	if prev == "" {
		r.out.After = id
		return errors.Join(cause, r.history(ctx, failed))
	}
	r.logf("rolling back to %s", prev)
	bctx, cancel := switchBackCtx(ctx, r.app)
	defer cancel()
	err := r.activate(bctx, prev, id)
	back := release.HistoryEntry{Op: release.ActionRollback, ID: prev, Previous: id, Result: release.ResultOK}
	if err != nil {
		back.Result, back.Error = release.ResultFailed, err.Error()
		r.out.After = prev
		return errors.Join(cause, fmt.Errorf("rollback to %s also failed: %w", prev, err), r.history(ctx, failed), r.history(ctx, back))
	}
	r.out.After, r.out.RolledBack = prev, true
	return errors.Join(fmt.Errorf("%w (rolled back to %s)", cause, prev), r.history(ctx, failed), r.history(ctx, back))
}

// discard removes a release that never went live.
func (r *hostRun) discard(ctx context.Context, id string) {
	_ = r.run(r.cleanupCtx(ctx), release.RemoveReleasesCommand(r.l, []string{id}))
}

// retire removes releases ids at the end of the run, with the unlock: moved into a trash directory over the
// SFTP session when the lock was taken that way, then deleted in the background by a remote command.
func (r *hostRun) retire(ctx context.Context, ids []string, done func(error) error) error {
	token := release.NewToken()
	if r.lock == nil || !r.lock.OverSFTP() {
		return r.atEndRun(ctx, release.RetireReleasesCommand(r.l, ids, token), done)
	}
	moved := func(ctx context.Context) error { return release.RetireReleasesSFTP(ctx, r.c, r.l, ids, token) }
	if len(ids) > 0 {
		r.atEnd = append(r.atEnd, endStep{sftp: moved, done: done})
	}
	return r.atEndRun(ctx, release.EmptyTrashCommand(r.l), done)
}

// retain deletes releases beyond keep_releases, and the builds no kept release uses: it reads what there is
// now and leaves the deletions to the unlock's remote command (see atEndRun). A failure is the returned error
// when it comes from the reading, else a warning.
func (r *hostRun) retain(ctx context.Context, current, previous string) error {
	return r.step("retain", func() error {
		st, err := release.ReadRetention(ctx, r.c, r.l)
		if err != nil {
			return err
		}
		withRelease(st, current)
		for _, t := range st.StaleTrash {
			r.logf("%s is left from an earlier deletion that did not finish; deleting it again", path.Join(r.l.Releases(), t))
		}
		failed := release.FailedIDs(st.History)
		for _, id := range st.IDs {
			failed[id] = failed[id] || !st.Complete[id]
		}
		remove := release.Retain(st.IDs, current, previous, failed, r.app.KeepReleases)
		warn := func(what string) func(error) error {
			return func(err error) error {
				if err != nil && !errors.Is(err, remote.ErrStepSkipped) {
					r.warn(fmt.Sprintf("retain: %s: %v", what, err))
				}
				return nil
			}
		}
		if len(remove) > 0 || len(st.StaleTrash) > 0 {
			if len(remove) > 0 {
				r.logf("removing old releases %v", remove)
			}
			if err := r.retire(ctx, remove, warn("remove old releases")); err != nil {
				return err
			}
		}
		unused, err := UnusedBuilds(ctx, r.c, r.l, keptAfter(st.IDs, remove))
		if err != nil || len(unused) == 0 {
			return err
		}
		r.logf("removing builds no kept release uses: %v", unused)
		return r.atEndRun(ctx, RemoveBuildsCommand(r.l, unused), warn("remove unused builds"))
	})
}
