package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"

	"github.com/skiffdeploy/skiff/compose"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/release"
)

// Container is a container of an image app's service, as docker inspect describes it.
type Container = compose.Container

// maxComposeFile bounds the local compose file an image app uploads.
const maxComposeFile = 1 << 20

// ImageOptions are what an image deploy or rollback knows beyond Options. NewImageOptions fills them in
// once per run, before any host is touched, so that a bad tag or a missing password is a usage error.
type ImageOptions struct {
	// Ref is the image to deploy: repository and tag, or repository and digest. Rollbacks ignore it.
	Ref compose.Reference
	// Registry is the registry to log in to before pulling, or nil.
	Registry *inventory.Registry
	// Compose picks the compose flavour on the hosts (auto, or forced to plugin or standalone).
	Compose compose.Mode
	// ComposeYAML is the app's local compose file (compose_file), uploaded to <path>/compose.yaml on every
	// deploy; nil when the hosts already have theirs.
	ComposeYAML []byte
}

// NewImageOptions resolves what an image app's deploy needs from the inventory and the command line: the
// reference to pull (--tag TAG on the app's image, or --image REF), the registry and its password, and the
// compose file. mode is auto, plugin or standalone ("" is auto).
func NewImageOptions(inv *inventory.Inventory, app *inventory.App, tag, image, mode string, secret func(string) string) (*ImageOptions, error) {
	if app.Kind != inventory.KindImage {
		return nil, fmt.Errorf("app %s is not an image app", app.Name)
	}
	m, err := compose.ParseMode(mode)
	if err != nil {
		return nil, err
	}
	ref, err := ImageReference(app, tag, image)
	if err != nil {
		return nil, err
	}
	o := &ImageOptions{Ref: ref, Compose: m}
	if app.Registry != "" {
		reg, ok := inv.Registries[app.Registry]
		if !ok {
			return nil, fmt.Errorf("app %s: unknown registry %q", app.Name, app.Registry)
		}
		if reg.PasswordEnv != "" && (secret == nil || secret(reg.PasswordEnv) == "") {
			return nil, fmt.Errorf("app %s: registry %s takes its password from %s, which is not set in the environment", app.Name, reg.Name, reg.PasswordEnv)
		}
		o.Registry = reg
	}
	if app.ComposeFile != "" {
		data, err := readComposeFile(app.ComposeFile)
		if err != nil {
			return nil, fmt.Errorf("app %s: compose_file: %w", app.Name, err)
		}
		o.ComposeYAML = data
	}
	return o, nil
}

func readComposeFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxComposeFile {
		return nil, fmt.Errorf("%s is not a regular file of at most %d bytes", name, maxComposeFile)
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil && fi.Size() > 0 {
		return nil, err
	}
	return data, nil
}

// ImageReference is the reference an image deploy pulls: the app's image with --tag, or --image as given.
// Without either it is the app's image at "latest" (or at the tag the inventory wrote into image).
func ImageReference(app *inventory.App, tag, image string) (compose.Reference, error) {
	switch {
	case tag != "" && image != "":
		return compose.Reference{}, errors.New("give --tag or --image, not both")
	case image != "":
		ref, err := compose.ParseReference(image)
		if err != nil {
			return compose.Reference{}, fmt.Errorf("--image: %w", err)
		}
		if ref.Tag == "" && ref.Digest == "" {
			ref.Tag = "latest"
		}
		return ref, nil
	}
	base, err := compose.ParseReference(app.Image)
	if err != nil {
		return compose.Reference{}, fmt.Errorf("app %s: image: %w", app.Name, err)
	}
	if tag != "" {
		if !compose.ValidTag(tag) {
			return compose.Reference{}, fmt.Errorf("--tag %q is not a valid image tag (letters, digits, '_', '.', '-'; up to 128, not starting with '.' or '-')", tag)
		}
		return compose.Reference{Repository: base.Repository, Tag: tag}, nil
	}
	if base.Tag == "" && base.Digest == "" {
		base.Tag = "latest"
	}
	return base, nil
}

// ImageRelease is one image an app ran, or was to run, on a host: the id history knows it by and the exact
// image, pinned by digest.
type ImageRelease struct {
	ID     string `json:"id"`
	Image  string `json:"image"` // the repository, without tag
	Tag    string `json:"tag,omitempty"`
	Digest string `json:"digest"`
}

// Ref is the pinned reference of the release: Image@Digest.
func (r ImageRelease) Ref() compose.Reference {
	return compose.Reference{Repository: r.Image, Digest: r.Digest}
}

// String shows the release as tag and short digest.
func (r ImageRelease) String() string {
	tag := r.Tag
	if tag == "" {
		tag = "(by digest)"
	}
	return fmt.Sprintf("%s %s", tag, shortDigest(r.Digest))
}

func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}

// entry is the history line that records op on this release.
func (r ImageRelease) entry(op, result, previous string) release.HistoryEntry {
	return release.HistoryEntry{Op: op, ID: r.ID, Previous: previous, Result: result, Tag: r.Tag, Image: r.Image, Digest: r.Digest}
}

// releaseOf turns a history entry read from a target into a release, validating what will reach commands.
func releaseOf(e release.HistoryEntry) (ImageRelease, error) {
	rel := ImageRelease{ID: e.ID, Image: e.Image, Tag: e.Tag, Digest: e.Digest}
	switch {
	case !release.ValidReleaseID(e.ID):
		return ImageRelease{}, fmt.Errorf("history: image entry without a valid id (%q)", e.ID)
	case !compose.ValidRepository(e.Image):
		return ImageRelease{}, fmt.Errorf("history: release %s: invalid image %q", e.ID, e.Image)
	case e.Tag != "" && !compose.ValidTag(e.Tag):
		return ImageRelease{}, fmt.Errorf("history: release %s: invalid tag %q", e.ID, e.Tag)
	case !compose.ValidDigest(e.Digest):
		return ImageRelease{}, fmt.Errorf("history: release %s: invalid digest %q", e.ID, e.Digest)
	}
	return rel, nil
}

// LiveImage is the release that history says is live: the one of the last successful deploy or rollback.
// It is nil before the first successful one.
func LiveImage(hist []release.HistoryEntry) (*ImageRelease, error) {
	for i := len(hist) - 1; i >= 0; i-- {
		if e := hist[i]; e.Result == release.ResultOK && e.Digest != "" {
			rel, err := releaseOf(e)
			if err != nil {
				return nil, err
			}
			return &rel, nil
		}
	}
	return nil, nil
}

// ImageChange is what an image deploy or rollback did on one host.
type ImageChange struct {
	// Compose is the compose that ran the service ("docker-compose 1.29.2").
	Compose string `json:"compose,omitempty"`
	// Before and After are the live release before and after the run.
	Before *ImageRelease `json:"before,omitempty"`
	After  *ImageRelease `json:"after,omitempty"`
	// Containers are the service's containers as last checked.
	Containers []compose.Container `json:"containers,omitempty"`
}

// imageRun is one image app's deploy or rollback on one host: the source flow's hostRun (lock, history,
// checks, step timings, dry run) plus what compose needs.
type imageRun struct {
	*hostRun
	img  *ImageOptions
	tool compose.Tool
	proj compose.Project
}

func newImageRun(c HostConn, app *inventory.App, host string, opts *Options, img *ImageOptions) *imageRun {
	if img == nil {
		img = &ImageOptions{Compose: compose.Auto}
	}
	r := &imageRun{hostRun: newHostRun(c, app, host, opts), img: img}
	r.proj = compose.Project{Name: compose.ProjectName(app.Path), Files: []string{r.composeFile(), r.overrideFile()}}
	r.out.Image = &ImageChange{}
	return r
}

// composeFile is the app's compose file on the target.
func (r *imageRun) composeFile() string { return path.Join(r.app.Path, "compose.yaml") }

// overrideFile pins the service to the deployed digest.
func (r *imageRun) overrideFile() string { return path.Join(r.app.Path, compose.OverrideFile) }

// snapshot is the copy of compose.yaml that went live with release id, restored when going back to it.
func (r *imageRun) snapshot(id string) string {
	return path.Join(r.l.SkiffDir(), "compose", id+".yaml")
}

// dockerConfig holds the registry login for the time of one pull.
func (r *imageRun) dockerConfig() string { return path.Join(r.l.SkiffDir(), "docker") }

// DeployImage pulls opts' image on one host and makes it the app's live release: lock, compose file upload,
// registry login (password on stdin), pull, digest pinning in skiff.override.yaml, `up` of the one service,
// container state and health, port and HTTP checks, history, unlock. When the new image fails once up, the
// previous digest is pinned and brought up again, checked, and both are recorded; the run then fails.
func DeployImage(ctx context.Context, c HostConn, app *inventory.App, host string, opts *Options, img *ImageOptions) *Outcome {
	r := newImageRun(c, app, host, opts, img)
	return r.locked(ctx, "deploy", r.deployImage)
}

func (r *imageRun) deployImage(ctx context.Context) error {
	_, live, err := r.readLive(ctx)
	if err != nil {
		return err
	}
	detected := r.startDetect(ctx)
	err = r.prepareCompose(ctx)
	var rel ImageRelease
	if err == nil {
		rel, err = r.pull(ctx)
	}
	// The detection's own error comes first: without compose nothing else matters.
	if derr := detected(); derr != nil || err != nil {
		err = errors.Join(derr, err)
		// Nothing went up, and without a digest there is no release: the line only says the run failed.
		failed := release.HistoryEntry{Op: release.ActionDeploy, Result: release.ResultFailed, Tag: r.img.Ref.Tag, Image: r.img.Ref.Repository, Revision: r.opts.Revision, Error: err.Error()}
		return errors.Join(err, r.history(ctx, failed))
	}
	if _, err := r.writeEnv(ctx); err != nil {
		return errors.Join(err, r.history(ctx, withRevision(rel.entry(release.ActionDeploy, release.ResultFailed, idOf(live)), r.opts.Revision)))
	}
	// A dry run pulled nothing: there is no digest to pin, and nothing to bring up and check.
	return r.change("", r.goLivePlan(), func() error { return r.goLive(ctx, rel, live) })
}

// goLive makes the pulled release rel live in place of live, and records it.
func (r *imageRun) goLive(ctx context.Context, rel ImageRelease, live *ImageRelease) error {
	if live != nil && live.Digest == rel.Digest {
		return r.redeployLive(ctx, *live, rel.Tag)
	}
	r.logf("pulled %s as %s (%s)", r.img.Ref, rel.Digest, rel.ID)
	if err := r.activate(ctx, rel, false); err != nil {
		return r.revert(ctx, rel, live, err)
	}
	r.out.After, r.out.Image.After = rel.ID, &rel
	return r.history(ctx, withRevision(rel.entry(release.ActionDeploy, release.ResultOK, idOf(live)), r.opts.Revision))
}

// goLivePlan is what goLive would do, for a dry run.
func (r *imageRun) goLivePlan() string {
	up := "compose up"
	if cmd, err := r.upCommand(); err == nil {
		up = cmd.String()
	}
	return fmt.Sprintf("pin service %s to %s@<digest of the pulled image> in %s, run %s, wait for the service's containers and check them",
		r.app.Service, r.img.Ref.Repository, r.overrideFile(), up)
}

// redeployLive handles a pull that found the live image again (a CI job deploying an unchanged "latest"):
// the service is brought up and checked as it is, under the live release's id, so that history gains no
// release to roll back to that is the live one itself. There is nothing to roll back to on failure.
func (r *imageRun) redeployLive(ctx context.Context, live ImageRelease, tag string) error {
	r.logf("%s is already live as %s: making sure it runs", r.img.Ref, live.ID)
	live.Tag = tag
	entry := withRevision(live.entry(release.ActionDeploy, release.ResultOK, ""), r.opts.Revision)
	if err := r.activate(ctx, live, false); err != nil {
		entry.Result, entry.Error = release.ResultFailed, err.Error()
		return errors.Join(err, r.history(ctx, entry))
	}
	r.out.Image.After = &live
	return r.history(ctx, entry)
}

// readLive reads the app's history on the host and the image release live there (nil before the first
// deploy), which becomes the outcome's before and after until something changes it. As the first step of
// every image run, it first removes docker credentials that a killed run left.
func (r *imageRun) readLive(ctx context.Context) ([]release.HistoryEntry, *ImageRelease, error) {
	if err := r.removeStaleCredentials(ctx); err != nil {
		return nil, nil, err
	}
	hist, err := release.ReadHistory(ctx, r.c, r.l)
	if err != nil {
		return nil, nil, err
	}
	live, err := LiveImage(hist)
	if err != nil {
		return nil, nil, err
	}
	if live != nil {
		r.out.Before, r.out.After = live.ID, live.ID
	}
	r.out.Image.Before, r.out.Image.After = live, live
	return hist, live, nil
}

func idOf(rel *ImageRelease) string {
	if rel == nil {
		return ""
	}
	return rel.ID
}

func withRevision(e release.HistoryEntry, rev string) release.HistoryEntry {
	e.Revision = rev
	return e
}

// revert pins live again after rel failed once up, and records both in history.
func (r *imageRun) revert(ctx context.Context, rel ImageRelease, live *ImageRelease, cause error) error {
	r.logf("FAILED: %v", cause)
	failed := withRevision(rel.entry(release.ActionDeploy, release.ResultFailed, idOf(live)), r.opts.Revision)
	failed.Error = cause.Error()
	if live == nil {
		r.out.After, r.out.Image.After = rel.ID, &rel
		return errors.Join(cause, r.history(ctx, failed))
	}
	r.logf("rolling back to %s (%s)", live.ID, live)
	ctx, cancel := switchBackCtx(ctx, r.app)
	defer cancel()
	err := r.activate(ctx, *live, true)
	back := live.entry(release.ActionRollback, release.ResultOK, rel.ID)
	if err != nil {
		back.Result, back.Error = release.ResultFailed, err.Error()
		r.out.After, r.out.Image.After = live.ID, live
		return errors.Join(cause, fmt.Errorf("rollback to %s also failed: %w", live.ID, err), r.history(ctx, failed), r.history(ctx, back))
	}
	r.out.After, r.out.Image.After, r.out.RolledBack = live.ID, live, true
	return errors.Join(fmt.Errorf("%w (rolled back to %s, %s)", cause, live.ID, live), r.history(ctx, failed), r.history(ctx, back))
}
