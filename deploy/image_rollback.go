package deploy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/skiffdeploy/skiff/compose"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
)

// RollbackImage makes an earlier image of the app live again on one host: opts.To (a history id, a digest
// or a unique digest prefix), or the image that was live before the current one. It pins that exact digest,
// so it works after the tag has moved on, and it refuses, naming the image, when the image is no longer on
// the host. A release that history marks as failed is refused unless opts.Force. When the image it goes back
// to fails its checks, the one that was live is put back.
func RollbackImage(ctx context.Context, c HostConn, app *inventory.App, host string, opts *Options, img *ImageOptions) *Outcome {
	r := newImageRun(c, app, host, opts, img)
	return r.locked(ctx, "rollback", r.rollbackImage)
}

func (r *imageRun) rollbackImage(ctx context.Context) error {
	hist, live, err := r.readLive(ctx)
	if err != nil {
		return err
	}
	to, err := ImageRollbackTarget(hist, idOf(live), r.opts.To, r.opts.Force)
	if err != nil {
		return err
	}
	if err := r.requirePresent(ctx, to); err != nil {
		return err
	}
	if err := r.detect(ctx); err != nil {
		return err
	}
	r.logf("rolling back %s -> %s (%s)", orNone(idOf(live)), to.ID, to)
	if err := r.activate(ctx, to, true); err != nil {
		entry := to.entry(release.ActionRollback, release.ResultFailed, idOf(live))
		entry.Error = err.Error()
		if live == nil {
			r.out.After, r.out.Image.After = to.ID, &to
			return errors.Join(err, r.history(ctx, entry))
		}
		bctx, cancel := switchBackCtx(ctx, r.app)
		defer cancel()
		back := r.activate(bctx, *live, true)
		if back != nil {
			r.out.After, r.out.Image.After = to.ID, &to
			return errors.Join(err, fmt.Errorf("putting %s back also failed: %w", live.ID, back), r.history(ctx, entry))
		}
		return errors.Join(fmt.Errorf("%w (%s put back)", err, live.ID), r.history(ctx, entry))
	}
	r.out.After, r.out.Image.After = to.ID, &to
	return r.history(ctx, to.entry(release.ActionRollback, release.ResultOK, idOf(live)))
}

// requirePresent refuses a rollback to an image that is no longer on the host: skiff does not pull on a
// rollback, whose point is to go back to exactly what ran before, without depending on the registry.
func (r *imageRun) requirePresent(ctx context.Context, rel ImageRelease) error {
	argv, err := compose.InspectImage(rel.Ref())
	if err != nil {
		return err
	}
	_, err = r.c.Run(ctx, remote.Command{Argv: argv, ReadOnly: true})
	var ee *remote.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("image %s (release %s, tag %s) is no longer on the host, so it cannot be rolled back to; deploy it again with --image %s",
			rel.Ref(), rel.ID, orNone(rel.Tag), rel.Ref())
	}
	return err
}

// ImageRollbackTarget picks the release an image rollback goes to. to may be a history id, a digest
// ("sha256:…") or a prefix of one of at least 7 hex digits; without to it is the release that was live before
// cur, as for source apps (RollbackTarget).
func ImageRollbackTarget(hist []release.HistoryEntry, cur, to string, force bool) (ImageRelease, error) {
	var ids []string
	latest := map[string]release.HistoryEntry{}
	for _, e := range hist {
		if e.Digest == "" || e.ID == "" {
			continue
		}
		if _, seen := latest[e.ID]; !seen {
			ids = append(ids, e.ID)
		}
		latest[e.ID] = e
	}
	sort.Strings(ids)
	if strings.HasPrefix(to, "sha256:") {
		id, err := idForDigest(hist, to)
		if err != nil {
			return ImageRelease{}, err
		}
		to = id
	} else if to != "" {
		if _, ok := latest[to]; !ok {
			if !release.ValidReleaseID(to) {
				return ImageRelease{}, fmt.Errorf("--to %q is neither a release id (like 20261122T101500Z-0123456789ab) nor a digest (sha256:…)", to)
			}
			return ImageRelease{}, fmt.Errorf("release %s is not in the app's history on the host (have %v)", to, ids)
		}
	}
	id, err := RollbackTarget(ids, hist, cur, to, force)
	if err != nil {
		return ImageRelease{}, err
	}
	return releaseOf(latest[id])
}

// idForDigest finds the newest release of a digest, or of the one digest that starts with prefix.
func idForDigest(hist []release.HistoryEntry, prefix string) (string, error) {
	hex := strings.TrimPrefix(prefix, "sha256:")
	if len(hex) < 7 || strings.Trim(hex, "0123456789abcdef") != "" {
		return "", fmt.Errorf("--to %q: a digest needs at least 7 lower-case hex digits after sha256:", prefix)
	}
	digests := map[string]string{}
	for _, e := range hist {
		if e.ID != "" && strings.HasPrefix(e.Digest, prefix) {
			digests[e.Digest] = e.ID
		}
	}
	switch len(digests) {
	case 0:
		return "", fmt.Errorf("no release of digest %s in the app's history on the host", prefix)
	case 1:
		for _, id := range digests {
			return id, nil
		}
	}
	return "", fmt.Errorf("digest prefix %s is ambiguous (%d digests); give more digits", prefix, len(digests))
}

// ImageReleaseInfo is one image release of an app on a host as `skiff releases` shows it.
type ImageReleaseInfo struct {
	ImageRelease
	Live    bool `json:"live"`
	Failed  bool `json:"failed"`
	Present bool `json:"present"` // the image is still on the host: a rollback to it is possible
}

// ImageReleases lists the app's image releases on a host from its history, oldest first, with whether each
// is live, failed and still on the host, and returns the history too.
func ImageReleases(ctx context.Context, c HostConn, app *inventory.App) ([]ImageReleaseInfo, []release.HistoryEntry, error) {
	l := release.Layout{Path: app.Path}
	hist, err := release.ReadHistory(ctx, c, l)
	if err != nil {
		return nil, nil, err
	}
	live, err := LiveImage(hist)
	if err != nil {
		return nil, nil, err
	}
	res, err := c.Run(ctx, remote.Command{Argv: compose.ImageList(), ReadOnly: true})
	if err != nil {
		return nil, nil, fmt.Errorf("list images: %w", err)
	}
	images, err := compose.ParseImageList(res.Stdout)
	if err != nil {
		return nil, nil, err
	}
	present := map[string]bool{}
	for _, im := range images {
		if im.Repository != "" && im.Digest != "" {
			present[imageKey(im.Repository, im.Digest)] = true
		}
	}
	failed := release.FailedIDs(hist)
	var out []ImageReleaseInfo
	index := map[string]int{}
	for _, e := range hist {
		if e.Digest == "" || e.ID == "" {
			continue
		}
		rel, err := releaseOf(e)
		if err != nil {
			return nil, nil, err
		}
		info := ImageReleaseInfo{ImageRelease: rel, Live: live != nil && live.ID == rel.ID, Failed: failed[rel.ID], Present: present[imageKey(rel.Image, rel.Digest)]}
		if i, ok := index[rel.ID]; ok {
			out[i] = info
			continue
		}
		index[rel.ID] = len(out)
		out = append(out, info)
	}
	return out, hist, nil
}

// imageKey identifies a repository digest whatever Docker Hub spelling names the repository.
func imageKey(repo, digest string) string {
	return compose.Reference{Repository: compose.Familiar(repo), Digest: digest}.String()
}

// ImageState is what `skiff status` reports for an image app on one host.
type ImageState struct {
	// Live is the release history says is live.
	Live *ImageRelease `json:"live,omitempty"`
	// Pinned is the reference skiff.override.yaml pins the service to.
	Pinned string `json:"pinned,omitempty"`
	// Containers are the service's containers.
	Containers []compose.Container `json:"containers"`
}

// ImageStatus reads an image app's live release, pinned image and containers on a host. It changes nothing.
func ImageStatus(ctx context.Context, c HostConn, app *inventory.App) (*ImageState, error) {
	l := release.Layout{Path: app.Path}
	hist, err := release.ReadHistory(ctx, c, l)
	if err != nil {
		return nil, err
	}
	st := &ImageState{}
	if st.Live, err = LiveImage(hist); err != nil {
		return nil, err
	}
	read := remote.Script(`[ -f "$1" ] && cat "$1" || true`, l.Path+"/"+compose.OverrideFile)
	read.ReadOnly = true
	res, err := c.Run(ctx, read)
	if err != nil {
		return nil, fmt.Errorf("read override: %w", err)
	}
	if len(res.Stdout) > 0 {
		if _, ref, err := compose.ParseOverride(res.Stdout); err == nil {
			st.Pinned = ref.String()
		}
	}
	st.Containers, err = ServiceContainers(ctx, c, compose.ProjectName(app.Path), app.Service)
	return st, err
}
