package deploy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/compose"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
)

// hex64 is a digest or image id made of one repeated hex digit, for readable fixtures.
func hex64(c string) string { return "sha256:" + strings.Repeat(c, 64) }

const pruneRepo = "registry.example.com/shop/app"

// imageEntry is a history line of an image app: release id, digest letter, result.
func imageEntry(op, id, d, result string) release.HistoryEntry {
	return release.HistoryEntry{Op: op, ID: id, Result: result, Image: pruneRepo, Tag: "t" + d, Digest: hex64(d)}
}

func digestsOf(rels []ImageRelease) []string {
	var out []string
	for _, r := range rels {
		out = append(out, r.Digest[len("sha256:"):][:1])
	}
	return out
}

func TestKeptImages_Retention(t *testing.T) {
	const (
		id1 = "20261101T000000Z-111111111111"
		id2 = "20261102T000000Z-222222222222"
		id3 = "20261103T000000Z-333333333333"
		id4 = "20261104T000000Z-444444444444"
		id5 = "20261105T000000Z-555555555555"
	)
	four := []release.HistoryEntry{
		imageEntry("deploy", id1, "1", release.ResultOK),
		imageEntry("deploy", id2, "2", release.ResultOK),
		imageEntry("deploy", id3, "3", release.ResultOK),
		imageEntry("deploy", id4, "4", release.ResultOK),
	}
	for _, tc := range []struct {
		name string
		hist []release.HistoryEntry
		keep int
		want []string // digest letters, newest first
	}{
		{name: "no history", keep: 3},
		{name: "live plus keep previous", hist: four, keep: 2, want: []string{"4", "3", "2"}},
		{name: "keep one", hist: four, keep: 1, want: []string{"4", "3"}},
		{name: "keep more than there are", hist: four, keep: 9, want: []string{"4", "3", "2", "1"}},
		{name: "failed deploy does not count", keep: 1, hist: append(append([]release.HistoryEntry{}, four...),
			imageEntry("deploy", id5, "5", release.ResultFailed), imageEntry("rollback", id4, "4", release.ResultOK)),
			want: []string{"4", "3"}},
		{name: "live after a rollback is kept and counted once", keep: 1, hist: append(append([]release.HistoryEntry{}, four...),
			imageEntry("rollback", id2, "2", release.ResultOK)),
			want: []string{"2", "4"}},
		{name: "redeploys of one image count once", keep: 1, hist: []release.HistoryEntry{
			imageEntry("deploy", id1, "1", release.ResultOK), imageEntry("deploy", id2, "2", release.ResultOK),
			imageEntry("deploy", id2, "2", release.ResultOK), imageEntry("deploy", id2, "2", release.ResultOK)},
			want: []string{"2", "1"}},
		{name: "a failed run without a digest is skipped", keep: 1, hist: append(append([]release.HistoryEntry{}, four...),
			release.HistoryEntry{Op: "deploy", Result: release.ResultFailed, Tag: "v9", Image: pruneRepo}),
			want: []string{"4", "3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := KeptImages(tc.hist, tc.keep)
			if err != nil {
				t.Fatal(err)
			}
			if d := digestsOf(got); !reflect.DeepEqual(d, tc.want) {
				t.Fatalf("kept %v, want %v", d, tc.want)
			}
		})
	}
	if _, err := KeptImages([]release.HistoryEntry{{Op: "deploy", ID: id1, Result: release.ResultOK, Image: "Bad Repo", Digest: hex64("1")}}, 1); err == nil {
		t.Fatal("accepted a history entry with an invalid repository")
	}
}

func TestPlanImages_KeepSet(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	day := func(n int) time.Time { return now.Add(-time.Duration(n) * 24 * time.Hour) }
	// Images a (oldest) to f, each with its own digest letter.
	listed := func(id, repo, tag, digest string, created time.Time) compose.ListedImage {
		li := compose.ListedImage{ID: hex64(id), Repository: repo, Tag: tag, Created: created}
		if digest != "" {
			li.Digest = hex64(digest)
		}
		return li
	}
	appImages := []compose.ListedImage{
		listed("a", pruneRepo, "v1", "1", day(10)),
		listed("b", pruneRepo, "v2", "2", day(9)),
		listed("c", pruneRepo, "", "3", day(8)),
		listed("d", pruneRepo, "v4", "4", day(7)),
	}
	keepRel := func(app, id, d string) KeptRelease {
		return KeptRelease{App: app, ImageRelease: ImageRelease{ID: id, Image: pruneRepo, Digest: hex64(d)}}
	}
	base := ImagePolicy{Keep: []KeptRelease{keepRel("shop", "20261104T000000Z", "4"), keepRel("shop", "20261103T000000Z", "3")},
		Repositories: []string{pruneRepo}, Now: now}
	for _, tc := range []struct {
		name     string
		images   []compose.ListedImage
		dangling []string
		inUse    []string
		policy   func(p ImagePolicy) ImagePolicy
		remove   []string // image id letters, oldest first
		kept     []string
		reason   string // in the reason of the first kept image
	}{
		{name: "unkept and unused images of the app's repository go", images: appImages,
			remove: []string{"a", "b"}, kept: []string{"c", "d"}, reason: "release 20261103T000000Z of shop"},
		{name: "an image in use stays", images: appImages, inUse: []string{hex64("a")},
			remove: []string{"b"}, kept: []string{"a", "c", "d"}, reason: "in use by a container"},
		{name: "young images stay", images: appImages,
			policy: func(p ImagePolicy) ImagePolicy { p.MinAge = 9*24*time.Hour + time.Hour; return p },
			remove: []string{"a"}, kept: []string{"b", "c", "d"}, reason: "younger than prune.min_age"},
		{name: "min_age protects images of unknown age", images: []compose.ListedImage{listed("a", pruneRepo, "v1", "1", time.Time{})},
			policy: func(p ImagePolicy) ImagePolicy { p.MinAge = time.Hour; return p },
			kept:   []string{"a"}, reason: "age unknown"},
		{name: "another app's kept release stays", images: appImages,
			policy: func(p ImagePolicy) ImagePolicy {
				p.Keep = append(p.Keep, keepRel("admin", "20261102T000000Z", "2"))
				return p
			},
			remove: []string{"a"}, kept: []string{"b", "c", "d"}, reason: "release 20261102T000000Z of admin"},
		{name: "other repositories are left alone", images: []compose.ListedImage{
			listed("a", "registry.example.com/other/team", "v1", "1", day(30)),
			listed("b", "nginx", "1.25", "2", day(30)),
			listed("c", pruneRepo, "v1", "9", day(30)),
		}, remove: []string{"c"}},
		{name: "an image also named by another repository stays", images: []compose.ListedImage{
			listed("a", pruneRepo, "v1", "1", day(30)),
			listed("a", "registry.example.com/other/team", "v1", "1", day(30)),
		}},
		{name: "dangling images go, untagged layers of other images stay", images: []compose.ListedImage{
			listed("a", "", "", "", day(3)),
			listed("b", "", "", "", day(3)),
		}, dangling: []string{hex64("a")}, remove: []string{"a"}},
		{name: "dangling images in use stay", images: []compose.ListedImage{listed("a", "", "", "", day(3))},
			dangling: []string{hex64("a")}, inUse: []string{hex64("a")}, kept: []string{"a"}, reason: "in use"},
		{name: "kept by digest whatever the tag", images: []compose.ListedImage{
			listed("a", pruneRepo, "latest", "3", day(30)),
			listed("a", pruneRepo, "v3", "3", day(30)),
		}, kept: []string{"a"}, reason: "release 20261103T000000Z"},
		{name: "Docker Hub spellings are one repository", images: []compose.ListedImage{
			listed("a", "shop/app", "v1", "1", day(30)),
			listed("b", "shop/app", "v2", "2", day(30)),
		}, policy: func(p ImagePolicy) ImagePolicy {
			p.Repositories = []string{"docker.io/shop/app"}
			p.Keep = []KeptRelease{{App: "shop", ImageRelease: ImageRelease{ID: "20261104T000000Z", Image: "docker.io/shop/app", Digest: hex64("2")}}}
			return p
		}, remove: []string{"a"}, kept: []string{"b"}},
		{name: "nothing to prune for an app without a repository to prune", images: appImages,
			policy: func(p ImagePolicy) ImagePolicy { p.Repositories = nil; return p }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			if tc.policy != nil {
				p = tc.policy(p)
			}
			h := HostImages{Images: tc.images, Dangling: setOf(tc.dangling), InUse: setOf(tc.inUse)}
			remove, kept := PlanImages(h, p)
			var gotRemove, gotKept []string
			for _, im := range remove {
				gotRemove = append(gotRemove, im.ID[len("sha256:"):][:1])
			}
			for _, im := range kept {
				gotKept = append(gotKept, im.ID[len("sha256:"):][:1])
			}
			if !reflect.DeepEqual(gotRemove, tc.remove) || !reflect.DeepEqual(gotKept, tc.kept) {
				t.Fatalf("remove %v, keep %v; want remove %v, keep %v (kept: %+v)", gotRemove, gotKept, tc.remove, tc.kept, kept)
			}
			if tc.reason != "" && !strings.Contains(kept[0].Reason, tc.reason) {
				t.Fatalf("reason %q, want it to contain %q", kept[0].Reason, tc.reason)
			}
		})
	}
}

func TestPlanImages_RefsAndOrder(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	images := []compose.ListedImage{
		{ID: hex64("b"), Repository: pruneRepo, Tag: "v2", Digest: hex64("2"), Created: now.Add(-time.Hour)},
		{ID: hex64("a"), Repository: pruneRepo, Tag: "v1", Digest: hex64("1"), Created: now.Add(-2 * time.Hour)},
		{ID: hex64("a"), Repository: pruneRepo, Tag: "latest", Digest: hex64("1"), Created: now.Add(-2 * time.Hour)},
	}
	remove, _ := PlanImages(HostImages{Images: images}, ImagePolicy{Repositories: []string{pruneRepo}, Now: now})
	want := []PrunedImage{
		{ID: hex64("a"), Refs: []string{pruneRepo + ":v1", pruneRepo + "@" + hex64("1"), pruneRepo + ":latest"}, Created: now.Add(-2 * time.Hour)},
		{ID: hex64("b"), Refs: []string{pruneRepo + ":v2", pruneRepo + "@" + hex64("2")}, Created: now.Add(-time.Hour)},
	}
	if !reflect.DeepEqual(remove, want) {
		t.Fatalf("remove\n%+v\nwant\n%+v", remove, want)
	}
}

func TestPlanReleases_Retention(t *testing.T) {
	ids := []string{"20261101T000000Z", "20261102T000000Z", "20261103T000000Z", "20261104T000000Z", "20261105T000000Z", "20261106T000000Z"}
	r := func(i int) string { return ids[i-1] }
	all := setOf(ids)
	without := func(gone ...int) map[string]bool {
		m := setOf(ids)
		for _, g := range gone {
			delete(m, r(g))
		}
		return m
	}
	for _, tc := range []struct {
		name          string
		complete      map[string]bool
		current, prev int
		failed        []int
		keep          int
		remove        []int
		reasonOfFirst string
	}{
		{name: "beyond keep_releases", complete: all, current: 6, prev: 5, keep: 3, remove: []int{1, 2, 3}, reasonOfFirst: ReasonRetention},
		{name: "current and previous always stay", complete: all, current: 6, prev: 1, keep: 2, remove: []int{2, 3, 4}},
		{name: "failed releases do not count and go", complete: all, current: 6, prev: 4, failed: []int{5}, keep: 3, remove: []int{1, 2, 5}},
		{name: "incomplete releases go", complete: without(3), current: 6, prev: 5, keep: 5, remove: []int{3}, reasonOfFirst: ReasonIncomplete},
		{name: "incomplete current and previous stay", complete: without(5, 6), current: 6, prev: 5, keep: 6},
		{name: "incomplete ones do not count toward the kept", complete: without(4), current: 6, prev: 5, keep: 3, remove: []int{1, 2, 4},
			reasonOfFirst: ReasonRetention},
		{name: "no current: only the newest kept", complete: without(6), keep: 2, remove: []int{1, 2, 3, 6}},
		{name: "nothing to do", complete: all, current: 6, prev: 5, keep: 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pick := func(i int) string {
				if i == 0 {
					return ""
				}
				return r(i)
			}
			failed := map[string]bool{}
			for _, f := range tc.failed {
				failed[r(f)] = true
			}
			got := PlanReleases("api", ids, tc.complete, pick(tc.current), pick(tc.prev), failed, tc.keep)
			var gotIDs []string
			for _, g := range got {
				if g.App != "api" {
					t.Fatalf("app %q", g.App)
				}
				gotIDs = append(gotIDs, g.ID)
			}
			var want []string
			for _, i := range tc.remove {
				want = append(want, r(i))
			}
			if !reflect.DeepEqual(gotIDs, want) {
				t.Fatalf("remove %v, want %v", gotIDs, want)
			}
			if tc.reasonOfFirst != "" && got[0].Reason != tc.reasonOfFirst {
				t.Fatalf("reason %q, want %q", got[0].Reason, tc.reasonOfFirst)
			}
		})
	}
}

func TestPreviousRelease_IsTheRollbackTarget(t *testing.T) {
	ids := []string{"20261101T000000Z", "20261102T000000Z", "20261103T000000Z"}
	for _, tc := range []struct {
		name    string
		hist    []release.HistoryEntry
		current string
		want    string
	}{
		{name: "no current", want: ""},
		{name: "from history", current: ids[2], want: ids[0],
			hist: []release.HistoryEntry{{Op: "deploy", ID: ids[2], Previous: ids[0], Result: release.ResultOK}}},
		{name: "newest good older one without history", current: ids[2], want: ids[1]},
		{name: "none older", current: ids[0], want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := previousRelease(ids, tc.hist, tc.current); got != tc.want {
				t.Fatalf("previous %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPruneScope_Targets(t *testing.T) {
	inv, err := inventory.Parse("hosts.toml", []byte(`
[hosts.web1]
address = "10.0.0.1"
groups = ["web"]
[hosts.web2]
address = "10.0.0.2"
[apps.api]
hosts = ["web"]
path = "/srv/api"
[apps.shop]
hosts = ["web1", "web2"]
path = "/srv/shop"
image = "registry.example.com/shop/app"
service = "app"
[apps.shop-canary]
hosts = ["web2"]
path = "/srv/shop-canary"
image = "registry.example.com/shop/app"
service = "app"
[apps.other]
hosts = ["web2"]
path = "/srv/other"
image = "registry.example.com/other"
service = "app"
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, host, only string
		want, wantAlso   []string
		wantErr          bool
	}{
		{name: "every app of the host", host: "web1", want: []string{"api", "shop"}},
		{name: "only the host's apps", host: "web2", want: []string{"other", "shop", "shop-canary"}},
		{name: "one app", host: "web1", only: "shop", want: []string{"shop"}},
		{name: "one app whose repository another app deploys", host: "web2", only: "shop", want: []string{"shop"}, wantAlso: []string{"shop-canary"}},
		{name: "an app not on the host", host: "web2", only: "api", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			apps, also, err := PruneScope{Apps: HostApps(inv, tc.host), Only: tc.only}.targets()
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v", err)
			}
			names := func(apps []*inventory.App) []string {
				var out []string
				for _, a := range apps {
					out = append(out, a.Name)
				}
				return out
			}
			if got, gotAlso := names(apps), names(also); !reflect.DeepEqual(got, tc.want) || !reflect.DeepEqual(gotAlso, tc.wantAlso) {
				t.Fatalf("targets %v and also locked %v, want %v and %v", got, gotAlso, tc.want, tc.wantAlso)
			}
		})
	}
}

func TestOnlyVanished_ToleratesContainersRemovedSinceTheListing(t *testing.T) {
	gone := "Error response from daemon: No such container: 428a1aee9ccc"
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{name: "one gone", err: &remote.ExitError{Status: 1, Stderr: gone}, want: true},
		{name: "two gone", err: &remote.ExitError{Status: 1, Stderr: gone + "\n" + gone}, want: true},
		{name: "another error too", err: &remote.ExitError{Status: 1, Stderr: gone + "\npermission denied"}, want: false},
		{name: "no stderr", err: &remote.ExitError{Status: 1}, want: false},
		{name: "other status", err: &remote.ExitError{Status: 125, Stderr: gone}, want: false},
		{name: "not an exit", err: errors.New(gone), want: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := onlyVanished(tc.err); got != tc.want {
				t.Errorf("onlyVanished = %v, want %v", got, tc.want)
			}
		})
	}
}
