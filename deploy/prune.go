package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/skiffdeploy/skiff/compose"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
)

// PruneScope says what a prune covers on one host.
type PruneScope struct {
	// Apps are every app of the inventory deployed to the host (HostApps). Images are shared by the whole
	// host, so the releases of all its image apps are kept, whichever app is pruned.
	Apps []*inventory.App
	// Only, when set, names the one app of Apps to prune: only its lock is taken, and only its releases, or
	// the images of its repository (and dangling ones), are removed.
	Only string
}

// targets returns the apps to lock and prune, and the other apps to lock: with Only an image app, the image
// apps that deploy its repository, whose images the prune removes too.
func (s PruneScope) targets() (prune, lockAlso []*inventory.App, err error) {
	if s.Only == "" {
		return s.Apps, nil, nil
	}
	for _, a := range s.Apps {
		if a.Name == s.Only {
			return []*inventory.App{a}, sameRepository(a, s.Apps), nil
		}
	}
	return nil, nil, fmt.Errorf("app %s is not deployed to this host", s.Only)
}

// sameRepository returns the image apps of apps other than app that deploy app's image repository.
func sameRepository(app *inventory.App, apps []*inventory.App) []*inventory.App {
	if app.Kind != inventory.KindImage {
		return nil
	}
	mine, err := compose.ParseReference(app.Image)
	if err != nil {
		return nil
	}
	var out []*inventory.App
	for _, o := range apps {
		if o == app || o.Kind != inventory.KindImage {
			continue
		}
		if theirs, err := compose.ParseReference(o.Image); err == nil && compose.SameRepository(theirs.Repository, mine.Repository) {
			out = append(out, o)
		}
	}
	return out
}

// HostApps returns the apps of the inventory that are deployed to host, sorted by name.
func HostApps(inv *inventory.Inventory, host string) []*inventory.App {
	var apps []*inventory.App
	for _, name := range slices.Sorted(maps.Keys(inv.Apps)) {
		app := inv.Apps[name]
		if hosts, err := inv.AppHosts(app, []string{host}); err == nil && len(hosts) > 0 {
			apps = append(apps, app)
		}
	}
	return apps
}

// PruneReport is what a prune removed on one host, or would remove in a dry run.
type PruneReport struct {
	DryRun bool `json:"dry_run"`
	// Images are the images removed (in a dry run: that would be removed).
	Images []PrunedImage `json:"images"`
	// Refused are the images Docker would not remove, usually because a container started using them.
	Refused []PrunedImage `json:"refused,omitempty"`
	// Kept are the images prune considered and kept, with the reason.
	Kept []KeptImage `json:"kept,omitempty"`
	// Releases are the release directories of source apps removed.
	Releases []PrunedRelease `json:"releases,omitempty"`
	// Builds are the builds of source apps removed (ID is "<name>-<key>"): no kept release links them.
	Builds []PrunedRelease `json:"builds,omitempty"`
	// Snapshots are the compose file snapshots (<path>/.skiff/compose/<id>.yaml) of image apps removed.
	Snapshots []PrunedRelease `json:"compose_snapshots,omitempty"`
	// Bytes is the sum of the sizes of Images: the most disk space their removal frees, since images share
	// layers with each other.
	Bytes int64 `json:"bytes_reclaimed_up_to"`
	// ImagesSkipped says why images were not looked at ("" when they were, or the host has no image app).
	ImagesSkipped string        `json:"images_skipped,omitempty"`
	Duration      time.Duration `json:"-"`
	Err           error         `json:"-"`
}

// pruner is one prune on one host.
type pruner struct {
	c    HostConn
	host string
	opts *Options
	rep  *PruneReport
}

func (p *pruner) logf(format string, args ...any) {
	if p.opts.Log != nil {
		p.opts.Log(p.host, fmt.Sprintf(format, args...))
	}
}

// Prune removes, on one host, what retention no longer needs: under the lock of every app it prunes (op
// "prune"), the release directories of source apps beyond keep_releases and those a killed deploy left
// incomplete (never the current or the previous one) and the builds no kept release links, and the images of
// image apps that no container uses, that are not the image of the live release or of the keep_images
// releases before it of any image app on the host, and that are older than the largest prune.min_age;
// dangling images go too. Images of other
// repositories are left alone. A held lock fails the host with a *LockedError and keeps everything of that
// app; when an image app's lock is held no image is removed at all, since images are shared by the host.
// An image Docker refuses to remove is reported, not an error. Apps never deployed to the host are skipped.
// In a dry run nothing is locked or removed (a held lock still fails), and the report lists exactly what a
// real run would remove.
func Prune(ctx context.Context, c HostConn, host string, scope PruneScope, opts *Options) *PruneReport {
	start := time.Now()
	var limit time.Duration
	for _, a := range scope.Apps {
		limit = max(limit, a.Timeout.Duration)
	}
	if limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit) // the longest app timeout of the host bounds its prune
		defer cancel()
	}
	p := &pruner{c: forRun(c, host, opts), host: host, opts: opts, rep: &PruneReport{DryRun: opts.DryRun, Images: []PrunedImage{}}}
	p.rep.Err = p.prune(ctx, scope)
	p.rep.Duration = time.Since(start)
	return p.rep
}

func (p *pruner) prune(ctx context.Context, scope PruneScope) error {
	targets, also, err := scope.targets()
	if err == nil {
		targets, err = p.deployed(ctx, targets)
	}
	if err == nil {
		also, err = p.deployed(ctx, also)
	}
	if err != nil {
		return err
	}
	var errs []error
	var locks []*release.Lock
	blocked := map[string]bool{}
	for _, app := range append(append([]*inventory.App(nil), targets...), also...) {
		lk, err := p.lock(ctx, app)
		if err != nil {
			blocked[app.Name] = true
			errs = append(errs, fmt.Errorf("app %s: %w", app.Name, err))
			continue
		}
		if lk != nil {
			locks = append(locks, lk)
		}
	}
	var images []*inventory.App
	imagesBlocked := false
	for _, app := range also {
		imagesBlocked = imagesBlocked || blocked[app.Name]
	}
	for _, app := range targets {
		switch {
		case app.Kind == inventory.KindImage:
			images = append(images, app)
			imagesBlocked = imagesBlocked || blocked[app.Name]
		case !blocked[app.Name]:
			if err := p.pruneReleases(ctx, app); err != nil {
				errs = append(errs, fmt.Errorf("app %s: %w", app.Name, err))
			}
		}
	}
	switch {
	case len(images) == 0:
	case imagesBlocked:
		p.rep.ImagesSkipped = "the lock of an image app on the host could not be taken"
		p.logf("no image removed: %s", p.rep.ImagesSkipped)
	default:
		if err := p.pruneImages(ctx, scope.Apps, images); err != nil {
			errs = append(errs, fmt.Errorf("images: %w", err))
		}
	}
	for _, lk := range locks {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
		if err := lk.Release(uctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	return errors.Join(errs...)
}

// deployedScript prints which of the app directories $@ skiff has deployed to (they have a .skiff directory).
const deployedScript = `for d in "$@"; do [ -d "$d/.skiff" ] && printf '%s\n' "$d"; done; exit 0`

// deployed keeps the apps that were deployed to the host. An app that never was has nothing to prune, and
// taking its lock would create its directory; the images of its repository stay until its first deploy.
func (p *pruner) deployed(ctx context.Context, apps []*inventory.App) ([]*inventory.App, error) {
	if len(apps) == 0 {
		return nil, nil
	}
	dirs := make([]string, len(apps))
	for i, a := range apps {
		dirs[i] = a.Path
	}
	cmd := remote.Script(deployedScript, dirs...)
	cmd.ReadOnly = true
	res, err := p.c.Run(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("look for the apps' directories: %w", err)
	}
	found := setOf(strings.Split(string(res.Stdout), "\n"))
	var out []*inventory.App
	for _, a := range apps {
		if found[a.Path] {
			out = append(out, a)
		} else {
			p.logf("app %s was never deployed here: nothing to prune", a.Name)
		}
	}
	return out, nil
}

// lock takes the app's lock; a dry run only checks that it is free, so that it fails where a real run would.
func (p *pruner) lock(ctx context.Context, app *inventory.App) (*release.Lock, error) {
	return lockApp(ctx, p.c, p.opts, app, "prune")
}

// run runs a command that removes something (a dry run shows it, see dryConn).
func (p *pruner) run(ctx context.Context, cmd remote.Command) error {
	_, err := p.c.Run(ctx, cmd)
	return err
}

// pruneReleases removes a source app's releases beyond retention and the incomplete ones.
func (p *pruner) pruneReleases(ctx context.Context, app *inventory.App) error {
	l := release.Layout{Path: app.Path}
	ids, err := release.ListReleases(ctx, p.c, l)
	if err != nil || len(ids) == 0 {
		return err
	}
	cur, err := release.ReadCurrent(ctx, p.c, l)
	if err != nil {
		return err
	}
	hist, err := release.ReadHistory(ctx, p.c, l)
	if err != nil {
		return err
	}
	complete, err := release.ListIDs(ctx, p.c, l.Manifests(), "-f", "")
	if err != nil {
		return err
	}
	plan := PlanReleases(app.Name, ids, complete, cur, previousRelease(release.OnlyComplete(ids, complete), hist, cur), release.FailedIDs(hist), app.KeepReleases)
	remove := make([]string, len(plan))
	for i, r := range plan {
		remove[i] = r.ID
		p.logf("%s %s release %s (%s)", p.verb(), app.Name, r.ID, r.Reason)
	}
	if len(remove) > 0 {
		if err := p.run(ctx, release.RemoveReleasesCommand(l, remove)); err != nil {
			return fmt.Errorf("remove releases: %w", err)
		}
		p.rep.Releases = append(p.rep.Releases, plan...)
	}
	unused, err := UnusedBuilds(ctx, p.c, l, keptAfter(ids, remove))
	if err != nil || len(unused) == 0 {
		return err
	}
	for _, ref := range unused {
		p.logf("%s %s build %s (%s)", p.verb(), app.Name, ref, ReasonUnusedBuild)
		p.rep.Builds = append(p.rep.Builds, PrunedRelease{App: app.Name, ID: ref, Reason: ReasonUnusedBuild})
	}
	if err := p.run(ctx, RemoveBuildsCommand(l, unused)); err != nil {
		return fmt.Errorf("remove builds: %w", err)
	}
	return nil
}

func (p *pruner) verb() string {
	if p.opts.DryRun {
		return "would remove"
	}
	return "removing"
}
