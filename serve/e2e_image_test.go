package serve_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/compose"
	"github.com/skiffdeploy/skiff/internal/testenv"
)

// imageEnv is a registry and image apps on h1 of the shared environment, run by the machine's Docker Engine.
type imageEnv struct {
	t    *testing.T
	env  *testenv.Env
	reg  *testenv.Registry
	repo string
	ctx  context.Context
}

// newImageEnv starts a registry (notifying notify, when set) and removes, in cleanup, its images and the
// compose projects of the apps the test made.
func newImageEnv(t *testing.T, notify testenv.RegistryNotify) *imageEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test")
	}
	testenv.RequireDocker(t)
	testenv.RequireCompose(t)
	env := testenv.Shared(t)
	env.AllowDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	reg, err := testenv.StartRegistry(ctx, testenv.RegistryOptions{Dir: t.TempDir(), Notify: notify})
	if err != nil {
		if strings.Contains(err.Error(), testenv.ErrMissingTool.Error()) {
			testenv.SkipOrFail(t, err.Error())
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		if err := testenv.RemoveImages(cctx, reg.Addr+"/"); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		reg.Stop()
	})
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	return &imageEnv{t: t, env: env, reg: reg, repo: reg.Repo("serve-e2e/shop-" + suffix), ctx: ctx}
}

// push builds an image of repo:tag serving version at /VERSION on port 8080 and pushes it.
func (e *imageEnv) push(repo, tag, version string) {
	e.t.Helper()
	spec := testenv.ImageSpec{
		Files: map[string]string{"/www/VERSION": version + "\n"},
		Cmd:   []string{"/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"},
	}
	if _, err := testenv.BuildImage(e.ctx, repo+":"+tag, spec); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.reg.Push(e.ctx, repo+":"+tag, true); err != nil {
		e.t.Fatal(err)
	}
}

// retag pushes the image of repo:from under more tags.
func (e *imageEnv) retag(repo, from string, tags ...string) {
	e.t.Helper()
	if err := e.reg.Pull(e.ctx, repo+":"+from); err != nil {
		e.t.Fatal(err)
	}
	for _, tag := range tags {
		if out, err := exec.CommandContext(e.ctx, "docker", "tag", repo+":"+from, repo+":"+tag).CombinedOutput(); err != nil {
			e.t.Fatalf("docker tag: %v: %s", err, out)
		}
		if _, err := e.reg.Push(e.ctx, repo+":"+tag, true); err != nil {
			e.t.Fatal(err)
		}
	}
}

// app returns an [apps.NAME] table for an image app of repo on h1, and the port it serves on.
func (e *imageEnv) app(name string) (string, int) {
	e.t.Helper()
	h := e.env.Hosts[0]
	dir := filepath.Join(h.Root, "srv", fmt.Sprintf("serve-%s-%d", name, time.Now().UnixNano()%1e9))
	e.t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		if err := testenv.RemoveProject(cctx, compose.ProjectName(dir)); err != nil {
			e.t.Errorf("cleanup: %v", err)
		}
		os.RemoveAll(dir)
	})
	port := freePort(e.t)
	composeFile := filepath.Join(e.t.TempDir(), "compose.yaml")
	yaml := fmt.Sprintf("version: \"3.8\"\nservices:\n  app:\n    image: %s:latest\n    init: true\n    stop_grace_period: 1s\n    ports:\n      - \"127.0.0.1:%d:8080\"\n", e.repo, port)
	if err := os.WriteFile(composeFile, []byte(yaml), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return fmt.Sprintf(`[apps.%s]
hosts = ["h1"]
path = %s
compose_file = %s
service = "app"
image = %s
keep_images = 2
check.ports = [%d]
check.http = "http://127.0.0.1:%d/VERSION"
check.timeout = "20s"
`, name, testenv.TOMLString(dir), testenv.TOMLString(composeFile), testenv.TOMLString(e.repo), port, port), port
}

// serving waits until the app on port serves version.
func serving(t *testing.T, port int, version string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := httpGet(fmt.Sprintf("http://127.0.0.1:%d/VERSION", port))
		if got == version {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %d serves %q after %s, want %q", port, got, timeout, version)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestServe_RegistryPushDeploys configures Debian's docker-registry to notify skiff serve: a docker push of
// a new tag of the app's image is deployed with no other action, and a push to another repository deploys
// nothing.
func TestServe_RegistryPushDeploys(t *testing.T) {
	hs, late := listen(t)
	e := newImageEnv(t, testenv.RegistryNotify{URL: hs.URL + "/hooks/shop-registry", Headers: map[string]string{"Authorization": "Bearer reg-secret"}})
	app, port := e.app("shop")
	inv := e.env.WriteInventory(t, app+`
[[triggers]]
name = "shop-registry"
kind = "registry"
secret_env = "REG"
app = "shop"
ref = "v*"
`)
	s := start(t, hs, late, inv, 2, map[string]string{"REG": "reg-secret"})

	e.push(e.repo, "v1", "v1")
	serving(t, port, "v1", 3*time.Minute)
	e.push(e.repo, "v2", "v2")
	serving(t, port, "v2", 3*time.Minute)
	jobs := s.jobs()
	if len(jobs) != 2 || jobs[0].Tag != "v2" || jobs[1].Tag != "v1" {
		t.Fatalf("jobs %+v, want one per pushed tag", jobs)
	}
	for _, j := range jobs {
		if j := s.wait(j.ID, 2*time.Minute); j.Status != "ok" || j.Delivery == "" || j.Trigger != "shop-registry" {
			t.Fatalf("job %d: %s %s", j.ID, j.Status, j.Error)
		}
	}

	// A tag the filter refuses and another repository: the registry notifies, nothing is queued.
	ignored := `skiff_serve_webhooks_total{result="ignored",trigger="shop-registry"}`
	seen := s.metric(ignored)
	e.push(e.repo, "nightly", "nightly")
	e.push(e.reg.Repo("serve-e2e/other"), "v3", "other")
	deadline := time.Now().Add(time.Minute)
	for s.metric(ignored) < seen+2 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	if jobs := s.jobs(); len(jobs) != 2 {
		t.Fatalf("pushes of another repository or tag queued jobs: %+v", jobs[0])
	}
	if got := httpGet(fmt.Sprintf("http://127.0.0.1:%d/VERSION", port)); got != "v2" {
		t.Fatalf("serving %q after the other pushes, want v2", got)
	}
}

// TestServe_SupersedeAndConcurrentApps sends 20 signed events for one app within a second while its
// deploy runs: at most two more deploys run, the last event's tag goes live and the others are superseded.
// Meanwhile another app's deploy runs at the same time as the first one.
func TestServe_SupersedeAndConcurrentApps(t *testing.T) {
	hs, late := listen(t)
	e := newImageEnv(t, testenv.RegistryNotify{})
	shop, port := e.app("shop")
	shop2, port2 := e.app("shop2")
	inv := e.env.WriteInventory(t, shop+shop2+`
[[triggers]]
name = "shop-ci"
kind = "generic"
secret_env = "CI"
app = "shop"

[[triggers]]
name = "shop2-ci"
kind = "generic"
secret_env = "CI"
app = "shop2"
`)
	e.push(e.repo, "t0", "t0")
	e.push(e.repo, "t1", "mid")
	var mids []string
	for i := 2; i < 20; i++ {
		mids = append(mids, fmt.Sprintf("t%d", i))
	}
	e.retag(e.repo, "t1", mids...)
	e.push(e.repo, "t20", "t20")
	s := start(t, hs, late, inv, 2, map[string]string{"CI": "ci-secret"})
	send := func(trigger, tag string) uint64 {
		body := []byte(fmt.Sprintf(`{"tag":%q,"id":"%s-%s"}`, tag, trigger, tag))
		code, ans := hook(t, s.url, trigger, body, "X-Skiff-Signature", signature(body, "ci-secret"))
		return jobID(t, code, ans)
	}

	first := send("shop-ci", "t0")
	other := send("shop2-ci", "t0")
	for s.job(first).Status != "running" {
		time.Sleep(20 * time.Millisecond)
	}
	began := time.Now()
	ids := make([]uint64, 20)
	for i := range ids {
		ids[i] = send("shop-ci", fmt.Sprintf("t%d", i+1))
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Logf("20 events took %s (loaded machine)", d)
	}
	if j := s.job(first); j.Status != "running" {
		t.Fatalf("the first deploy ended (%s) before the 20 events were in: the test proves nothing", j.Status)
	}
	last := s.wait(ids[19], 4*time.Minute)
	if last.Status != "ok" {
		t.Fatalf("last event's job: %s %s\n%s", last.Status, last.Error, last.Log)
	}
	serving(t, port, "t20", time.Minute)
	ran := 0
	for _, id := range ids {
		j := s.wait(id, time.Minute)
		switch j.Status {
		case "superseded":
		case "ok", "failed":
			ran++
		default:
			t.Errorf("job %d (%s): %s", id, j.Tag, j.Status)
		}
	}
	if ran > 2 {
		t.Fatalf("%d deploys ran for 20 events, want at most 2", ran)
	}
	a, b := s.wait(first, time.Minute), s.wait(other, 2*time.Minute)
	if a.Status != "ok" || b.Status != "ok" {
		t.Fatalf("first deploys: shop %s %s, shop2 %s %s", a.Status, a.Error, b.Status, b.Error)
	}
	if !a.Started.Before(*b.Finished) || !b.Started.Before(*a.Finished) {
		t.Fatalf("the two apps' deploys did not overlap: shop %s–%s, shop2 %s–%s", a.Started, a.Finished, b.Started, b.Finished)
	}
	serving(t, port2, "t0", time.Minute)
	var apps struct {
		Apps []struct {
			App   string
			Hosts []struct{ Tag string }
		}
	}
	s.appsRead()
	s.get("/api/apps", &apps)
	for _, app := range apps.Apps {
		if want := map[string]string{"shop": "t20", "shop2": "t0"}[app.App]; len(app.Hosts) != 1 || app.Hosts[0].Tag != want {
			t.Fatalf("/api/apps %s: %+v, want live tag %s", app.App, app.Hosts, want)
		}
	}
}
