package serve

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/fleet"
	"github.com/skiffdeploy/skiff/inventory"
)

const testInventory = `
[hosts.web1]
address = "127.0.0.1"
port = 1

[apps.shop]
hosts = ["web1"]
path = "/srv/shop"
image = "registry.example.com:5000/shop/app"
service = "app"

[[triggers]]
name = "shop-registry"
kind = "registry"
secret_env = "REG_SECRET"
app = "shop"

[[triggers]]
name = "shop-gh"
kind = "github"
secret_env = "GH_SECRET"
app = "shop"

[[triggers]]
name = "shop-gl"
kind = "gitlab"
secret_env = "GL_SECRET"
app = "shop"

[[triggers]]
name = "shop-any"
kind = "generic"
secret_env = "ANY_SECRET"
app = "shop"
`

var testSecrets = map[string]string{"REG_SECRET": "reg-s3cret", "GH_SECRET": "gh-s3cret", "GL_SECRET": "gl-s3cret", "ANY_SECRET": "any-s3cret"}

// newHeldServer is a server whose queue never starts a job: the answers of the HTTP API without any SSH.
func newHeldServer(t *testing.T, state string) *Server {
	t.Helper()
	inv, err := inventory.Parse(filepath.Join(t.TempDir(), "hosts.toml"), []byte(testInventory))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{
		Inventory: inv, State: state, Token: "api-token", Secret: func(n string) string { return testSecrets[n] },
		Engine: func(string, func(fleet.Event)) *fleet.Engine {
			t.Error("a job or a status read started")
			return fleet.New(fleet.Config{Inventory: inv})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.draining = true
	t.Cleanup(func() { s.Close() })
	return s
}

type answer struct {
	code int
	body map[string]any
}

func post(t *testing.T, h http.Handler, path string, body []byte, kv ...string) answer {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	a := answer{code: rec.Code}
	_ = json.Unmarshal(rec.Body.Bytes(), &a.body)
	return a
}

func signed(body []byte, secret string) string {
	return "sha256=" + hex.EncodeToString(Sign(body, secret))
}

func TestHook_Answers(t *testing.T) {
	s := newHeldServer(t, filepath.Join(t.TempDir(), "serve.db"))
	h := s.Handler()
	gh := readTestdata(t, "github_release.json")
	reg := readTestdata(t, "registry_push.json")
	gl := readTestdata(t, "gitlab_pipeline.json")
	generic := []byte(`{"tag":"v7"}`)
	tests := []struct {
		name string
		path string
		body []byte
		kv   []string
		code int
		key  string // in the JSON answer
	}{
		{"unknown trigger", "/hooks/nope", generic, nil, 404, "error"},
		{"over 1 MiB", "/hooks/shop-any", bytes.Repeat([]byte("x"), MaxBody+1), []string{"X-Skiff-Signature", signed(generic, "any-s3cret")}, 413, "error"},
		{"missing signature", "/hooks/shop-gh", gh, []string{"X-GitHub-Event", "release"}, 401, "error"},
		{"signature with another secret", "/hooks/shop-gh", gh, []string{"X-GitHub-Event", "release", "X-Hub-Signature-256", signed(gh, "wrong")}, 401, "error"},
		{"wrong gitlab token", "/hooks/shop-gl", gl, []string{"X-Gitlab-Event", "Pipeline Hook", "X-Gitlab-Token", "gl-s3cre"}, 401, "error"},
		{"registry without bearer", "/hooks/shop-registry", reg, nil, 401, "error"},
		{"signed garbage", "/hooks/shop-any", []byte("{not json"), []string{"X-Skiff-Signature", signed([]byte("{not json"), "any-s3cret")}, 400, "error"},
		{"github ping", "/hooks/shop-gh", gh, []string{"X-GitHub-Event", "ping", "X-GitHub-Delivery", "p1", "X-Hub-Signature-256", signed(gh, "gh-s3cret")}, 200, "ignored"},
		{"github release", "/hooks/shop-gh", gh, []string{"X-GitHub-Event", "release", "X-GitHub-Delivery", "r1", "X-Hub-Signature-256", signed(gh, "gh-s3cret")}, 202, "job"},
		{"github release replayed", "/hooks/shop-gh", gh, []string{"X-GitHub-Event", "release", "X-GitHub-Delivery", "r1", "X-Hub-Signature-256", signed(gh, "gh-s3cret")}, 200, "ignored"},
		{"gitlab pipeline", "/hooks/shop-gl", gl, []string{"X-Gitlab-Event", "Pipeline Hook", "X-Gitlab-Event-UUID", "g1", "X-Gitlab-Token", "gl-s3cret"}, 202, "job"},
		{"registry push", "/hooks/shop-registry", reg, []string{"Authorization", "Bearer reg-s3cret"}, 202, "job"},
		{"registry push replayed", "/hooks/shop-registry", reg, []string{"Authorization", "Bearer reg-s3cret"}, 200, "ignored"},
		{"generic tag", "/hooks/shop-any", generic, []string{"X-Skiff-Signature", signed(generic, "any-s3cret")}, 202, "job"},
	}
	for _, tc := range tests {
		start := time.Now()
		a := post(t, h, tc.path, tc.body, tc.kv...)
		if a.code != tc.code || a.body[tc.key] == nil {
			t.Errorf("%s: %d %v, want %d with %q", tc.name, a.code, a.body, tc.code, tc.key)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: answered in %s", tc.name, d)
		}
	}
	jobs, err := s.store.jobs("", 100)
	if err != nil {
		t.Fatal(err)
	}
	// Four queued events for one app: the newest waits, the three before it were superseded one by one.
	var statuses []string
	for _, j := range jobs {
		statuses = append(statuses, j.Status)
	}
	if got := strings.Join(statuses, ","); got != "queued,superseded,superseded,superseded" {
		t.Fatalf("jobs newest first: %s", got)
	}
	if jobs[0].Tag != "v7" || jobs[1].Tag != "v2" || jobs[1].SupersededBy != jobs[0].ID || jobs[3].Tag != "0.0.1" {
		t.Fatalf("jobs %+v %+v %+v", jobs[0], jobs[1], jobs[3])
	}
}

func get(t *testing.T, h http.Handler, path string, kv ...string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

func TestAPI_TokenAndRoutes(t *testing.T) {
	s := newHeldServer(t, filepath.Join(t.TempDir(), "serve.db"))
	h := s.Handler()
	body := []byte(`{"tag":"v1"}`)
	if a := post(t, h, "/hooks/shop-any", body, "X-Skiff-Signature", signed(body, "any-s3cret")); a.code != 202 {
		t.Fatalf("hook: %d %v", a.code, a.body)
	}
	auth := []string{"Authorization", "Bearer api-token"}
	tests := []struct {
		name string
		path string
		kv   []string
		code int
		want string
	}{
		{"jobs without token", "/api/jobs", nil, 401, "bearer token required"},
		{"jobs with a wrong token", "/api/jobs", []string{"Authorization", "Bearer api-tokem"}, 401, "bearer token required"},
		{"jobs", "/api/jobs", auth, 200, `"status":"queued"`},
		{"jobs of another app", "/api/jobs?app=web", auth, 200, `{"jobs":[]}`},
		{"one job", "/api/jobs/1", auth, 200, `"tag":"v1"`},
		{"no such job", "/api/jobs/99", auth, 404, "no such job"},
		{"apps", "/api/apps", auth, 200, `"app":"shop"`},
		{"cookie works too", "/api/apps", []string{"Cookie", tokenCookie + "=api-token"}, 200, `"app":"shop"`},
		{"metrics need the token", "/metrics", nil, 401, ""},
		{"metrics", "/metrics", auth, 200, `skiff_serve_webhooks_total{result="queued",trigger="shop-any"} 1`},
		{"healthz is open", "/healthz", nil, 200, `"ok":true`},
		{"status page asks to sign in", "/", nil, 401, `name="token"`},
		{"status page", "/", auth, 200, `data-job="1"`},
	}
	for _, tc := range tests {
		code, got := get(t, h, tc.path, tc.kv...)
		if code != tc.code || !strings.Contains(got, tc.want) {
			t.Errorf("%s: %d %s, want %d with %s", tc.name, code, got, tc.code, tc.want)
		}
	}
	// The login form stores the token in a cookie; a wrong one is refused.
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader("token=api-token"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if c := rec.Result().Cookies(); rec.Code != http.StatusSeeOther || len(c) != 1 || c[0].Value != "api-token" || !c[0].HttpOnly {
		t.Fatalf("login: %d %v", rec.Code, rec.Result().Cookies())
	}
}

func TestStore_RecoverAfterCrash(t *testing.T) {
	state := filepath.Join(t.TempDir(), "serve.db")
	st, err := openStore(state)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i, j := range []*Job{
		{App: "shop", Trigger: "t", Delivery: "1", Status: StatusRunning, Created: now, Started: &now},
		{App: "web", Trigger: "t", Delivery: "2", Status: StatusQueued, Created: now},
		{App: "api", Trigger: "t", Delivery: "3", Status: StatusQueued, Created: now},
		{App: "api", Trigger: "t", Delivery: "4", Status: StatusQueued, Created: now},
	} {
		if _, err := st.add(j); err != nil || j.ID != uint64(i+1) {
			t.Fatalf("add: %v, id %d", err, j.ID)
		}
	}
	waiting, interrupted, err := st.recover(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(interrupted) != 1 || interrupted[0].ID != 1 || waiting["web"] != 2 || waiting["api"] != 4 || len(waiting) != 2 {
		t.Fatalf("interrupted %v, waiting %v", interrupted, waiting)
	}
	j3, _ := st.job(3)
	if j3.Status != StatusSuperseded || j3.SupersededBy != 4 {
		t.Fatalf("job 3: %+v", j3)
	}
	if _, err := st.add(&Job{App: "web", Trigger: "t", Delivery: "2", Created: now}); err != errDuplicate {
		t.Fatalf("same delivery again: %v", err)
	}
	st.close()
}

// TestStore_PruneKeepsEachAppsNewestFinishedJobs checks that prune deletes each app's finished jobs beyond
// its newest keep, with their logs, and never a queued or running job.
func TestStore_PruneKeepsEachAppsNewestFinishedJobs(t *testing.T) {
	st, err := openStore(filepath.Join(t.TempDir(), "serve.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	now := time.Now().UTC()
	jobs := []struct {
		app, status string
		kept        bool
	}{
		{"shop", StatusOK, false},
		{"shop", StatusRunning, true}, // never deleted, whatever its age
		{"shop", StatusFailed, false},
		{"web", StatusOK, true},
		{"shop", StatusSuperseded, true},
		{"shop", StatusOK, true},
		{"web", StatusQueued, true},
	}
	for i, j := range jobs {
		job := &Job{App: j.app, Trigger: "t", Delivery: fmt.Sprint(i), Status: j.status, Created: now}
		if _, err := st.add(job); err != nil {
			t.Fatal(err)
		}
		if err := st.putLog(job.ID, []byte("log of "+fmt.Sprint(job.ID))); err != nil {
			t.Fatal(err)
		}
	}
	deleted, err := st.prune(now, 2)
	if err != nil || deleted != 2 {
		t.Fatalf("prune: %d deleted, %v; want 2", deleted, err)
	}
	for i, j := range jobs {
		id := uint64(i + 1)
		got, err := st.job(id)
		if err != nil {
			t.Fatal(err)
		}
		log, _ := st.log(id)
		if (got != nil) != j.kept || (len(log) > 0) != j.kept {
			t.Errorf("job %d (%s, %s): kept %v, log %q; want kept %v", id, j.app, j.status, got != nil, log, j.kept)
		}
	}
}
