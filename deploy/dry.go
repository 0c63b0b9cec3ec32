package deploy

import (
	"context"
	"slices"

	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
)

// A dry run changes nothing on a host and shows what a real run would change there. It is decided here
// only: every flow runs as it always does, over a connection (dryConn, installed by forRun) that runs the
// commands marked remote.Command.ReadOnly and renders every other one to the host's log. What no rendered
// command can show (an SFTP write, a restart through supervisord) and what reads the effect of a change that
// was not made (the proof of a switch, the digest of a pulled image) is declared by the flows with
// hostRun.change. The lock is only inspected (lockApp).

// forRun is the connection a run of opts uses on host: c itself, or in a dry run c behind a dryConn.
func forRun(c HostConn, host string, opts *Options) HostConn {
	if !opts.DryRun {
		return c
	}
	d := &dryConn{HostConn: c, log: func(line string) {
		if opts.Log != nil {
			opts.Log(host, line)
		}
	}}
	if rc, ok := c.(remoteCounter); ok {
		return &countingDryConn{dryConn: d, counter: rc}
	}
	return d
}

// remoteCounter is a connection that counts what it asked of its target (see countRemote).
type remoteCounter interface{ Counts() remote.Counts }

// dryConn is a dry run's connection: commands marked ReadOnly run, every other one is rendered as
// "would run: <command>" and succeeds with no output. Its standard input is neither read nor shown (it may
// carry a secret: docker login's password). SFTP, Dial and WaitPort pass through: the flows only read with
// them in a dry run (see hostRun.change).
type dryConn struct {
	HostConn
	log func(line string)
}

// Run runs cmd when it only reads, and renders it otherwise. A command a real run would refuse is refused.
func (d *dryConn) Run(ctx context.Context, cmd remote.Command) (*remote.Result, error) {
	if cmd.ReadOnly {
		return d.HostConn.Run(ctx, cmd)
	}
	if err := cmd.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	line := "would run: " + cmd.String()
	if cmd.Stdin != nil {
		line += "  (with input on stdin, not shown)"
	}
	d.log(line)
	return &remote.Result{}, nil
}

func (d *dryConn) dry() {}

// countingDryConn is a dryConn over a connection that counts: the counts are the connection's.
type countingDryConn struct {
	*dryConn
	counter remoteCounter
}

func (c *countingDryConn) Counts() remote.Counts { return c.counter.Counts() }

// isDry reports whether c is a dry run's connection.
func isDry(c HostConn) bool {
	_, ok := c.(interface{ dry() })
	return ok
}

// change runs fn, a step that changes the host in a way no rendered command shows (an SFTP write, a restart
// through supervisord), or one that reads what such a change or a rendered command would have made (the
// proof of a switch, the digest of a pulled image, the containers after `up`). A dry run made no change: it
// logs "would <plan>" instead (nothing when plan is "") and goes on as if fn had succeeded. step, when not
// "", names fn's step (see hostRun.step).
func (r *hostRun) change(step, plan string, fn func() error) error {
	if isDry(r.c) {
		if plan != "" {
			r.logf("would %s", plan)
		}
		return nil
	}
	if step == "" {
		return fn()
	}
	return r.step(step, fn)
}

// lockApp takes the app's lock on the host for op (deploy, rollback, prune). A dry run takes none: it
// inspects the lock, and fails as a real run would when another run holds it.
func lockApp(ctx context.Context, c HostConn, opts *Options, app *inventory.App, op string) (*release.Lock, error) {
	l := release.Layout{Path: app.Path}
	if isDry(c) {
		held, err := release.LockStatus(ctx, c, l, app.Timeout.Duration)
		if err != nil {
			return nil, err
		}
		if held != nil {
			return nil, held
		}
		return nil, nil
	}
	return release.AcquireLockSFTP(ctx, c, l, lockOwner(opts, app, op), app.Timeout.Duration)
}

// lockOwner is who takes the app's lock for op.
func lockOwner(opts *Options, app *inventory.App, op string) release.LockOwner {
	return release.LockOwner{
		Operator: opts.Operator, Machine: opts.Machine, PID: opts.PID, Origin: opts.Origin, Op: op, App: app.Name,
	}
}

// withRelease adds release id, complete, to what retention read when it is not there: the new release a dry
// run did not make, which retention must count as a real run finds it (kept, as the current one), or it would
// show one old release too few going. In a real run the release is there and nothing changes.
func withRelease(st *release.RetentionState, id string) {
	if i, found := slices.BinarySearch(st.IDs, id); !found {
		st.IDs = slices.Insert(st.IDs, i, id)
		if st.Complete == nil {
			st.Complete = map[string]bool{}
		}
		st.Complete[id] = true
	}
}
