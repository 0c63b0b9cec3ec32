package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
	"github.com/skiffdeploy/skiff/ship"
)

// sourceStart is how a source deploy's new release was started under the lock: the release live before, and
// the clone of it into the new release (see cloneBase).
type sourceStart struct {
	prev   string
	clone  cloneResult
	gnuTar bool // the target's tar is GNU tar, as the begin command found on a first deploy
}

// baseManifest is the live release's manifest as read for its clone.
type baseManifest struct {
	m   *ship.Manifest
	err error
}

// beginOutput bounds what the begin command may print: a lock holder's owner.json, and a line or two more.
const beginOutput = 64<<10 + 4<<10

// beginSource takes the lock and starts the new release in one remote command (remote.Sequence) instead of
// three: the lock (release.LockAttempt); then, only once it is taken, the proof that current still names
// the release read before it (over the SFTP session the deploy needs anyway) with the removal of what a killed
// run of the same id left (release.PrepareCommand); then, where the new release is made of hard links,
// the clone of the live release (ship.CloneReleaseCommand), its names read from the manifest meanwhile.
// On a first deploy, which sends every file, it also asks whether the target's tar is GNU tar
// (ship.TarProbeCommand), so that the upload does not. The lock's outcome is known as soon as its step ends;
// the rest goes on while the scan finishes, and deploySource takes it from r.started. A dry run, which takes no lock, starts the release the long way.
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
		attempt, err := release.NewLockAttempt(r.c, r.l, lockOwner(r.opts, r.app, "deploy"))
		if err != nil {
			return err
		}
		steps := []remote.Step{attempt.Step, {Command: release.PrepareCommand(r.l, prev, id)}}
		clone := prev != "" && !r.copiesFiles()
		switch {
		case clone:
			steps = append(steps, remote.Step{Command: ship.CloneReleaseCommand(r.l, prev, id, release.NewToken())})
		case prev == "":
			steps = append(steps, remote.Step{Command: ship.TarProbeCommand()})
		}
		cmd, err := remote.Sequence(steps...)
		if err != nil {
			return err
		}
		watch := remote.NewSequenceWatch(len(steps), beginOutput)
		cmd.Stdout = watch.Line
		names, send := io.Pipe()
		if clone {
			cmd.Stdin = names
		}
		ran := make(chan error, 1)
		go func() {
			_, err := r.c.Run(ctx, cmd)
			names.CloseWithError(errCloneDone) // a clone that stopped early takes no list
			ran <- err
		}()
		read := make(chan baseManifest, 1)
		if clone {
			go func() {
				m, err := ship.ReadManifest(ctx, r.c, r.l, prev)
				read <- baseManifest{m, err}
				if err != nil {
					send.Close() // no list: the clone is left as it is, and removed
					return
				}
				send.CloseWithError(writeCloneNames(send, m))
			}()
		} else {
			read <- baseManifest{}
		}
		var runErr error
		finished := false
		select {
		case <-watch.Ended():
		case runErr = <-ran:
			finished = true
		}
		lockOut := watch.Outputs()[0]
		if !lockOut.Ran {
			return fmt.Errorf("lock: %w", errors.Join(runErr, errors.New("the target did not say whether the lock was taken")))
		}
		r.lock, err = attempt.Outcome(lockOut.Status, lockOut.Stdout, r.app.Timeout.Duration)
		if err != nil {
			if !finished {
				runErr = <-ran
			}
			if le := (*release.LockedError)(nil); !errors.As(err, &le) && runErr != nil {
				err = fmt.Errorf("lock: %w", runErr)
			}
			return err
		}
		done := make(chan sourceStart, 1)
		r.started = done
		go func() {
			if !finished {
				runErr = <-ran
			}
			done <- r.startedSource(ctx, prev, id, clone, watch.Outputs(), runErr, <-read)
		}()
		return nil
	})
}

// startedSource makes a sourceStart of what the begin command did.
func (r *hostRun) startedSource(ctx context.Context, prev, id string, cloned bool, outs []remote.StepOutput, runErr error, b baseManifest) sourceStart {
	base, baseErr := b.m, b.err
	prep := outs[1]
	switch {
	case prep.Ran && prep.Status == release.CurrentMoved:
		// Another run switched current between the read and the lock: read it again, under the lock now.
		r.logf("current changed while the lock was being taken; reading it again")
		prev, err := release.ReadCurrentSFTP(ctx, r.c, r.l)
		if err == nil && prev == id {
			err = alreadyCurrent(id)
		}
		if err != nil {
			return sourceStart{clone: cloneResult{err: err}}
		}
		if err := r.run(ctx, release.PrepareCommand(r.l, prev, id)); err != nil {
			return sourceStart{prev: prev, clone: cloneResult{err: err}}
		}
		return sourceStart{prev: prev, clone: r.cloneBase(ctx, prev, id, r.copiesFiles())}
	case !prep.Ran || prep.Status != 0:
		return sourceStart{prev: prev, clone: cloneResult{err: fmt.Errorf("prepare release %s: %w", id, stepErr(runErr))}}
	case !cloned:
		probe := len(outs) > 2 && outs[2].Ran && outs[2].Status == 0 && ship.IsGNUTar(outs[2].Stdout)
		return sourceStart{prev: prev, clone: r.cloneBase(ctx, prev, id, r.copiesFiles()), gnuTar: probe}
	}
	cl := outs[2]
	switch {
	case errors.Is(baseErr, ship.ErrNoManifest):
		// An older tool's release: every file is sent, into an empty release.
		if err := r.run(ctx, release.RemoveReleasesCommand(r.l, []string{id})); err != nil {
			return sourceStart{prev: prev, clone: cloneResult{err: err}}
		}
		return sourceStart{prev: prev}
	case baseErr != nil:
		return sourceStart{prev: prev, clone: cloneResult{err: baseErr}}
	case !cl.Ran || cl.Status != 0:
		return sourceStart{prev: prev, clone: r.cloneFailed(ctx, base, prev, stepErr(runErr))}
	case string(cl.Stdout) == ship.RanInBase+"\n":
		return sourceStart{prev: prev, clone: r.copyBase(ctx, prev, id, base)}
	}
	return sourceStart{prev: prev, clone: cloneResult{base: base}}
}

// alreadyCurrent refuses to deploy a release id that is live.
func alreadyCurrent(id string) error {
	return fmt.Errorf("release %s is already current: a release id is the time to the second, so deploy again in a second", id)
}

// stepErr is the error of a step of the begin command that did not end well: the command's, or, when the
// command ended well but the step's end was not seen (its output was cut short), one saying so.
func stepErr(runErr error) error {
	if runErr == nil {
		return errors.New("the target did not say how the step ended")
	}
	return runErr
}
