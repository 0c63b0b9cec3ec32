package deploy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/pkg/sftp"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/remote"
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
	// Secret looks up a secret by the environment variable the inventory names (password_env).
	Secret func(name string) string
	// Source deploys: the local tree (already scanned into Manifest) and the release id to create.
	SourceDir string
	Manifest  *Manifest
	// Scan, when not nil, replaces Manifest: it waits for a scan of SourceDir still running when the deploy
	// started, so that hosts take their lock and clone their current release meanwhile.
	Scan      func(ctx context.Context) (*Manifest, error)
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
	Builds     []BuildOutcome `json:"builds,omitempty"` // source apps: each build linked, and whether it ran
	Image      *ImageChange   `json:"image,omitempty"`  // image apps: the image live before and after
	Duration   time.Duration  `json:"-"`
	Err        error          `json:"-"`
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
	l    Layout
	opts *Options
	out  *Outcome
	lock *Lock
}

func newHostRun(c HostConn, app *inventory.App, host string, opts *Options) *hostRun {
	return &hostRun{app: app, host: host, c: c, l: Layout{Path: app.Path}, opts: opts, out: &Outcome{Host: host}}
}

func (r *hostRun) logf(format string, args ...any) {
	if r.opts.Log != nil {
		r.opts.Log(r.host, fmt.Sprintf(format, args...))
	}
}

// step runs fn as a named step, timing it and giving its error the step's name.
func (r *hostRun) step(name string, fn func() error) error {
	start := time.Now()
	err := fn()
	r.out.Steps = append(r.out.Steps, StepTiming{Step: name, DurationMS: time.Since(start).Milliseconds()})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// run executes a mutating command, or prints it in a dry run.
func (r *hostRun) run(ctx context.Context, cmd remote.Command) error {
	if r.opts.DryRun {
		r.logf("would run: %s", cmd.String())
		return nil
	}
	cmd.Stdout = func(line string) { r.logf("%s", line) }
	cmd.Stderr = cmd.Stdout
	_, err := r.c.Run(ctx, cmd)
	return err
}

// acquire takes the app's lock (not in a dry run, which changes nothing).
func (r *hostRun) acquire(ctx context.Context, op string) error {
	if r.opts.DryRun {
		return nil
	}
	return r.step("lock", func() (err error) {
		r.lock, err = AcquireLock(ctx, r.c, r.l, LockOwner{
			Operator: r.opts.Operator, Machine: r.opts.Machine, PID: r.opts.PID, Origin: r.opts.Origin, Op: op, App: r.app.Name,
		}, r.app.Timeout.Duration)
		return err
	})
}

// locked runs fn under the app's lock on the host, and fills in the outcome's error and duration.
func (r *hostRun) locked(ctx context.Context, op string, fn func(context.Context) error) *Outcome {
	start := time.Now()
	err := r.acquire(ctx, op)
	if err == nil {
		err = r.release(ctx, fn(ctx))
	}
	r.out.Err, r.out.Duration = err, time.Since(start)
	return r.out
}

// release frees the lock; a failure to do so is reported with the run's error, never swallowed.
func (r *hostRun) release(ctx context.Context, err error) error {
	if r.lock == nil {
		return err
	}
	if uerr := r.lock.Release(ctx); uerr != nil {
		return errors.Join(err, uerr)
	}
	return err
}

// history records an entry (not in a dry run). Like the lock's release it uses a fresh context when ctx has
// ended: a run cancelled by Ctrl-C or its timeout must still mark its release failed, or a later rollback
// could pick that release.
func (r *hostRun) history(ctx context.Context, e HistoryEntry) error {
	if r.opts.DryRun {
		return nil
	}
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
	}
	e.App, e.Operator, e.Origin, e.Run = r.app.Name, r.opts.Operator, r.opts.Origin, r.opts.Run
	return AppendHistory(ctx, r.c, r.l, e)
}

// restart restarts the app's supervisord programs through the SSH connection and waits until they run.
func (r *hostRun) restart(ctx context.Context) error {
	sup := r.app.Supervisor
	if sup.URL == "" || len(sup.Programs) == 0 {
		return nil
	}
	if r.opts.DryRun {
		r.logf("would restart %v through supervisord at %s", sup.Programs, sup.URL)
		return nil
	}
	return r.step("restart", func() error {
		opts := supervisor.Options{Username: sup.Username}
		if sup.PasswordEnv != "" && r.opts.Secret != nil {
			opts.Password = r.opts.Secret(sup.PasswordEnv)
		}
		client, err := supervisor.New(r.c, sup.URL, opts)
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

// check runs the app's port and HTTP checks from the target.
func (r *hostRun) check(ctx context.Context) error {
	if r.opts.DryRun || (len(r.app.Check.Ports) == 0 && r.app.Check.HTTP == "") {
		return nil
	}
	return r.step("check", func() error { return CheckApp(ctx, r.c, r.app.Check) })
}
