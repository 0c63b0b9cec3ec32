package deploy

import (
	"context"
	"errors"

	"github.com/skiffdeploy/skiff/release"
)

// sourceStart is how a source deploy's new release was started under the lock: the release live before, and
// the clone of it into the new release (see cloneBase).
type sourceStart struct {
	prev  string
	clone cloneResult
}

// beginSource takes the lock over the SFTP session and starts the new release while the scan finishes:
// deploySource takes the start from r.started. No remote shell runs for it (see startRelease); a first deploy's
// upload then starts one, the extraction (see ship.Ship). A dry run, which takes no lock, starts the release in
// deploySource.
func (r *hostRun) beginSource(ctx context.Context) error {
	if isDry(r.c) {
		return r.acquire(ctx, "deploy")
	}
	id := r.opts.ReleaseID
	prev, err := release.ReadCurrentSFTP(ctx, r.c, r.l)
	if err != nil {
		return err
	}
	if prev == id {
		return alreadyCurrent(id)
	}
	return r.step("lock", func() error {
		lock, err := release.AcquireLockSFTP(ctx, r.c, r.l, lockOwner(r.opts, r.app, "deploy"), r.app.Timeout.Duration)
		if err != nil {
			return err
		}
		r.lock = lock
		done := make(chan sourceStart, 1)
		r.started = done
		go func() { done <- r.startRelease(ctx, prev, id) }()
		return nil
	})
}

// startRelease starts release id under the lock: it reads current again, since another run may have switched
// it between the first read (prev) and the lock; removes what a killed run of the same id left, which only
// then costs a remote shell; and clones the live release into the new one (cloneBase).
func (r *hostRun) startRelease(ctx context.Context, prev, id string) sourceStart {
	if !isDry(r.c) {
		cur, err := release.ReadCurrentSFTP(ctx, r.c, r.l)
		if err == nil && cur == id {
			err = alreadyCurrent(id)
		}
		if err != nil {
			return sourceStart{prev: prev, clone: cloneResult{err: err}}
		}
		if cur != prev {
			r.logf("current changed while the lock was being taken (now %q); starting from it", cur)
			prev = cur
		}
	}
	if release.LeftoverRelease(ctx, r.c, r.l, id) {
		// A release dir of the same id that is not current can only be the remains of a killed run.
		if err := r.run(ctx, release.RemoveReleasesCommand(r.l, []string{id})); err != nil {
			return sourceStart{prev: prev, clone: cloneResult{err: err}}
		}
	}
	return sourceStart{prev: prev, clone: r.cloneBase(ctx, prev, id, r.copiesFiles())}
}

// alreadyCurrent refuses to deploy a release id that is live.
func alreadyCurrent(id string) error {
	return errors.New("release " + id + " is already current: a release id is the time to the second, so deploy again in a second")
}
