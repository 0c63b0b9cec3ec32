package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/compose"
	"github.com/skiffdeploy/skiff/deploy"
	"github.com/skiffdeploy/skiff/internal/testenv"
	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
)

// pruneImageEnv is an image app on h1 whose images v1..v4 wait in a real registry.
type pruneImageEnv struct {
	app    *e2eApp
	repo   string
	imgIDs map[string]string // tag -> local image id, once deployed
}

// newPruneImageEnv starts a registry with basic auth, pushes four busybox images to it and writes an
// inventory with one image app (keep_images = 2) on h1. Images, containers and the registry go in cleanup.
func newPruneImageEnv(t *testing.T) *pruneImageEnv {
	t.Helper()
	testenv.RequireDocker(t)
	testenv.RequireCompose(t)
	env := testenv.Shared(t)
	env.AllowDocker(t)
	h := env.Hosts[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	password := "pw-" + suffix
	reg, err := testenv.StartRegistry(ctx, testenv.RegistryOptions{Dir: t.TempDir(), Username: "ci", Password: password})
	if err != nil {
		if strings.Contains(err.Error(), testenv.ErrMissingTool.Error()) {
			testenv.SkipOrFail(t, err.Error())
		}
		t.Fatal(err)
	}
	dir := filepath.Join(h.Root, "srv", "prune-shop-"+suffix)
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		if err := testenv.RemoveProject(cctx, compose.ProjectName(dir)); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if err := testenv.RemoveImages(cctx, reg.Addr+"/"); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if err := reg.Stop(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		os.RemoveAll(dir)
	})
	repo := reg.Repo("skiff-e2e/prune-" + suffix)
	for _, v := range []string{"v1", "v2", "v3", "v4"} {
		spec := testenv.ImageSpec{
			Files: map[string]string{"/www/VERSION": v + "\n"},
			Cmd:   []string{"/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"},
		}
		if _, err := testenv.BuildImage(ctx, repo+":"+v, spec); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Push(ctx, repo+":"+v, true); err != nil {
			t.Fatal(err)
		}
	}
	port := e2eFreePort(t)
	composeFile := filepath.Join(t.TempDir(), "compose.yaml")
	e2eWrite(t, composeFile, fmt.Sprintf("version: \"3.8\"\nservices:\n  app:\n    image: %s:v1\n    init: true\n    stop_grace_period: 2s\n    ports:\n      - \"127.0.0.1:%d:8080\"\n", repo, port))
	t.Setenv("E2E_PRUNE_PASSWORD", password)
	a := &e2eApp{t: t, env: env, host: h, name: "shop", path: dir, port: port}
	a.inv = env.WriteInventory(t, fmt.Sprintf(`[registries.test]
server = %s
username = "ci"
password_env = "E2E_PRUNE_PASSWORD"

[apps.shop]
hosts = ["h1"]
path = %s
compose_file = %s
service = "app"
image = %s
registry = "test"
keep_images = 2
check.ports = [%d]
check.http = "http://127.0.0.1:%d/VERSION"
check.timeout = "10s"
`, testenv.TOMLString(reg.Addr), testenv.TOMLString(dir), testenv.TOMLString(composeFile), testenv.TOMLString(repo), port, port))
	return &pruneImageEnv{app: a, repo: repo, imgIDs: map[string]string{}}
}

// present returns the tags among v1..v4 whose deployed image is still on the engine.
func (p *pruneImageEnv) present() []string {
	var tags []string
	for _, v := range []string{"v1", "v2", "v3", "v4"} {
		if err := exec.Command("docker", "image", "inspect", p.imgIDs[v]).Run(); err == nil {
			tags = append(tags, v)
		}
	}
	return tags
}

// own returns the ids among images that are of the test's repository: the engine is the machine's, so
// dangling images of other tests may be pruned as well.
func (p *pruneImageEnv) own(images []deploy.PrunedImage) []string {
	var ids []string
	for _, im := range images {
		for _, r := range im.Refs {
			if strings.HasPrefix(r, p.repo+":") || strings.HasPrefix(r, p.repo+"@") {
				ids = append(ids, im.ID)
				break
			}
		}
	}
	return ids
}

// prune runs skiff prune with --json and returns the one host's report.
func (p *pruneImageEnv) prune(want int, args ...string) hostResult {
	p.app.t.Helper()
	h := p.app.skiffJSON(want, append([]string{"prune"}, args...)...)
	if h.Pruned == nil {
		p.app.t.Fatalf("prune %v: no pruned report in %+v", args, h)
	}
	return h
}

// TestPrune_ImageAppE2E deploys four images with keep_images = 2 through the CLI and prunes: the dry run
// and the prune list the same images, exactly the oldest unused one goes, a held lock exits 3 and removes
// nothing, and a rollback afterwards works.
func TestPrune_ImageAppE2E(t *testing.T) {
	p := newPruneImageEnv(t)
	a := p.app
	rel := map[string]string{}
	for _, v := range []string{"v1", "v2", "v3", "v4"} {
		h := a.skiffJSON(0, "deploy", "shop", "--tag", v)
		if h.Image == nil || h.Image.After == nil {
			t.Fatalf("deploy %s: no image in %+v", v, h)
		}
		rel[v] = h.After
		out, err := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", p.repo+"@"+h.Image.After.Digest).Output()
		if err != nil {
			t.Fatalf("image of %s not on the engine: %v", v, err)
		}
		p.imgIDs[v] = strings.TrimSpace(string(out))
	}
	all := []string{"v1", "v2", "v3", "v4"}

	text := a.mustSkiff(0, "prune", "--dry-run", "--hosts", "h1")
	if !strings.Contains(text.stdout, "would remove image "+p.imgIDs["v1"][:len("sha256:")+12]) || !strings.Contains(text.stdout, "image(s), up to ") {
		t.Fatalf("text dry run does not list v1:\n%s", text)
	}
	dry := p.prune(0, "--dry-run", "--hosts=h1")
	if got := p.own(dry.Pruned.Images); !reflect.DeepEqual(got, []string{p.imgIDs["v1"]}) || !dry.Pruned.DryRun {
		t.Fatalf("dry run lists %v, want only v1 %s\n%+v", got, p.imgIDs["v1"], dry.Pruned)
	}
	if got := p.present(); !reflect.DeepEqual(got, all) {
		t.Fatalf("after the dry run images %v are left, want %v", got, all)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lk, err := release.AcquireLock(ctx, a.remoteConn(), release.Layout{Path: a.path}, release.LockOwner{
		Operator: "alice", Machine: "ci-runner-7", PID: 4242, Op: "deploy", App: "shop"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	held := p.prune(3, "--hosts", "h1")
	if held.OK || !strings.Contains(held.Error, "held by alice@ci-runner-7") || len(held.Pruned.Images) != 0 {
		t.Fatalf("prune under a held lock: %+v", held)
	}
	if got := p.present(); !reflect.DeepEqual(got, all) {
		t.Fatalf("under a held lock images %v are left, want %v", got, all)
	}
	if err := lk.Release(ctx); err != nil {
		t.Fatal(err)
	}

	done := p.prune(0, "shop")
	if got := p.own(done.Pruned.Images); !reflect.DeepEqual(got, p.own(dry.Pruned.Images)) || done.Pruned.Bytes <= 0 {
		t.Fatalf("prune removed %v, the dry run listed %v\n%+v", got, p.own(dry.Pruned.Images), done.Pruned)
	}
	if got, want := p.present(), []string{"v2", "v3", "v4"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after prune images %v are left, want %v", got, want)
	}

	back := a.skiffJSON(0, "rollback", "shop")
	if back.After != rel["v3"] {
		t.Fatalf("rollback after prune went to %s, want %s", back.After, rel["v3"])
	}
	if got, err := a.get("/VERSION"); err != nil || got != "v3" {
		t.Fatalf("after rollback serving %q, %v; want v3", got, err)
	}
}

// TestPrune_SourceReleasesE2E lowers keep_releases after four deploys and prunes: the older releases and an
// incomplete one (a killed deploy's remains) go; current and previous stay, and the app still rolls back.
func TestPrune_SourceReleasesE2E(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, "prunesrc", appOptions{supervisor: supervisorNone, extra: "keep_releases = 5\n"})
	var ids []string
	for _, v := range []string{"p1", "p2", "p3", "p4"} {
		ids = append(ids, a.deploy(0, e2eAppTree(t, v, nil)).After)
	}
	incomplete := release.NewReleaseID(time.Now().Add(time.Hour), "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := a.remoteConn().Run(ctx, remote.Command{Argv: []string{"mkdir", "-p", filepath.Join(a.path, "releases", incomplete, "half")}}); err != nil {
		t.Fatal(err)
	}
	inv, err := os.ReadFile(a.inv)
	if err != nil {
		t.Fatal(err)
	}
	e2eWrite(t, a.inv, strings.Replace(string(inv), "keep_releases = 5", "keep_releases = 2", 1))

	dry := a.skiffJSON(0, "prune", a.name, "--dry-run")
	h := a.skiffJSON(0, "prune", a.name)
	want := []deploy.PrunedRelease{
		{App: a.name, ID: ids[0], Reason: deploy.ReasonRetention},
		{App: a.name, ID: ids[1], Reason: deploy.ReasonRetention},
		{App: a.name, ID: incomplete, Reason: deploy.ReasonIncomplete},
	}
	if h.Pruned == nil || !reflect.DeepEqual(h.Pruned.Releases, want) || !reflect.DeepEqual(dry.Pruned.Releases, want) {
		t.Fatalf("prune removed %+v (dry run %+v), want %+v", h.Pruned, dry.Pruned, want)
	}
	if got := a.releases(); !reflect.DeepEqual(got, ids[2:]) {
		t.Fatalf("releases left %v, want %v", got, ids[2:])
	}
	if back := a.skiffJSON(0, "rollback", a.name); back.After != ids[2] {
		t.Fatalf("rollback after prune went to %s, want %s", back.After, ids[2])
	}
}
