package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/skiffdeploy/skiff/compose"
	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
	"github.com/skiffdeploy/skiff/ship"
)

// DeployRequest asks for a new release of App on its hosts. A source app takes Source (default: the app's
// source); an image app takes Tag or Image.
type DeployRequest struct {
	App   string
	Hosts Selection
	// Source apps: the local tree to ship and the revision recorded in history (default: its git HEAD).
	Source   string
	Revision string
	// Image apps: a tag of the app's image, or a whole reference; and the compose flavour (auto, plugin,
	// standalone; "" is auto).
	Tag, Image string
	Compose    string
	// OnlyFailed narrows the hosts to those that did not succeed in the app's last run.
	OnlyFailed bool
	// RollbackFleet, when the rollout stops, rolls back the hosts that took the new release in this run.
	RollbackFleet bool
}

// RollbackRequest asks to make an earlier release of App live again: the previous one, or To (a release id,
// or an image digest).
type RollbackRequest struct {
	App     string
	Hosts   Selection
	To      string
	Force   bool // allow a release that history marks as failed
	Compose string
}

// appRun is one request's work on one app across its hosts.
type appRun struct {
	e    *Engine
	t    *appTarget
	opts *deploy.Options
	img  *deploy.ImageOptions // image apps
}

// flows are the per-host operations of an app's kind; the engine never branches on source vs image beyond
// choosing them.
type flows struct {
	deploy   func(ctx context.Context, conn deploy.HostConn, host string) *deploy.Outcome
	rollback func(ctx context.Context, conn deploy.HostConn, host string, opts *deploy.Options) *deploy.Outcome
}

func (a *appRun) flows() flows {
	app := a.t.app
	if app.Kind == inventory.KindImage {
		return flows{
			deploy: func(ctx context.Context, conn deploy.HostConn, host string) *deploy.Outcome {
				return deploy.DeployImage(ctx, conn, app, host, a.opts, a.img)
			},
			rollback: func(ctx context.Context, conn deploy.HostConn, host string, opts *deploy.Options) *deploy.Outcome {
				return deploy.RollbackImage(ctx, conn, app, host, opts, a.img)
			},
		}
	}
	return flows{
		deploy: func(ctx context.Context, conn deploy.HostConn, host string) *deploy.Outcome {
			return deploy.DeploySource(ctx, conn, app, host, a.opts)
		},
		rollback: func(ctx context.Context, conn deploy.HostConn, host string, opts *deploy.Options) *deploy.Outcome {
			return deploy.RollbackSource(ctx, conn, app, host, opts)
		},
	}
}

// newAppRun resolves the request's app and hosts and refuses to start when a secret the app needs is missing.
func (e *Engine) newAppRun(command, app string, sel Selection, secrets bool) (*appRun, error) {
	t, err := e.selectApp(command, app, sel)
	if err != nil {
		return nil, err
	}
	if secrets {
		if err := e.requireSecrets(t.app); err != nil {
			return nil, err
		}
	}
	return &appRun{e: e, t: t, opts: e.options()}, nil
}

// Deploy ships a new release of the request's app to its hosts and makes it live, batch after batch.
func (e *Engine) Deploy(ctx context.Context, req DeployRequest) (*Report, error) {
	a, err := e.newAppRun("deploy", req.App, req.Hosts, true)
	if err != nil {
		return nil, err
	}
	if a.t.app.Kind == inventory.KindImage {
		return a.deployImage(ctx, req)
	}
	return a.deploySource(ctx, req)
}

func (a *appRun) deployImage(ctx context.Context, req DeployRequest) (*Report, error) {
	app := a.t.app
	if req.Source != "" {
		return nil, requestf("deploy %s: --source is for source apps; an image app takes --tag or --image", app.Name)
	}
	img, err := deploy.NewImageOptions(a.e.cfg.Inventory, app, req.Tag, req.Image, req.Compose, a.opts.Secret)
	if err != nil {
		return nil, requestf("deploy %s: %v", app.Name, err)
	}
	a.img, a.opts.Revision = img, req.Revision
	a.e.notice("deploying %s image %s to %d host(s)", app.Name, img.Ref, len(a.t.hosts))
	if req.OnlyFailed {
		a.narrowToFailed(ctx)
	}
	return a.rollout(ctx, req), nil
}

func (a *appRun) deploySource(ctx context.Context, req DeployRequest) (*Report, error) {
	app := a.t.app
	if req.Tag != "" || req.Image != "" {
		return nil, requestf("deploy %s: --tag and --image are for image apps; a source app takes --source", app.Name)
	}
	if err := a.nameRelease(req); err != nil {
		return nil, err
	}
	// The local tree is scanned while the hosts are connected to, locked and their release cloned; each host
	// waits for the scan before it compares and sends. The hash cache is saved while they deploy, and again
	// after if Ship hashed files (one host).
	scanned, saved := make(chan struct{}), make(chan struct{})
	var m *ship.Manifest
	var scanErr error
	var cache *ship.HashCache
	hostCount := make(chan int, 1) // how many hosts the notice names, known once --only-failed has narrowed them
	oneHost := len(a.t.hosts) == 1
	go func() {
		defer close(saved)
		cache = ship.OpenHashCache(a.e.cfg.HashCache, a.opts.SourceDir)
		m, scanErr = ship.ScanApp(ctx, a.opts.SourceDir, app, cache, oneHost)
		if scanErr != nil {
			scanErr = fmt.Errorf("deploy %s: %w", app.Name, scanErr)
		} else {
			a.e.notice("deploying %s release %s (%d entries) to %d host(s)", app.Name, a.opts.ReleaseID, len(m.Entries), <-hostCount)
		}
		close(scanned)
		_ = cache.Save() // a cache that cannot be written only costs the next scan its time
	}()
	a.opts.Scan = func(ctx context.Context) (*ship.Manifest, error) {
		select {
		case <-scanned:
			return m, scanErr
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if req.OnlyFailed {
		a.narrowToFailed(ctx)
	}
	hostCount <- len(a.t.hosts)
	rep := a.rollout(ctx, req)
	if <-saved; scanErr != nil {
		return nil, scanErr
	}
	_ = cache.Save()
	return rep, nil
}

// nameRelease finds the source tree and names the release after the moment the deploy started (and the
// tree's git commit), before the scan, however long that takes.
func (a *appRun) nameRelease(req DeployRequest) error {
	app := a.t.app
	dir := req.Source
	if dir == "" {
		dir = app.Source
	}
	if dir == "" {
		return requestf("deploy %s: no source: set source in %s or pass --source", app.Name, a.e.cfg.Inventory.File)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return requestf("deploy %s: source %s is not a directory", app.Name, dir)
	}
	started := time.Now()
	rev, sha := req.Revision, gitShortSHA(dir)
	if rev == "" {
		rev = sha
	}
	a.opts.SourceDir, a.opts.Revision = dir, rev
	a.opts.ReleaseID = release.NewReleaseID(started, sha)
	return nil
}

// gitShortSHA returns the short commit of the checkout holding dir, or "" when it is not one.
func gitShortSHA(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	out, err := exec.Command("git", "-C", abs, "rev-parse", "--short=8", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// rollout deploys to every host of the run in the app's batches, then rolls the fleet back when asked and
// the rollout stopped.
func (a *appRun) rollout(ctx context.Context, req DeployRequest) *Report {
	f := a.flows()
	rep := a.each(ctx, "deploy", func(ctx context.Context, conn deploy.HostConn, host string) *deploy.Outcome {
		return f.deploy(ctx, conn, host)
	}, !req.RollbackFleet)
	if !req.RollbackFleet {
		return rep
	}
	if stopped(rep) {
		a.rollbackFleet(ctx, rep, f)
	}
	for _, r := range rep.Hosts {
		a.e.emit(Event{Kind: EventDone, Host: r.Host, Result: r})
	}
	return rep
}

// each runs job on every host of the run in the app's rollout batches. Each host's result goes to the sink
// as it finishes, and its connection is closed, unless final is false: then the caller sends them once it has
// settled them, and may still need the connections.
func (a *appRun) each(ctx context.Context, command string, job func(ctx context.Context, conn deploy.HostConn, host string) *deploy.Outcome, final bool) *Report {
	hosts := a.t.hosts
	rep := &Report{Command: command, App: a.t.app.Name, DryRun: a.e.cfg.DryRun, Hosts: make([]*HostResult, len(hosts))}
	errs := deploy.Rollout(ctx, len(hosts), a.t.app.Rollout, a.e.cfg.Parallel, func(ctx context.Context, i int) error {
		h := hosts[i]
		var conn *remote.Conn
		var err error
		if final {
			conn, err = a.e.hold(ctx, h)
			defer a.e.release(h)
		} else {
			conn, err = a.e.conn(ctx, h)
		}
		o := &deploy.Outcome{Host: h.Name, Err: err}
		if err == nil {
			o = job(ctx, conn, h.Name)
		}
		rep.Hosts[i] = a.result(o, o.Err, final)
		return o.Err
	})
	for i, r := range rep.Hosts {
		if r == nil {
			rep.Hosts[i] = a.result(&deploy.Outcome{Host: hosts[i].Name, Err: errs[i]}, errs[i], final)
		}
	}
	return rep
}

// result turns a host's outcome into its result.
func (a *appRun) result(o *deploy.Outcome, err error, send bool) *HostResult {
	r := &HostResult{Host: o.Host, Outcome: o}
	r.OK, r.Err, r.DurationMS = err == nil, err, o.Duration.Milliseconds()
	if err != nil {
		r.Error = err.Error()
	}
	if send {
		a.e.emit(Event{Kind: EventDone, Host: r.Host, Result: r})
	}
	return r
}

// stopped reports whether the rollout stopped before every batch ran.
func stopped(rep *Report) bool {
	for _, r := range rep.Hosts {
		if errors.Is(r.Err, deploy.ErrNotStarted) {
			return true
		}
	}
	return false
}

// rollbackFleet puts back the previous release on the hosts that took the new one in this run, so a stopped
// rollout does not leave the fleet split between two versions.
func (a *appRun) rollbackFleet(ctx context.Context, rep *Report, f flows) {
	for i, r := range rep.Hosts {
		o := r.Outcome
		if r.Err != nil || o.Before == "" || o.Before == o.After {
			continue
		}
		conn, err := a.e.conn(ctx, a.t.hosts[i])
		if err == nil {
			opts := *a.opts
			opts.To, opts.Force = o.Before, true
			back := f.rollback(ctx, conn, o.Host, &opts)
			err = back.Err
			if err == nil {
				o.After, o.RolledBack = back.After, true
			}
		}
		if err == nil {
			err = errors.New("the rollout stopped")
		}
		o.Err = fmt.Errorf("rolled back with the fleet: %w", err)
		r.OK, r.Err, r.Error = false, o.Err, o.Err.Error()
	}
}

// narrowToFailed keeps only the hosts that did not succeed in the app's last run: the run of the newest history
// entry across all the app's hosts. A host with no entry of that run (its batch never started, or it could not
// be reached) did not succeed either, and neither did one whose history cannot be read now.
func (a *appRun) narrowToFailed(ctx context.Context) {
	l := release.Layout{Path: a.t.app.Path}
	hosts := a.t.hosts
	hists := make([][]release.HistoryEntry, len(hosts))
	errs := deploy.ForEach(ctx, len(hosts), a.e.parallelOr(20), func(ctx context.Context, i int) error {
		conn, err := a.e.conn(ctx, hosts[i])
		if err == nil {
			hists[i], err = release.ReadHistory(ctx, conn, l)
		}
		return err
	})
	var last release.HistoryEntry
	for _, h := range hists {
		for _, e := range h {
			if e.Time.After(last.Time) {
				last = e
			}
		}
	}
	var keep []*inventory.Host
	for i, h := range hosts {
		if errs[i] != nil || !runSucceeded(hists[i], last.Run) {
			keep = append(keep, h)
		}
	}
	a.e.notice("--only-failed: %d of %d host(s) did not succeed in run %s", len(keep), len(hosts), orDash(last.Run))
	a.t.hosts = keep
}

// runSucceeded reports whether a host's history has entries of run, all of them succeeded, and the run left
// the host on what it deployed. A deploy that failed and rolled back by itself ends with a successful rollback
// entry of the same run, so looking at the last entry alone would call that run good; a deploy undone by
// --rollback-fleet is two successful entries of the run, but the host is back on the old release and was
// reported as failed, so it is deployed again too. A run of `skiff rollback` has no deploy to undo.
func runSucceeded(hist []release.HistoryEntry, run string) bool {
	seen, deployed, undone := false, false, false
	for _, e := range hist {
		if e.Run != run {
			continue
		}
		if e.Result != release.ResultOK {
			return false
		}
		seen = true
		switch e.Op {
		case release.ActionDeploy:
			deployed, undone = true, false
		case release.ActionRollback:
			undone = deployed
		}
	}
	return seen && !undone
}

// Rollback makes an earlier release of the request's app live again on its hosts, batch after batch.
func (e *Engine) Rollback(ctx context.Context, req RollbackRequest) (*Report, error) {
	a, err := e.newAppRun("rollback", req.App, req.Hosts, true)
	if err != nil {
		return nil, err
	}
	if a.t.app.Kind == inventory.KindImage {
		mode, err := compose.ParseMode(req.Compose)
		if err != nil {
			return nil, requestf("rollback %s: %v", a.t.app.Name, err)
		}
		a.img = &deploy.ImageOptions{Compose: mode}
	}
	a.opts.To, a.opts.Force = req.To, req.Force
	f := a.flows()
	return a.each(ctx, "rollback", func(ctx context.Context, conn deploy.HostConn, host string) *deploy.Outcome {
		return f.rollback(ctx, conn, host, a.opts)
	}, true), nil
}
