package deploy

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/skiffdeploy/skiff/compose"
	"github.com/skiffdeploy/skiff/release"
)

// The pure half of prune: given what a host holds and what its apps' histories say, decide what goes. Nothing
// here talks to a host, so every rule is unit-tested on its own.

// KeptImages returns the image releases of one app whose images prune keeps on a host, newest first: the
// live one (that of the last successful deploy or rollback) and the keep newest other images of successful
// deploys and rollbacks, so that keep rollbacks stay possible. Each image counts once, however often it was
// deployed; failed deploys never count.
func KeptImages(hist []release.HistoryEntry, keep int) ([]ImageRelease, error) {
	var out []ImageRelease
	seen := map[string]bool{}
	for i := len(hist) - 1; i >= 0 && len(out) < keep+1; i-- {
		e := hist[i]
		if e.Result != release.ResultOK || e.Digest == "" {
			continue
		}
		rel, err := releaseOf(e)
		if err != nil {
			return nil, err
		}
		if k := imageKey(rel.Image, rel.Digest); !seen[k] {
			seen[k] = true
			out = append(out, rel)
		}
	}
	return out, nil
}

// keptIDs returns every release id in hist whose image is one of kept: the compose file snapshots to keep.
func keptIDs(hist []release.HistoryEntry, kept []ImageRelease) map[string]bool {
	keys := map[string]bool{}
	for _, rel := range kept {
		keys[imageKey(rel.Image, rel.Digest)] = true
	}
	ids := map[string]bool{}
	for _, e := range hist {
		if e.ID != "" && e.Digest != "" && keys[imageKey(e.Image, e.Digest)] {
			ids[e.ID] = true
		}
	}
	return ids
}

// KeptRelease is an image release that prune keeps, with the app it is a release of.
type KeptRelease struct {
	App string `json:"app"`
	ImageRelease
}

// HostImages is what one host's Docker Engine holds, as prune weighs it.
type HostImages struct {
	// Images are every image (compose.ImageList), one entry per repository, tag and digest it is known by.
	Images []compose.ListedImage
	// Dangling are the ids of the images Docker calls dangling (compose.DanglingImages).
	Dangling map[string]bool
	// InUse are the ids of the images that a container, running or stopped, was created from.
	InUse map[string]bool
}

// ImagePolicy says which images of a host prune may remove and which it must keep.
type ImagePolicy struct {
	// Keep are the releases of every image app on the host that must stay (KeptImages).
	Keep []KeptRelease
	// Repositories are the repositories prune may remove images of: the pruned image apps' own. An image that
	// any other repository names belongs to someone else and stays, whatever its age.
	Repositories []string
	// MinAge protects images created less than this long before Now.
	MinAge time.Duration
	Now    time.Time
}

// PrunedImage is an image that prune removed, would remove in a dry run, or that Docker refused to remove.
type PrunedImage struct {
	ID string `json:"id"`
	// Refs are the repository:tag and repository@digest names of the image; none for a dangling one.
	Refs    []string  `json:"refs,omitempty"`
	Created time.Time `json:"created"`
	// Size counts every layer of the image, including those it shares with images that stay.
	Size int64 `json:"size"`
	// Error is why Docker refused to remove the image.
	Error string `json:"error,omitempty"`
}

// KeptImage is an image that prune could have removed but keeps, and why.
type KeptImage struct {
	ID     string   `json:"id"`
	Refs   []string `json:"refs,omitempty"`
	Reason string   `json:"reason"`
}

// hostImage is one image with every name it has, folded from the lines of the image list.
type hostImage struct {
	id      string
	repos   map[string]bool // familiar repository names
	refs    []string
	keys    []string // imageKey of each repository digest
	created time.Time
}

func foldImages(list []compose.ListedImage) []*hostImage {
	byID := map[string]*hostImage{}
	var order []*hostImage
	for _, li := range list {
		im := byID[li.ID]
		if im == nil {
			im = &hostImage{id: li.ID, repos: map[string]bool{}, created: li.Created}
			byID[li.ID] = im
			order = append(order, im)
		}
		if li.Repository == "" {
			continue
		}
		im.repos[compose.Familiar(li.Repository)] = true
		if li.Tag != "" {
			im.addRef(li.Repository + ":" + li.Tag)
		}
		if li.Digest != "" {
			im.addRef(li.Repository + "@" + li.Digest)
			im.keys = append(im.keys, imageKey(li.Repository, li.Digest))
		}
	}
	return order
}

func (im *hostImage) addRef(ref string) {
	for _, r := range im.refs {
		if r == ref {
			return
		}
	}
	im.refs = append(im.refs, ref)
}

// PlanImages decides which images of a host go. An image is a candidate when it is dangling, or when every
// repository that names it is one of p.Repositories; other images are left alone and not reported. A
// candidate stays when a container uses it, when it is the image of a kept release, or when it is younger
// than p.MinAge (or of unknown age while MinAge is set). Both lists are sorted oldest first.
func PlanImages(h HostImages, p ImagePolicy) (remove []PrunedImage, kept []KeptImage) {
	repos := map[string]bool{}
	for _, r := range p.Repositories {
		repos[compose.Familiar(r)] = true
	}
	keep := map[string]string{}
	for _, k := range p.Keep {
		key := imageKey(k.Image, k.Digest)
		if _, dup := keep[key]; !dup {
			keep[key] = fmt.Sprintf("release %s of %s (%s)", k.ID, k.App, k.ImageRelease)
		}
	}
	images := foldImages(h.Images)
	sort.SliceStable(images, func(i, j int) bool {
		if !images[i].created.Equal(images[j].created) {
			return images[i].created.Before(images[j].created)
		}
		return images[i].id < images[j].id
	})
	for _, im := range images {
		if !candidate(im, repos, h.Dangling) {
			continue
		}
		if reason := keepReason(im, keep, h.InUse, p); reason != "" {
			kept = append(kept, KeptImage{ID: im.id, Refs: im.refs, Reason: reason})
			continue
		}
		remove = append(remove, PrunedImage{ID: im.id, Refs: im.refs, Created: im.created})
	}
	return remove, kept
}

// candidate reports whether prune may consider removing im at all.
func candidate(im *hostImage, repos, dangling map[string]bool) bool {
	if len(im.repos) == 0 {
		// Untagged layers of other images are listed too; only Docker's dangling ones are garbage.
		return dangling[im.id]
	}
	for r := range im.repos {
		if !repos[r] {
			return false
		}
	}
	return true
}

// keepReason says why a candidate stays, or "" when it goes.
func keepReason(im *hostImage, keep map[string]string, inUse map[string]bool, p ImagePolicy) string {
	if inUse[im.id] {
		return "in use by a container"
	}
	var releases []string
	for _, k := range im.keys {
		if r, ok := keep[k]; ok {
			releases = append(releases, r)
		}
	}
	if len(releases) > 0 {
		sort.Strings(releases)
		return strings.Join(releases, "; ")
	}
	if p.MinAge > 0 {
		if im.created.IsZero() {
			return "age unknown, and prune.min_age is set"
		}
		if age := p.Now.Sub(im.created); age < p.MinAge {
			return fmt.Sprintf("created %s ago, younger than prune.min_age %s", age.Round(time.Second), p.MinAge)
		}
	}
	return ""
}

// PrunedRelease is a release directory of a source app, or a compose file snapshot of an image app's
// release, that prune removed (or would remove in a dry run), and why.
type PrunedRelease struct {
	App    string `json:"app"`
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// Reasons a release or snapshot goes.
const (
	ReasonIncomplete  = "incomplete"               // no manifest: what a killed deploy left behind
	ReasonUnusedBuild = "no kept release links it" // a build of releases that are gone, or never complete
	ReasonFailed      = "failed"                   // history marks it failed
	ReasonRetention   = "beyond keep_releases"     // older than the releases kept
	ReasonImageGone   = "image not kept"           // a compose snapshot of an image release prune does not keep
)

// PlanReleases chooses the release directories of a source app that prune removes. The current release and
// the previous one (the one a rollback goes to) always stay. Every other release without a manifest
// (complete[id] false) is the remnant of a killed deploy and goes; of the rest, Retain chooses.
func PlanReleases(app string, ids []string, complete map[string]bool, current, previous string, failed map[string]bool, keep int) []PrunedRelease {
	var out []PrunedRelease
	var whole []string
	for _, id := range ids {
		if !complete[id] && id != current && id != previous {
			out = append(out, PrunedRelease{App: app, ID: id, Reason: ReasonIncomplete})
			continue
		}
		whole = append(whole, id)
	}
	for _, id := range release.Retain(whole, current, previous, failed, keep) {
		reason := ReasonRetention
		if failed[id] {
			reason = ReasonFailed
		}
		out = append(out, PrunedRelease{App: app, ID: id, Reason: reason})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// previousRelease is the release a rollback from current would go to, or "" when there is none: prune never
// removes it.
func previousRelease(ids []string, hist []release.HistoryEntry, current string) string {
	if current == "" {
		return ""
	}
	prev, err := RollbackTarget(ids, hist, current, "", false)
	if err != nil {
		return ""
	}
	return prev
}

// refsText names an image in a log line by its tags, or by its digests when it has no tag left.
func refsText(refs []string) string {
	var tags, digests []string
	for _, r := range refs {
		if strings.Contains(r, "@") {
			digests = append(digests, r)
		} else {
			tags = append(tags, r)
		}
	}
	switch {
	case len(tags) > 0:
		return strings.Join(tags, ", ")
	case len(digests) > 0:
		return strings.Join(digests, ", ")
	}
	return "(dangling)"
}

func createdText(t time.Time) string {
	if t.IsZero() {
		return "at an unknown time"
	}
	return t.UTC().Format(time.RFC3339)
}

// HumanSize shows a size in bytes as people read it ("1.5 MiB"); the CLI's summaries use it too.
func HumanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
