package deploy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
	"github.com/skiffdeploy/skiff/ship"
	"github.com/skiffdeploy/skiff/supervisor"
)

// HostConn is everything a deploy needs from the one SSH connection to a host. *remote.Conn satisfies it.
type HostConn interface {
	Run(ctx context.Context, cmd remote.Command) (*remote.Result, error)
	SFTP(ctx context.Context) (*sftp.Client, error)
	Dial(ctx context.Context, network, addr string) (net.Conn, error)
	WaitPort(ctx context.Context, network, addr string, interval time.Duration) error
}

// Options are what a deploy or rollback run knows beyond the inventory. One value serves every host of a run.
type Options struct {
	Operator, Origin string // who and what started the run (user@machine, a CI job URL), recorded in lock and history
	Run              string // one id per invocation, recorded in history
	Machine          string
	PID              int
	DryRun           bool
	// Log receives progress and remote output lines of one host.
	Log func(host, line string)
	// Progress, when not nil, receives each step's start, progress and end (see Progress).
	Progress func(Progress)
	// Secret looks up a secret by the environment variable the inventory names (password_env).
	Secret func(name string) string
	// Source deploys: the local tree (already scanned into Manifest) and the release id to create.
	SourceDir string
	Manifest  *ship.Manifest
	// Scan, when not nil, replaces Manifest: it waits for a scan of SourceDir still running when the deploy
	// started, so that hosts take their lock and clone their current release meanwhile.
	Scan      func(ctx context.Context) (*ship.Manifest, error)
	ReleaseID string
	Revision  string
	// Rollbacks: the release to go back to ("" = the previous one) and whether a failed one is allowed.
	To    string
	Force bool
}

// Outcome is one host's result of a deploy or rollback.
type Outcome struct {
	Host       string         `json:"host"`
	Before     string         `json:"release_before,omitempty"`
	After      string         `json:"release_after,omitempty"`
	RolledBack bool           `json:"rolled_back"`
	Files      int64          `json:"files_sent"`
	Bytes      int64          `json:"bytes_sent"`
	Reused     int64          `json:"files_reused"`
	Steps      []StepTiming   `json:"steps,omitempty"`
	Restarted  []Restarted    `json:"restarted,omitempty"`
	Builds     []BuildOutcome `json:"builds,omitempty"`      // source apps: each build linked, and whether it ran
	Image      *ImageChange   `json:"image,omitempty"`       // image apps: the image live before and after
	EnvWritten bool           `json:"env_written,omitempty"` // the app's environment file changed and was written
	// LogTail are the app's last log lines (at most 20) when its start or check failed on the host.
	LogTail []string `json:"log_tail,omitempty"`
	// Warnings are problems that did not fail the host: housekeeping after a passed check, skipped history lines.
	Warnings []string `json:"warnings,omitempty"`
	// Remote is what the host's connection was asked for by the time the run ended (source deploys), when
	// the connection counts it: sessions are remote processes, each command at least one round trip.
	Remote   *remote.Counts `json:"remote,omitempty"`
	Duration time.Duration  `json:"-"`
	Err      error          `json:"-"`
}

// StepTiming is how long one step of a host's run took.
type StepTiming struct {
	Step       string `json:"step"`
	DurationMS int64  `json:"duration_ms"`
}

// Restarted is a program restarted on the host, with its new pid.
type Restarted = supervisor.Restarted

// hostRun carries the state of one app's run on one host.
type hostRun struct {
	app  *inventory.App
	host string
	c    HostConn
	l    release.Layout
	opts *Options
	out  *Outcome
	lock *release.Lock
	// started delivers, on a source deploy, how beginSource started the new release under the lock.
	started <-chan sourceStart
	// atEnd are the steps that run with the unlock: over SFTP first, then the commands in one remote command
	// (see release and release.Lock.ReleaseAfter).
	atEnd []endStep

	warnMu   sync.Mutex
	cleanup  context.Context // see cleanupCtx
	cancelup context.CancelFunc
}

// Deadlines of what must still happen on a host once its run has ended or timed out.
const (
	// cleanupTimeout bounds, together, removing a release that did not go live and recording the run in
	// history once the run's context has ended: a lost host must not hold its run much past the app's timeout.
	cleanupTimeout = 5 * time.Second
	// unlockTimeout bounds freeing the lock on its own, after everything else.
	unlockTimeout = 3 * time.Second
	// switchBackExtra is what a switch-back may take beyond the app's check timeout.
	switchBackExtra = 30 * time.Second
)

// cleanupCtx returns ctx while it lasts; once it has ended (the app's timeout, Ctrl-C), one fresh context per
// host run with a short deadline of its own, shared by every step that must still run.
func (r *hostRun) cleanupCtx(ctx context.Context) context.Context {
	if ctx.Err() == nil {
		return ctx
	}
	if r.cleanup == nil {
		r.cleanup, r.cancelup = context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	}
	return r.cleanup
}

// switchBackCtx is the context of a switch-back (or put-back) to the release that was live: it runs even when
// ctx has ended, within a deadline of its own that leaves room for the restart and the checks.
func switchBackCtx(ctx context.Context, app *inventory.App) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), app.Check.Timeout.Duration+switchBackExtra)
}

// warn records a problem that does not fail the host: it is logged and kept in the outcome, naming the host.
func (r *hostRun) warn(msg string) {
	msg = "host " + r.host + ": " + msg
	r.warnMu.Lock()
	r.out.Warnings = append(r.out.Warnings, msg)
	r.warnMu.Unlock()
	r.logf("WARNING: %s", msg)
}

// countRemote records in out what c was asked for so far, when c counts it.
func countRemote(c HostConn, out *Outcome) *Outcome {
	if rc, ok := c.(interface{ Counts() remote.Counts }); ok {
		n := rc.Counts()
		out.Remote = &n
	}
	return out
}

func newHostRun(c HostConn, app *inventory.App, host string, opts *Options) *hostRun {
	return &hostRun{app: app, host: host, c: forRun(c, host, opts), l: release.Layout{Path: app.Path}, opts: opts, out: &Outcome{Host: host}}
}

func (r *hostRun) logf(format string, args ...any) {
	if r.opts.Log != nil {
		r.opts.Log(r.host, fmt.Sprintf(format, args...))
	}
}

// step runs fn as a named step, timing it and giving its error the step's name.
func (r *hostRun) step(name string, fn func() error) error {
	return r.stepWith(name, nil, nil, fn)
}

// stepWith is step whose progress events are filled in by extra and also sent when kick receives (see
// progressing).
func (r *hostRun) stepWith(name string, extra func(*Progress), kick <-chan struct{}, fn func() error) error {
	start := time.Now()
	err := r.progressing(name, extra, kick, fn)
	r.out.Steps = append(r.out.Steps, StepTiming{Step: name, DurationMS: time.Since(start).Milliseconds()})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// run executes a command, its output going to the host's log.
func (r *hostRun) run(ctx context.Context, cmd remote.Command) error {
	cmd.Stdout = func(line string) { r.logf("%s", line) }
	cmd.Stderr = cmd.Stdout
	_, err := r.c.Run(ctx, cmd)
	return err
}

// acquire takes the app's lock (a dry run only inspects it, see lockApp).
func (r *hostRun) acquire(ctx context.Context, op string) error {
	return r.step("lock", func() (err error) {
		r.lock, err = lockApp(ctx, r.c, r.opts, r.app, op)
		return err
	})
}

// locked runs fn under the app's lock on the host, and fills in the outcome's error and duration. The app's
// timeout bounds the whole of it, hooks and builds included; what must still happen after it expires (remove
// the new release, switch back, record history, unlock) runs with short deadlines of its own.
func (r *hostRun) locked(ctx context.Context, op string, fn func(context.Context) error) *Outcome {
	return r.lockedBy(ctx, func(ctx context.Context) error { return r.acquire(ctx, op) }, fn)
}

// lockedBy is locked with take taking the lock (and, for a source deploy, more: see beginSource).
func (r *hostRun) lockedBy(ctx context.Context, take, fn func(context.Context) error) *Outcome {
	start := time.Now()
	ctx = release.WithWarn(ctx, r.warn)
	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if t := r.app.Timeout.Duration; t > 0 {
		runCtx, cancel = context.WithTimeout(ctx, t)
	}
	err := take(runCtx)
	if err == nil {
		if r.app.Kind == inventory.KindSource {
			err = r.checkHistorySize(runCtx)
		}
		if err == nil {
			err = fn(runCtx)
		}
		if err != nil && runCtx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			err = fmt.Errorf("timed out after %s (the app's timeout): %w", r.app.Timeout.Duration, err)
		}
		err = r.release(ctx, err)
	}
	cancel()
	if r.cancelup != nil {
		r.cancelup()
	}
	r.out.Err, r.out.Duration = err, time.Since(start)
	return r.out
}

// checkHistorySize refuses a host whose history is beyond MaxHistoryBytes before anything changes there:
// rollbacks and retention could not read it. (Image runs and rollbacks read the history first anyway.)
func (r *hostRun) checkHistorySize(ctx context.Context) error {
	client, err := r.c.SFTP(ctx)
	if err != nil {
		return err
	}
	if fi, err := client.Stat(r.l.History()); err == nil && fi.Size() > release.MaxHistoryBytes {
		return release.HistoryTooLarge(r.l, fi.Size())
	}
	return nil
}

// release frees the lock with a deadline of its own, running first, in the same remote command, the steps
// left for the end (atEnd); a failure to free it is reported with the run's error, never swallowed.
func (r *hostRun) release(ctx context.Context, err error) error {
	if r.lock == nil {
		return err
	}
	budget := r.endBudget()
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout+budget)
	defer cancel()
	sctx, cancelSFTP := context.WithTimeout(uctx, budget) // the unlock keeps its own time
	defer cancelSFTP()
	var steps []remote.Step
	var cmds []endStep
	for _, e := range r.atEnd {
		if e.sftp != nil {
			err = errors.Join(err, e.done(e.sftp(sctx)))
			continue
		}
		steps, cmds = append(steps, e.step), append(cmds, e)
	}
	stepErrs, uerr := r.lock.ReleaseAfter(uctx, steps...)
	for i, e := range cmds {
		serr := uerr
		if i < len(stepErrs) {
			serr = stepErrs[i]
		}
		err = errors.Join(err, e.done(serr))
	}
	return errors.Join(err, uerr)
}

// endBudget is the time the steps left for the end (atEnd) may take beyond the unlock's own: the cleanup's
// (see cleanupCtx), or what is left of it when the run's context ended and cleaning up has already begun.
func (r *hostRun) endBudget() time.Duration {
	switch {
	case len(r.atEnd) == 0:
		return 0
	case r.cleanup == nil:
		return cleanupTimeout
	}
	dl, _ := r.cleanup.Deadline()
	return max(0, time.Until(dl))
}

// endStep is a command left for the end of a run under the lock, run with the unlock (see release); done
// takes its error (nil when it succeeded) and returns what it adds to the run's error.
type endStep struct {
	step remote.Step
	sftp func(context.Context) error // instead of step: what goes over the SFTP session, before the commands
	done func(error) error
}

// atEndRun leaves cmd to run with the unlock, where it costs no remote session of its own, or runs it now
// when the run holds no lock (a dry run, which renders it).
func (r *hostRun) atEndRun(ctx context.Context, cmd remote.Command, done func(error) error) error {
	if r.lock == nil {
		return done(r.run(r.cleanupCtx(ctx), cmd))
	}
	r.atEnd = append(r.atEnd, endStep{step: remote.Step{Command: cmd}, done: done})
	return nil
}

// history records an entry. It goes with the unlock, in the same remote command (see
// atEndRun), which runs with a fresh context when ctx has ended: a run cancelled by Ctrl-C or its timeout must
// still mark its release failed, or a later rollback could pick that release.
func (r *hostRun) history(ctx context.Context, e release.HistoryEntry) error {
	e.App, e.Operator, e.Origin, e.Run = r.app.Name, r.opts.Operator, r.opts.Origin, r.opts.Run
	done := func(err error) error {
		if err != nil {
			return fmt.Errorf("append history: %w", err)
		}
		return nil
	}
	if r.lock != nil && r.lock.OverSFTP() {
		r.atEnd = append(r.atEnd, endStep{sftp: func(ctx context.Context) error {
			return release.AppendHistorySFTP(ctx, r.c, r.l, e) // its error names the step
		}, done: func(err error) error { return err }})
		return nil
	}
	cmd, err := release.AppendHistoryCommand(r.l, e)
	if err != nil {
		return err
	}
	return r.atEndRun(ctx, cmd, done)
}

// restart restarts the app's supervisord programs through the SSH connection and waits until they run.
func (r *hostRun) restart(ctx context.Context) error {
	sup := r.app.Supervisor
	if sup.URL == "" || len(sup.Programs) == 0 {
		return nil
	}
	return r.change("restart", fmt.Sprintf("restart %v through supervisord at %s", sup.Programs, sup.URL), func() error {
		client, err := r.supervisor()
		if err != nil {
			return err
		}
		defer client.Close()
		// Restart resolves the patterns itself, from the one process list it fetches anyway.
		done, err := client.Restart(ctx, sup.Programs)
		r.out.Restarted = done
		for _, p := range done {
			r.logf("restarted %s: pid %d -> %d", p.Name, p.OldPID, p.NewPID)
		}
		return err
	})
}

// supervisor is a client of the app's supervisord through the SSH connection. A start error keeps the
// program's log lines out of its message: diagnose puts them into the outcome's LogTail.
func (r *hostRun) supervisor() (*supervisor.Client, error) {
	sup := r.app.Supervisor
	opts := supervisor.Options{Username: sup.Username, DetachLogTail: true}
	if sup.PasswordEnv != "" && r.opts.Secret != nil {
		opts.Password = r.opts.Secret(sup.PasswordEnv)
	}
	return supervisor.New(r.c, sup.URL, opts)
}

// check runs the app's port and HTTP checks from the target.
func (r *hostRun) check(ctx context.Context) error {
	chk := r.app.Check
	if len(chk.Ports) == 0 && chk.HTTP == "" {
		return nil
	}
	return r.change("check", checkPlan(chk), func() error { return CheckApp(ctx, r.c, chk) })
}
