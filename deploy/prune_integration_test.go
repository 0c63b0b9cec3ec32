package deploy

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/internal/testenv"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
)

// TestPrune_ImagesIntegration deploys four images of one app with keep_images = 2 against the real Docker
// Engine, registry and sshd, and prunes: exactly the oldest image goes, the two rollback targets and the
// live image stay, a dry run lists the same and removes nothing, a held lock removes nothing, and a rollback
// afterwards still works.
func TestPrune_ImagesIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	fx := newImageFixture(t)
	fx.addImage(t, "v4", webImage("v4", true))
	a := fx.newImageApp(t, nil, "", composeOptions{})
	a.app.KeepImages = 2
	rel := map[string]string{} // tag -> release id
	for _, tag := range []string{"v1", "v2", "v3", "v4"} {
		rel[tag] = a.mustDeploy(t, tag).After
	}
	ids := map[string]string{} // tag -> local image id
	for tag, d := range fx.digests {
		if id := localImageID(t, fx.repo+"@"+d); id != "" {
			ids[tag] = id
		}
	}
	for _, tag := range []string{"v1", "v2", "v3", "v4"} {
		if ids[tag] == "" {
			t.Fatalf("image %s is not on the host after its deploy", tag)
		}
	}
	scope := PruneScope{Apps: []*inventory.App{a.app}}
	prune := func(dryRun bool) *PruneReport {
		t.Helper()
		opts := a.runOptions("")
		opts.DryRun = dryRun
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return Prune(ctx, a.conn, a.host.Name, scope, opts)
	}
	present := func() []string {
		t.Helper()
		var tags []string
		for _, tag := range []string{"v1", "v2", "v3", "v4"} {
			if localImageID(t, ids[tag]) != "" {
				tags = append(tags, tag)
			}
		}
		return tags
	}
	snapshot := func(tag string) string { return filepath.Join(a.app.Path, ".skiff", "compose", rel[tag]+".yaml") }
	all := []string{"v1", "v2", "v3", "v4"}

	dry := prune(true)
	if dry.Err != nil {
		t.Fatalf("dry run: %v\nlog:\n%s", dry.Err, a.logs)
	}
	// The engine is the test machine's: dangling images of other tests may go too, but of this repository
	// only v1.
	if got := fx.ownImages(dry.Images); !reflect.DeepEqual(got, []string{ids["v1"]}) || dry.Bytes <= 0 || !dry.DryRun {
		t.Fatalf("dry run would remove %v (%d bytes), want only v1 %s", got, dry.Bytes, ids["v1"])
	}
	if got := present(); !reflect.DeepEqual(got, all) {
		t.Fatalf("after the dry run, images %v are on the host, want %v", got, all)
	}
	if _, err := os.Stat(snapshot("v1")); err != nil {
		t.Fatalf("dry run removed the snapshot of v1: %v", err)
	}

	t.Run("held lock removes nothing", func(t *testing.T) {
		lk, err := release.AcquireLock(context.Background(), a.conn, release.Layout{Path: a.app.Path}, release.LockOwner{Operator: "other", Op: "deploy", App: a.app.Name}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		defer lk.Release(context.Background())
		for _, dryRun := range []bool{true, false} {
			rep := prune(dryRun)
			var le *release.LockedError
			if !errors.As(rep.Err, &le) || le.Owner == nil || le.Owner.Operator != "other" {
				t.Fatalf("dry run %v: err %v, want the lock held by other", dryRun, rep.Err)
			}
			if len(rep.Images) != 0 || len(rep.Snapshots) != 0 || rep.ImagesSkipped == "" {
				t.Fatalf("dry run %v: removed %+v and %+v under a held lock", dryRun, rep.Images, rep.Snapshots)
			}
		}
		if got := present(); !reflect.DeepEqual(got, all) {
			t.Fatalf("under a held lock, images %v are left, want %v", got, all)
		}
	})

	done := prune(false)
	if done.Err != nil {
		t.Fatalf("prune: %v\nlog:\n%s", done.Err, a.logs)
	}
	if got, want := fx.ownImages(done.Images), fx.ownImages(dry.Images); !reflect.DeepEqual(got, want) || sizeOf(done.Images, ids["v1"]) != sizeOf(dry.Images, ids["v1"]) || len(fx.ownImages(done.Refused)) != 0 {
		t.Fatalf("prune removed %+v (refused %+v), the dry run listed %+v", done.Images, done.Refused, dry.Images)
	}
	if got, want := present(), []string{"v2", "v3", "v4"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after prune, images %v are on the host, want %v", got, want)
	}
	if got := fx.ownKept(done.Kept); !reflect.DeepEqual(got, sortedStrings(ids["v2"], ids["v3"], ids["v4"])) {
		t.Fatalf("kept %+v, want v2, v3 and v4", done.Kept)
	}
	if len(done.Snapshots) != 1 || done.Snapshots[0].ID != rel["v1"] {
		t.Fatalf("snapshots removed %+v, want v1's (%s)", done.Snapshots, rel["v1"])
	}
	if _, err := os.Stat(snapshot("v1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the snapshot of v1 is still there: %v", err)
	}
	for _, tag := range []string{"v2", "v3", "v4"} {
		if _, err := os.Stat(snapshot(tag)); err != nil {
			t.Fatalf("the snapshot of %s is gone: %v", tag, err)
		}
	}
	if _, err := os.Stat(filepath.Join(a.app.Path, ".skiff", "lock")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("prune left its lock behind: %v", err)
	}

	back := a.rollback(t, "")
	if back.Err != nil || back.After != rel["v3"] {
		t.Fatalf("rollback after prune: %v, now at %s, want %s\nlog:\n%s", back.Err, back.After, rel["v3"], a.logs)
	}
	if got := a.version(t); got != "v3" {
		t.Fatalf("after rollback: serving %q, want v3", got)
	}
	refused := a.rollback(t, rel["v1"])
	if refused.Err == nil || !strings.Contains(refused.Err.Error(), "no longer on the host") {
		t.Fatalf("rollback to the pruned v1: %v, want 'no longer on the host'", refused.Err)
	}
	again := prune(false)
	if again.Err != nil || len(fx.ownImages(again.Images)) != 0 || len(again.Snapshots) != 0 {
		t.Fatalf("second prune: %v, removed %+v and %+v, want nothing", again.Err, again.Images, again.Snapshots)
	}
}

// TestPrune_SourceReleasesIntegration prunes a source app's releases over real sshd: the releases beyond
// keep_releases, a failed one and an incomplete one (no manifest) go; current and previous stay.
func TestPrune_SourceReleasesIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	env := testenv.Shared(t)
	h := env.Hosts[0]
	conn := dialTestHost(t, env, h)
	dir := path.Join(h.Root, "srv", "prune-src-"+randomHex(t, 5))
	t.Cleanup(func() { os.RemoveAll(dir) })
	app := &inventory.App{Name: "api", Kind: inventory.KindSource, Hosts: []string{h.Name}, Path: dir, KeepReleases: 2, Timeout: inventory.Duration{Duration: time.Minute}}
	// ghost is on the host in the inventory but was never deployed there: prune must not create its directory.
	ghost := &inventory.App{Name: "ghost", Kind: inventory.KindSource, Hosts: []string{h.Name}, Path: dir + "-ghost", KeepReleases: 2}
	l := release.Layout{Path: dir}
	r := func(n int) string { return "2026110" + string(rune('0'+n)) + "T000000Z" }
	ctx := context.Background()
	// r1..r6 complete; r5 failed and rolled back to r4; r6 went live after r4; r7 was killed while shipping.
	layout := `set -e
mkdir -p "$1" && cd "$1"; shift
mkdir -p releases .skiff/manifests
for id in "$@"; do mkdir -p "releases/$id"; echo "$id" > "releases/$id/VERSION"; echo "{}" > ".skiff/manifests/$id"; done`
	if _, err := conn.Run(ctx, remote.Script(layout, dir, r(1), r(2), r(3), r(4), r(5), r(6))); err != nil {
		t.Fatal(err)
	}
	if _, err := release.Switch(ctx, conn, l, r(6)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Run(ctx, remote.Script(`mkdir -p "$1/releases/$2/half"`, dir, r(7))); err != nil {
		t.Fatal(err)
	}
	for _, e := range []release.HistoryEntry{
		{Op: "deploy", ID: r(1), Result: release.ResultOK},
		{Op: "deploy", ID: r(2), Previous: r(1), Result: release.ResultOK},
		{Op: "deploy", ID: r(3), Previous: r(2), Result: release.ResultOK},
		{Op: "deploy", ID: r(4), Previous: r(3), Result: release.ResultOK},
		{Op: "deploy", ID: r(5), Previous: r(4), Result: release.ResultFailed},
		{Op: "rollback", ID: r(4), Previous: r(5), Result: release.ResultOK},
		{Op: "deploy", ID: r(6), Previous: r(4), Result: release.ResultOK},
	} {
		e.App = app.Name
		if err := release.AppendHistory(ctx, conn, l, e); err != nil {
			t.Fatal(err)
		}
	}
	logs := &logSink{}
	prune := func(dryRun bool) *PruneReport {
		opts := &Options{Operator: "tester", Machine: "test", PID: os.Getpid(), Origin: "test", DryRun: dryRun, Log: logs.add}
		return Prune(ctx, conn, h.Name, PruneScope{Apps: []*inventory.App{app, ghost}}, opts)
	}
	list := func() []string {
		ids, err := release.ListReleases(ctx, conn, l)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	everything := list()
	want := []PrunedRelease{
		{App: "api", ID: r(1), Reason: ReasonRetention},
		{App: "api", ID: r(2), Reason: ReasonRetention},
		{App: "api", ID: r(3), Reason: ReasonRetention},
		{App: "api", ID: r(5), Reason: ReasonFailed},
		{App: "api", ID: r(7), Reason: ReasonIncomplete},
	}

	dry := prune(true)
	if dry.Err != nil || !reflect.DeepEqual(dry.Releases, want) {
		t.Fatalf("dry run: %v, would remove %+v, want %+v\nlog:\n%s", dry.Err, dry.Releases, want, logs)
	}
	if got := list(); !reflect.DeepEqual(got, everything) {
		t.Fatalf("dry run removed releases: %v left of %v", got, everything)
	}

	lk, err := release.AcquireLock(ctx, conn, l, release.LockOwner{Operator: "other", Op: "deploy", App: "api"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var le *release.LockedError
	if held := prune(false); !errors.As(held.Err, &le) || len(held.Releases) != 0 {
		t.Fatalf("under a held lock: %v, removed %+v", held.Err, held.Releases)
	}
	if got := list(); !reflect.DeepEqual(got, everything) {
		t.Fatalf("under a held lock releases were removed: %v left of %v", got, everything)
	}
	if err := lk.Release(ctx); err != nil {
		t.Fatal(err)
	}

	done := prune(false)
	if done.Err != nil || !reflect.DeepEqual(done.Releases, want) {
		t.Fatalf("prune: %v, removed %+v, want %+v\nlog:\n%s", done.Err, done.Releases, want, logs)
	}
	if got := list(); !reflect.DeepEqual(got, []string{r(4), r(6)}) {
		t.Fatalf("releases left %v, want current %s and previous %s", got, r(6), r(4))
	}
	if cur, err := release.ReadCurrent(ctx, conn, l); err != nil || cur != r(6) {
		t.Fatalf("current %s, %v; want %s", cur, err, r(6))
	}
	for _, id := range []string{r(1), r(5)} {
		if _, err := os.Stat(l.Manifest(id)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("manifest of removed release %s is still there: %v", id, err)
		}
	}
	if again := prune(false); again.Err != nil || len(again.Releases) != 0 {
		t.Fatalf("second prune: %v, removed %+v", again.Err, again.Releases)
	}
	if _, err := os.Stat(ghost.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("prune created the directory of an app never deployed: %v", err)
	}
}

// addImage builds one more test image, pushes it to the fixture's registry and forgets it locally.
func (fx *imageFixture) addImage(tb testing.TB, tag string, spec testenv.ImageSpec) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ref := fx.repo + ":" + tag
	if _, err := testenv.BuildImage(ctx, ref, spec); err != nil {
		tb.Fatal(err)
	}
	d, err := fx.reg.Push(ctx, ref, true)
	if err != nil {
		tb.Fatal(err)
	}
	fx.digests[tag] = d
}

// localImageID returns the id of an image on the test machine's engine, or "" when it is not there.
func localImageID(tb testing.TB, ref string) string {
	tb.Helper()
	out, err := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", ref).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// dialTestHost connects to a test host as the environment's login user.
func dialTestHost(tb testing.TB, env *testenv.Env, h *testenv.Host) *remote.Conn {
	tb.Helper()
	pool := remote.NewPool(remote.Options{})
	tb.Cleanup(func() { pool.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pool.Get(ctx, &remote.Target{Name: h.Name, Address: h.IP, Port: h.Port, User: env.User,
		IdentityFiles: []string{env.KeyFile}, KnownHosts: env.KnownHosts})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// ownImages returns the ids of the images of the fixture's repository among images.
func (fx *imageFixture) ownImages(images []PrunedImage) []string {
	var ids []string
	for _, im := range images {
		if fx.own(im.Refs) {
			ids = append(ids, im.ID)
		}
	}
	return ids
}

// sizeOf returns the size reported for image id, or -1 when it is not among images.
func sizeOf(images []PrunedImage, id string) int64 {
	for _, im := range images {
		if im.ID == id {
			return im.Size
		}
	}
	return -1
}

// ownKept returns the sorted ids of the images of the fixture's repository among kept.
func (fx *imageFixture) ownKept(kept []KeptImage) []string {
	var ids []string
	for _, k := range kept {
		if fx.own(k.Refs) {
			ids = append(ids, k.ID)
		}
	}
	sort.Strings(ids)
	return ids
}

func (fx *imageFixture) own(refs []string) bool {
	for _, r := range refs {
		if strings.HasPrefix(r, fx.repo+":") || strings.HasPrefix(r, fx.repo+"@") {
			return true
		}
	}
	return false
}

func sortedStrings(s ...string) []string {
	sort.Strings(s)
	return s
}
