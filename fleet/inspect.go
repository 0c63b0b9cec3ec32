package fleet

import (
	"context"
	"fmt"

	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
	"github.com/skiffdeploy/skiff/supervisor"
)

// AppRequest names an app and, optionally, a narrower set of its hosts.
type AppRequest struct {
	App   string
	Hosts Selection
}

// inspect runs a read-only job on every host of the request's app, up to Parallel (default 20) at once.
func (e *Engine) inspect(ctx context.Context, command string, req AppRequest, secrets bool, job func(ctx context.Context, app *inventory.App, conn *remote.Conn, r *HostResult) error) (*Report, error) {
	a, err := e.newAppRun(command, req.App, req.Hosts, secrets)
	if err != nil {
		return nil, err
	}
	rep := e.onHosts(ctx, command, a.t.hosts, e.parallelOr(20), func(ctx context.Context, h *inventory.Host, conn *remote.Conn, r *HostResult) error {
		return job(ctx, a.t.app, conn, r)
	}, a.t.app.Timeout.Duration)
	rep.App = a.t.app.Name
	return rep, nil
}

// Releases lists the app's releases and history on each host.
func (e *Engine) Releases(ctx context.Context, req AppRequest) (*Report, error) {
	return e.inspect(ctx, "releases", req, false, func(ctx context.Context, app *inventory.App, conn *remote.Conn, r *HostResult) error {
		if app.Kind == inventory.KindImage {
			return imageReleases(ctx, app, conn, r)
		}
		return sourceReleases(ctx, app, conn, r)
	})
}

func sourceReleases(ctx context.Context, app *inventory.App, conn *remote.Conn, r *HostResult) error {
	l := release.Layout{Path: app.Path}
	cur, err := release.ReadCurrent(ctx, conn, l)
	if err != nil {
		return err
	}
	ids, err := release.ListReleases(ctx, conn, l)
	if err != nil {
		return err
	}
	hist, err := release.ReadHistory(ctx, conn, l)
	if err != nil {
		return err
	}
	complete, err := release.CompleteReleases(ctx, conn, l)
	if err != nil {
		return err
	}
	failed := release.FailedIDs(hist)
	for _, id := range ids {
		info := ReleaseInfo{ID: id, Current: id == cur, Failed: failed[id], Incomplete: !complete[id]}
		if complete[id] {
			if info.Builds, err = deploy.ReadReleaseBuilds(ctx, conn, l, id); err != nil {
				return err
			}
		}
		r.Releases = append(r.Releases, info)
	}
	r.History = hist
	return nil
}

func imageReleases(ctx context.Context, app *inventory.App, conn *remote.Conn, r *HostResult) error {
	rels, hist, err := deploy.ImageReleases(ctx, conn, app)
	if err != nil {
		return err
	}
	for _, rel := range rels {
		present := rel.Present
		r.Releases = append(r.Releases, ReleaseInfo{ID: rel.ID, Current: rel.Live, Failed: rel.Failed, Tag: rel.Tag, Image: rel.Image, Digest: rel.Digest, Present: &present})
	}
	r.History = hist
	return nil
}

// Status reports the app's live release, its processes or containers, its lock and its checks on each host.
// A host whose check fails, or whose containers do not all run, has failed.
func (e *Engine) Status(ctx context.Context, req AppRequest) (*Report, error) {
	return e.inspect(ctx, "status", req, true, func(ctx context.Context, app *inventory.App, conn *remote.Conn, r *HostResult) error {
		st := &AppStatus{}
		r.Status = st
		l := release.Layout{Path: app.Path}
		if app.Kind == inventory.KindImage {
			img, err := deploy.ImageStatus(ctx, conn, app)
			if err != nil {
				return err
			}
			st.Image = img
			if img.Live != nil {
				st.Current = img.Live.ID
			}
		} else {
			cur, err := release.ReadCurrent(ctx, conn, l)
			if err != nil {
				return err
			}
			st.Current = cur
			if sup := app.Supervisor; sup.URL != "" {
				if st.Processes, err = e.programStates(ctx, conn, sup); err != nil {
					return err
				}
			}
		}
		if held, err := release.LockStatus(ctx, conn, l, app.Timeout.Duration); err == nil && held != nil {
			st.Lock = held.Error()
		}
		if err := deploy.CheckApp(ctx, conn, app.Check); err != nil {
			st.CheckErr = err.Error()
		} else {
			st.CheckOK = true
		}
		return statusErr(app, st)
	})
}

// statusErr is the failure a status shows: a failed check, or an image app's service not running.
func statusErr(app *inventory.App, st *AppStatus) error {
	if st.Image == nil {
		if !st.CheckOK {
			return fmt.Errorf("current %s: %s", orDash(st.Current), st.CheckErr)
		}
		return nil
	}
	live := "-"
	if st.Image.Live != nil {
		live = st.Image.Live.String()
	}
	if !st.CheckOK {
		return fmt.Errorf("live %s: %s", live, st.CheckErr)
	}
	if len(st.Image.Containers) == 0 {
		return fmt.Errorf("live %s: service %s has no container", live, app.Service)
	}
	for _, ctr := range st.Image.Containers {
		if ctr.Status != "running" || ctr.Health == "unhealthy" {
			return fmt.Errorf("container %s (%s) is %s", ctr.Short(), ctr.Name, trimJoin(ctr.Status, ctr.Health))
		}
	}
	return nil
}

func trimJoin(a, b string) string {
	if b == "" {
		return a
	}
	return a + " " + b
}

// programStates reads the state of the app's programs from supervisord through the connection.
func (e *Engine) programStates(ctx context.Context, conn *remote.Conn, sup inventory.Supervisor) ([]ProcessStatus, error) {
	opts := supervisor.Options{Username: sup.Username}
	if sup.PasswordEnv != "" {
		opts.Password = e.cfg.Secret(sup.PasswordEnv)
	}
	client, err := supervisor.New(conn, sup.URL, opts)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	names, err := client.Resolve(ctx, sup.Programs)
	if err != nil {
		return nil, err
	}
	var out []ProcessStatus
	for _, n := range names {
		p, err := client.Process(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, ProcessStatus{Name: n, State: string(p.State), PID: p.PID})
	}
	return out, nil
}

// Lock reports who holds the app's deploy lock on each host; with remove, it removes the lock it inspected
// (not in a dry run) and says what it held. A lock younger than the app's timeout, or one without an owner,
// is removed only with force: its run may still be going.
func (e *Engine) Lock(ctx context.Context, req AppRequest, remove, force bool) (*Report, error) {
	return e.locks(ctx, req, func(*release.LockedError) (bool, bool) { return remove, force })
}

// ReleaseStaleLock removes the app's lock on each host where it is older than the app's timeout and held by
// origin: what a run of that origin left when it was killed (`skiff serve` after a SIGKILL). A lock of any
// other run, or one not stale yet, stays and is reported in Lock.
func (e *Engine) ReleaseStaleLock(ctx context.Context, req AppRequest, origin string) (*Report, error) {
	return e.locks(ctx, req, func(held *release.LockedError) (bool, bool) {
		return held.Owner != nil && held.Owner.Origin == origin && held.Stale, true
	})
}

// locks inspects the app's lock on each host and removes the one it inspected where decide says so (never in
// a dry run); a lock that stays is reported in Lock, a removed one in Released.
func (e *Engine) locks(ctx context.Context, req AppRequest, decide func(held *release.LockedError) (remove, force bool)) (*Report, error) {
	return e.inspect(ctx, "lock", req, false, func(ctx context.Context, app *inventory.App, conn *remote.Conn, r *HostResult) error {
		held, err := release.LockStatus(ctx, conn, release.Layout{Path: app.Path}, app.Timeout.Duration)
		if err != nil || held == nil {
			return err
		}
		remove, force := decide(held)
		if !remove || e.cfg.DryRun {
			r.Lock = held.Error()
			return nil
		}
		if err := release.ReleaseInspected(ctx, conn, held, app.Timeout.Duration, force); err != nil {
			return err
		}
		r.Released = held.Error()
		return nil
	})
}

// PruneRequest asks to prune the selected hosts, or only App's hosts and App itself.
type PruneRequest struct {
	App   string
	Hosts Selection
}

// Prune removes unused docker images and old releases beyond retention on each host (see deploy.Prune).
func (e *Engine) Prune(ctx context.Context, req PruneRequest) (*Report, error) {
	var hosts []*inventory.Host
	if req.App != "" {
		a, err := e.newAppRun("prune", req.App, req.Hosts, false)
		if err != nil {
			return nil, err
		}
		hosts = a.t.hosts
	} else {
		var err error
		if hosts, err = e.selectHosts(req.Hosts); err != nil {
			return nil, err
		}
	}
	opts := e.options()
	rep := e.onHosts(ctx, "prune", hosts, e.parallelOr(20), func(ctx context.Context, h *inventory.Host, conn *remote.Conn, r *HostResult) error {
		scope := deploy.PruneScope{Apps: deploy.HostApps(e.cfg.Inventory, h.Name), Only: req.App}
		r.Pruned = deploy.Prune(ctx, conn, h.Name, scope, opts)
		return r.Pruned.Err
	}, 0) // Prune bounds itself by each app's timeout
	rep.App = req.App
	return rep, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
