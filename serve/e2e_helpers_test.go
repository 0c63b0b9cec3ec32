package serve_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/fleet"
	"github.com/skiffdeploy/skiff/internal/testenv"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/serve"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const apiToken = "test-api-token"

// liveServer is a serve.Server answering on a real loopback port, started for one test.
type liveServer struct {
	t   *testing.T
	srv *serve.Server
	url string
}

// lateHandler lets a test know the server's URL (to configure a registry or an inventory with it) before
// the server exists.
type lateHandler struct{ h atomic.Pointer[http.Handler] }

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := l.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.Error(w, "starting", http.StatusServiceUnavailable)
}

// listen starts the HTTP side first; start attaches the server to it.
func listen(t *testing.T) (*httptest.Server, *lateHandler) {
	t.Helper()
	late := &lateHandler{}
	hs := httptest.NewServer(late)
	t.Cleanup(hs.Close)
	return hs, late
}

// start loads the inventory, starts a server on it with secrets, and drains it in cleanup.
func start(t *testing.T, hs *httptest.Server, late *lateHandler, invFile string, maxJobs int, secrets map[string]string) *liveServer {
	t.Helper()
	inv, err := inventory.Load(invFile)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := serve.New(serve.Config{
		Inventory: inv, State: filepath.Join(t.TempDir(), "serve.db"), Token: apiToken, MaxJobs: maxJobs,
		Secret: func(n string) string { return secrets[n] },
		Engine: func(origin string, events func(fleet.Event)) *fleet.Engine {
			return fleet.New(fleet.Config{Inventory: inv, Who: fleet.Who{Operator: "test", Origin: origin}, Events: events})
		},
		Logf: func(format string, args ...any) { t.Logf("serve: "+format, args...) },
	})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	late.h.Store(&h)
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := srv.Drain(ctx); err != nil {
			t.Errorf("drain: %v", err)
		}
		srv.Close()
	})
	return &liveServer{t: t, srv: srv, url: hs.URL}
}

// hook posts body to trigger with headers and returns the status and the JSON answer.
func hook(t testing.TB, url, trigger string, body []byte, kv ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/hooks/"+trigger, bytes.NewReader(body))
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func signature(body []byte, secret string) string {
	return "sha256=" + hex.EncodeToString(serve.Sign(body, secret))
}

// apiJob is GET /api/jobs/ID.
type apiJob struct {
	serve.Job
	Log string `json:"log"`
}

func (s *liveServer) get(path string, v any) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
}

func (s *liveServer) job(id uint64) apiJob {
	var j apiJob
	s.get(fmt.Sprintf("/api/jobs/%d", id), &j)
	return j
}

func (s *liveServer) jobs() []serve.Job {
	var out struct{ Jobs []serve.Job }
	s.get("/api/jobs", &out)
	return out.Jobs
}

// wait polls job id until it is done and returns it; it fails the test after timeout.
func (s *liveServer) wait(id uint64, timeout time.Duration) apiJob {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		j := s.job(id)
		if j.Done() {
			return j
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("job %d still %s after %s; log:\n%s", id, j.Status, timeout, j.Log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func jobID(t testing.TB, code int, ans map[string]any) uint64 {
	t.Helper()
	id, ok := ans["job"].(float64)
	if code != http.StatusAccepted || !ok {
		t.Fatalf("answer %d %v, want 202 with a job", code, ans)
	}
	return uint64(id)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// httpGet returns the body of url, or "" when it does not answer 200.
func httpGet(url string) string {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// sshConnections counts the connections a host's sshd has logged so far.
func sshConnections(h *testenv.Host) int {
	return strings.Count(h.Log(), "Connection from")
}

// gitRepo makes a repository with one commit of files and returns its path and commit.
func gitRepo(t *testing.T, files map[string]string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	run := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("init", "-q", "-b", "main")
	for name, content := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run("add", "-A")
	run("commit", "-q", "-m", "test")
	return dir, run("rev-parse", "HEAD")
}

// appsRead waits until the server has read every app's hosts once and is not reading them now.
func (s *liveServer) appsRead() []serve.AppState {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var out struct{ Apps []serve.AppState }
		s.get("/api/apps", &out)
		done := true
		for _, a := range out.Apps {
			done = done && a.Read != nil && !a.Reading
		}
		if done {
			return out.Apps
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("apps not read after a minute: %+v", out.Apps)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metric returns the value of one sample of /metrics, such as `skiff_serve_jobs_total{app="x",result="ok"}`,
// or 0 when it is not there.
func (s *liveServer) metric(sample string) float64 {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}

// hookSecret is the secret of the generic triggers sourceApps writes.
const hookSecret = "hook-secret"

// sourceApps are source apps on h1 of the shared environment, each with a generic trigger APP-ci that
// fetches the one commit of a local repository.
type sourceApps struct {
	env    *testenv.Env
	inv    string // the inventory file
	base   string // app APP lives in base/APP on h1
	commit string
}

// newSourceApps writes an inventory of head (a [serve] table, or "") and one app per name, with extra[name]
// added to its table.
func newSourceApps(t *testing.T, files map[string]string, head string, extra map[string]string, names ...string) *sourceApps {
	t.Helper()
	env := testenv.Shared(t)
	repo, commit := gitRepo(t, files)
	base := filepath.Join(env.Hosts[0].Root, "srv", fmt.Sprintf("serve-%s-%d", strings.ToLower(t.Name()), time.Now().UnixNano()%1e9))
	t.Cleanup(func() { os.RemoveAll(base) })
	var b strings.Builder
	b.WriteString(head)
	for _, app := range names {
		fmt.Fprintf(&b, "\n[apps.%s]\nhosts = [\"h1\"]\npath = %s\n%s", app, testenv.TOMLString(filepath.Join(base, app)), extra[app])
		fmt.Fprintf(&b, "\n[[triggers]]\nname = %q\nkind = \"generic\"\nsecret_env = \"HOOK\"\napp = %q\nrepo = %s\n", app+"-ci", app, testenv.TOMLString(repo))
	}
	return &sourceApps{env: env, inv: env.WriteInventory(t, b.String()), base: base, commit: commit}
}

// send posts a signed {"revision": commit, "id": id} to APP-ci and returns the job it queued.
func (a *sourceApps) send(t testing.TB, url, app, id string) uint64 {
	t.Helper()
	body := []byte(fmt.Sprintf(`{"revision":%q,"id":%q}`, a.commit, id))
	code, ans := hook(t, url, app+"-ci", body, "X-Skiff-Signature", signature(body, hookSecret))
	return jobID(t, code, ans)
}

// serveTable is a [serve] table on a free port; it returns the table and the server's URL.
func serveTable(t testing.TB, maxJobs int) (string, string) {
	port := freePort(t)
	return fmt.Sprintf("[serve]\nlisten = \"127.0.0.1:%d\"\nstate = %s\nmax_jobs = %d\n", port, testenv.TOMLString(filepath.Join(t.TempDir(), "serve.db")), maxJobs),
		fmt.Sprintf("http://127.0.0.1:%d", port)
}
