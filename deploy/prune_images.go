package deploy

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/skiffdeploy/skiff/compose"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
)

// pruneImages removes the images no image app on the host needs, then the compose snapshots of the pruned
// apps' releases whose images are no longer kept.
func (p *pruner) pruneImages(ctx context.Context, all, targets []*inventory.App) error {
	policy := ImagePolicy{Now: time.Now()}
	hists := map[string][]release.HistoryEntry{}
	kept := map[string][]ImageRelease{}
	for _, app := range all {
		if app.Kind != inventory.KindImage {
			continue
		}
		hist, err := release.ReadHistory(ctx, p.c, release.Layout{Path: app.Path})
		if err != nil {
			return fmt.Errorf("app %s: %w", app.Name, err)
		}
		rels, err := KeptImages(hist, app.KeepImages)
		if err != nil {
			return fmt.Errorf("app %s: %w", app.Name, err)
		}
		for _, rel := range rels {
			policy.Keep = append(policy.Keep, KeptRelease{App: app.Name, ImageRelease: rel})
		}
		hists[app.Name], kept[app.Name] = hist, rels
		policy.MinAge = max(policy.MinAge, app.Prune.MinAge.Duration)
	}
	for _, app := range targets {
		ref, err := compose.ParseReference(app.Image)
		if err != nil {
			return fmt.Errorf("app %s: image: %w", app.Name, err)
		}
		policy.Repositories = append(policy.Repositories, ref.Repository)
	}
	host, err := p.hostImages(ctx)
	if err != nil {
		return err
	}
	remove, keep := PlanImages(host, policy)
	p.rep.Kept = keep
	for _, k := range keep {
		p.logf("keeping image %s %s: %s", shortDigest(k.ID), refsText(k.Refs), k.Reason)
	}
	if err := p.sizes(ctx, remove); err != nil {
		return err
	}
	for _, im := range remove {
		if err := p.removeImage(ctx, im); err != nil {
			return err
		}
	}
	var errs []error
	for _, app := range targets {
		if err := p.pruneSnapshots(ctx, app, hists[app.Name], kept[app.Name]); err != nil {
			errs = append(errs, fmt.Errorf("app %s: %w", app.Name, err))
		}
	}
	return errors.Join(errs...)
}

// hostImages lists the host's images, the dangling ones and those that containers use.
func (p *pruner) hostImages(ctx context.Context) (HostImages, error) {
	var h HostImages
	out, err := p.query(ctx, compose.ImageList())
	if err != nil {
		return h, fmt.Errorf("list images: %w", err)
	}
	if h.Images, err = compose.ParseImageList(out); err != nil {
		return h, err
	}
	if out, err = p.query(ctx, compose.DanglingImages()); err != nil {
		return h, fmt.Errorf("list dangling images: %w", err)
	}
	dangling, err := compose.ParseImageIDs(out)
	if err != nil {
		return h, err
	}
	h.Dangling = setOf(dangling)
	if out, err = p.query(ctx, compose.AllContainers()); err != nil {
		return h, fmt.Errorf("list containers: %w", err)
	}
	ids, err := compose.ParseIDs(out)
	if err != nil || len(ids) == 0 {
		h.InUse = map[string]bool{}
		return h, err
	}
	argv, err := compose.ContainerImages(ids)
	if err != nil {
		return h, err
	}
	res, err := p.c.Run(ctx, remote.Command{Argv: argv, ReadOnly: true})
	if err != nil && !onlyVanished(err) {
		return h, fmt.Errorf("inspect containers: %w", err)
	}
	used, err := compose.ParseContainerImages(res.Stdout)
	if err != nil {
		return h, err
	}
	h.InUse = map[string]bool{}
	for _, img := range used {
		h.InUse[img] = true
	}
	return h, nil
}

// onlyVanished reports whether docker inspect failed only because containers listed a moment before were
// removed since: it still printed the others, and a container that is gone uses no image.
func onlyVanished(err error) bool {
	var exit *remote.ExitError
	if !errors.As(err, &exit) || exit.Status != 1 || exit.Stderr == "" {
		return false
	}
	for _, line := range strings.Split(strings.TrimSpace(exit.Stderr), "\n") {
		if !strings.Contains(line, "No such container") {
			return false
		}
	}
	return true
}

// query runs a command that changes nothing (also in a dry run) and returns its standard output.
func (p *pruner) query(ctx context.Context, argv []string) ([]byte, error) {
	res, err := p.c.Run(ctx, remote.Command{Argv: argv, ReadOnly: true})
	if err != nil {
		return nil, err
	}
	return res.Stdout, nil
}

func setOf(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, s := range list {
		m[s] = true
	}
	return m
}

// sizes fills in the size of each image. An image that went away in the meantime keeps size 0.
func (p *pruner) sizes(ctx context.Context, images []PrunedImage) error {
	if len(images) == 0 {
		return nil
	}
	ids := make([]string, len(images))
	for i, im := range images {
		ids[i] = im.ID
	}
	argv, err := compose.ImageSizes(ids)
	if err != nil {
		return err
	}
	res, err := p.c.Run(ctx, remote.Command{Argv: argv, ReadOnly: true})
	var ee *remote.ExitError
	if err != nil && !errors.As(err, &ee) {
		return fmt.Errorf("inspect images: %w", err)
	}
	sizes, perr := compose.ParseImageSizes(res.Stdout)
	if perr != nil {
		return perr
	}
	for i := range images {
		images[i].Size = sizes[images[i].ID]
	}
	return nil
}

// removeImage removes one image by id. Docker refusing it (in use since the listing, named elsewhere) is
// reported in Refused; only a failure to reach Docker at all is an error.
func (p *pruner) removeImage(ctx context.Context, im PrunedImage) error {
	argv, err := compose.RemoveImage(im.ID)
	if err != nil {
		return err
	}
	desc := fmt.Sprintf("image %s %s, %s, created %s", shortDigest(im.ID), refsText(im.Refs), HumanSize(im.Size), createdText(im.Created))
	p.logf("%s %s", p.verb(), desc)
	_, err = p.c.Run(ctx, remote.Command{Argv: argv})
	var ee *remote.ExitError
	if errors.As(err, &ee) {
		im.Error = oneLineOf(ee.Stderr)
		if im.Error == "" {
			im.Error = ee.Error()
		}
		p.rep.Refused = append(p.rep.Refused, im)
		p.logf("docker refused to remove %s: %s", desc, im.Error)
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove image %s: %w", im.ID, err)
	}
	p.rep.Images = append(p.rep.Images, im)
	p.rep.Bytes += im.Size
	return nil
}

// removeSnapshotsScript removes the compose snapshots $2… (release ids) from directory $1.
const removeSnapshotsScript = `set -e; cd "$1"; shift; for id in "$@"; do rm -f "./$id.yaml"; done`

// pruneSnapshots removes the compose file snapshots of an image app's releases whose images are not kept:
// a rollback to them is no longer possible.
func (p *pruner) pruneSnapshots(ctx context.Context, app *inventory.App, hist []release.HistoryEntry, kept []ImageRelease) error {
	dir := path.Join(release.Layout{Path: app.Path}.SkiffDir(), "compose")
	have, err := release.ListIDs(ctx, p.c, dir, "-f", ".yaml")
	if err != nil {
		return err
	}
	keep := keptIDs(hist, kept)
	var remove []string
	for id := range have {
		if !keep[id] {
			remove = append(remove, id)
		}
	}
	if len(remove) == 0 {
		return nil
	}
	sort.Strings(remove)
	for _, id := range remove {
		p.logf("%s %s compose snapshot %s (%s)", p.verb(), app.Name, id, ReasonImageGone)
	}
	if err := p.run(ctx, remote.Script(removeSnapshotsScript, append([]string{dir}, remove...)...)); err != nil {
		return fmt.Errorf("remove compose snapshots: %w", err)
	}
	for _, id := range remove {
		p.rep.Snapshots = append(p.rep.Snapshots, PrunedRelease{App: app.Name, ID: id, Reason: ReasonImageGone})
	}
	return nil
}
