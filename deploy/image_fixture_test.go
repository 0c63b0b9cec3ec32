package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/compose"
	"github.com/skiffdeploy/skiff/internal/testenv"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
)

// imageFixture is what the image integration tests share: the shared sshd hosts, a real registry with
// basic auth on 127.0.0.1, and test images pushed to it (then removed locally, so deploys really pull).
type imageFixture struct {
	env     *testenv.Env
	reg     *testenv.Registry
	repo    string            // the repository of every test image in reg
	digests map[string]string // tag -> digest as pushed
}

// imageHTTPPort is where every test image's busybox httpd listens inside its container.
const imageHTTPPort = 8080

// testImages are the images the fixture pushes, by tag. Each serves /VERSION (and /health where it is
// healthy) with busybox httpd, except "crash", which exits at once, and "deaf", which never listens.
var testImages = map[string]testenv.ImageSpec{
	"v1":       webImage("v1", true),
	"v2":       webImage("v2", true),
	"v3":       webImage("v3", true),
	"bench1":   webImage("bench1", true),
	"bench2":   webImage("bench2", true),
	"nohealth": webImage("nohealth", false),
	"crash":    {Files: map[string]string{"/www/VERSION": "crash\n"}, Cmd: []string{"/bin/busybox", "sh", "-c", "echo starting; echo boom >&2; exit 3"}},
	"deaf":     {Files: map[string]string{"/www/VERSION": "deaf\n"}, Cmd: []string{"/bin/busybox", "sleep", "600"}},
}

func webImage(version string, health bool) testenv.ImageSpec {
	files := map[string]string{"/www/VERSION": version + "\n"}
	if health {
		files["/www/health"] = "ok\n"
	}
	return testenv.ImageSpec{Files: files, Cmd: []string{"/bin/busybox", "httpd", "-f", "-p", fmt.Sprint(imageHTTPPort), "-h", "/www"}}
}

// newImageFixture starts the registry and pushes the test images; everything goes away in tb.Cleanup.
func newImageFixture(tb testing.TB) *imageFixture {
	tb.Helper()
	testenv.RequireDocker(tb)
	testenv.RequireCompose(tb)
	env := testenv.Shared(tb)
	env.AllowDocker(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg, err := testenv.StartRegistry(ctx, testenv.RegistryOptions{Dir: tb.TempDir(), Username: "ci", Password: "pw-" + randomHex(tb, 8)})
	if err != nil {
		if strings.Contains(err.Error(), testenv.ErrMissingTool.Error()) {
			testenv.SkipOrFail(tb, err.Error())
		}
		tb.Fatal(err)
	}
	fx := &imageFixture{env: env, reg: reg, repo: reg.Repo("skiff-test/app-" + randomHex(tb, 4)), digests: map[string]string{}}
	tb.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		if err := testenv.RemoveImages(cctx, reg.Addr+"/"); err != nil {
			tb.Errorf("cleanup: %v", err)
		}
		if err := reg.Stop(); err != nil {
			tb.Errorf("cleanup: %v", err)
		}
	})
	for tag, spec := range testImages {
		ref := fx.repo + ":" + tag
		if _, err := testenv.BuildImage(ctx, ref, spec); err != nil {
			tb.Fatal(err)
		}
		d, err := reg.Push(ctx, ref, true)
		if err != nil {
			tb.Fatal(err)
		}
		fx.digests[tag] = d
	}
	return fx
}

// retag points tag in the registry at the image of another tag, as a CI pipeline re-pushing "latest" does.
func (fx *imageFixture) retag(tb testing.TB, tag, to string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ref := fx.repo + ":" + tag
	if _, err := testenv.BuildImage(ctx, ref, testImages[to]); err != nil {
		tb.Fatal(err)
	}
	d, err := fx.reg.Push(ctx, ref, true)
	if err != nil {
		tb.Fatal(err)
	}
	fx.digests[tag] = d
	return d
}

func randomHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// imageApp is one test's image app: its own directory (hence compose project), port and inventory entry.
type imageApp struct {
	fx   *imageFixture
	host *testenv.Host
	conn *remote.Conn
	app  *inventory.App
	port int
	logs *logSink
}

// composeOptions shape the app's compose file.
type composeOptions struct {
	healthcheck bool // probe /health inside the container every second
}

// newImageApp prepares an app on host h (h1 unless given) with a compose file publishing a free port.
func (fx *imageFixture) newImageApp(tb testing.TB, h *testenv.Host, knownHosts string, co composeOptions) *imageApp {
	tb.Helper()
	if h == nil {
		h = fx.env.Hosts[0]
	}
	if knownHosts == "" {
		knownHosts = fx.env.KnownHosts
	}
	port := freeTCPPort(tb)
	dir := path.Join(h.Root, "srv", "img-"+randomHex(tb, 5))
	project := compose.ProjectName(dir)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := testenv.RemoveProject(ctx, project); err != nil {
			tb.Errorf("cleanup: %v", err)
		}
		os.RemoveAll(dir)
	})
	local := filepath.Join(tb.TempDir(), "compose.yaml")
	if err := os.WriteFile(local, []byte(testComposeFile(fx.repo, port, co)), 0o644); err != nil {
		tb.Fatal(err)
	}
	pool := remote.NewPool(remote.Options{})
	tb.Cleanup(func() { pool.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pool.Get(ctx, &remote.Target{Name: h.Name, Address: h.IP, Port: h.Port, User: fx.env.User,
		IdentityFiles: []string{fx.env.KeyFile}, KnownHosts: knownHosts})
	if err != nil {
		tb.Fatal(err)
	}
	app := &inventory.App{
		Name: "shop", Kind: inventory.KindImage, Hosts: []string{h.Name}, Path: dir,
		ComposeFile: local, Service: "app", Image: fx.repo, Registry: "test", KeepImages: 3,
		Check: inventory.Check{
			Ports:   []int{port},
			HTTP:    fmt.Sprintf("http://127.0.0.1:%d/VERSION", port),
			Timeout: inventory.Duration{Duration: 4 * time.Second},
		},
		Timeout: inventory.Duration{Duration: 5 * time.Minute},
	}
	return &imageApp{fx: fx, host: h, conn: conn, app: app, port: port, logs: &logSink{}}
}

// testComposeFile runs the test image with tini as PID 1 (busybox ignores SIGTERM there, which would make
// every replacement wait for docker's stop timeout).
func testComposeFile(repo string, port int, co composeOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: \"3.8\"\nservices:\n  app:\n    image: %s:v1\n    init: true\n    stop_grace_period: 2s\n", repo)
	fmt.Fprintf(&b, "    ports:\n      - \"127.0.0.1:%d:%d\"\n", port, imageHTTPPort)
	if co.healthcheck {
		fmt.Fprintf(&b, "    healthcheck:\n      test: [\"CMD\", \"/bin/busybox\", \"wget\", \"-q\", \"-O\", \"/dev/null\", \"http://127.0.0.1:%d/health\"]\n", imageHTTPPort)
		b.WriteString("      interval: 1s\n      timeout: 1s\n      retries: 2\n")
	}
	return b.String()
}

func freeTCPPort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// options returns image options for ref (a tag of the fixture's repository) with the registry password.
func (a *imageApp) options(tb testing.TB, tag string) *ImageOptions {
	tb.Helper()
	data, err := os.ReadFile(a.app.ComposeFile)
	if err != nil {
		tb.Fatal(err)
	}
	return &ImageOptions{
		Ref:         compose.Reference{Repository: a.fx.repo, Tag: tag},
		Registry:    &inventory.Registry{Name: "test", Server: a.fx.reg.Addr, Username: a.fx.reg.Username, PasswordEnv: "TEST_REGISTRY_PASSWORD"},
		Compose:     compose.Auto,
		ComposeYAML: data,
	}
}

// runOptions are the deploy options of one test run; secret answers the registry password variable.
func (a *imageApp) runOptions(password string) *Options {
	return &Options{
		Operator: "tester", Origin: "test", Run: "run1", Machine: "test", PID: os.Getpid(),
		Log: a.logs.add,
		Secret: func(name string) string {
			if name == "TEST_REGISTRY_PASSWORD" {
				return password
			}
			return ""
		},
	}
}

func (a *imageApp) deploy(tb testing.TB, tag string) *Outcome {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return DeployImage(ctx, a.conn, a.app, a.host.Name, a.runOptions(a.fx.reg.Password), a.options(tb, tag))
}

func (a *imageApp) rollback(tb testing.TB, to string) *Outcome {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := a.runOptions(a.fx.reg.Password)
	opts.To = to
	return RollbackImage(ctx, a.conn, a.app, a.host.Name, opts, &ImageOptions{Compose: compose.Auto})
}

// mustDeploy deploys tag and fails the test unless it went live.
func (a *imageApp) mustDeploy(tb testing.TB, tag string) *Outcome {
	tb.Helper()
	out := a.deploy(tb, tag)
	if out.Err != nil {
		tb.Fatalf("deploy %s: %v\nlog:\n%s", tag, out.Err, a.logs)
	}
	if out.Image == nil || out.Image.After == nil || out.Image.After.Digest != a.fx.digests[tag] {
		tb.Fatalf("deploy %s: live image %+v, want digest %s", tag, out.Image, a.fx.digests[tag])
	}
	tb.Logf("deploy %s: %s, steps %v", tag, out.Duration, out.Steps)
	return out
}

// version fetches /VERSION from the app's published port, through the SSH connection like a check does.
func (a *imageApp) version(tb testing.TB) string {
	tb.Helper()
	client := &http.Client{Transport: &http.Transport{DialContext: a.conn.Dial, DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/VERSION", a.port))
	if err != nil {
		tb.Fatalf("GET /VERSION: %v", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(data))
}

func (a *imageApp) history(tb testing.TB) []release.HistoryEntry {
	tb.Helper()
	h, err := release.ReadHistory(context.Background(), a.conn, release.Layout{Path: a.app.Path})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// logSink collects the log lines of a run.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *logSink) add(host, line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, host+" | "+line)
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}
