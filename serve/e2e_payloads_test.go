package serve_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/internal/testenv"
)

// TestServe_RecordedPayloads takes GitLab's and GitHub's documented push payloads, pointed at a real commit
// of a local repository and signed in the test: bad or missing secrets are refused with 401 before any SSH
// connection is opened, a valid event queues a deploy that fetches the commit and ships it, with the trigger
// and delivery id recorded as the target history's origin, and a replayed delivery queues nothing.
func TestServe_RecordedPayloads(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	env := testenv.Shared(t)
	h := env.Hosts[0]
	repo, commit := gitRepo(t, map[string]string{"VERSION": "from-git\n", "app/main.py": "print('hi')\n"})
	dir := filepath.Join(h.Root, "srv", fmt.Sprintf("serve-payloads-%d", time.Now().UnixNano()%1e9))
	t.Cleanup(func() { os.RemoveAll(dir) })
	inv := env.WriteInventory(t, fmt.Sprintf(`[apps.api]
hosts = ["h1"]
path = %s

[[triggers]]
name = "api-gitlab"
kind = "gitlab"
secret_env = "GL"
app = "api"
ref = "main"
repo = %s

[[triggers]]
name = "api-github"
kind = "github"
secret_env = "GH"
app = "api"
ref = "main"
repo = %s
`, testenv.TOMLString(dir), testenv.TOMLString(repo), testenv.TOMLString(repo)))
	hs, late := listen(t)
	s := start(t, hs, late, inv, 2, map[string]string{"GL": "gitlab-token", "GH": "github-secret"})

	read := func(name, documented string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return []byte(strings.ReplaceAll(string(b), documented, commit))
	}
	gl := read("gitlab_push.json", "da1560886d4f094c3e6c9ef40349f7d38b5d27d7")
	gh := read("github_push.json", "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c")

	s.appsRead()
	before := sshConnections(h)
	for _, tc := range []struct {
		name, trigger string
		kv            []string
	}{
		{"gitlab without token", "api-gitlab", []string{"X-Gitlab-Event", "Push Hook", "X-Gitlab-Event-UUID", "gl-1"}},
		{"gitlab wrong token", "api-gitlab", []string{"X-Gitlab-Event", "Push Hook", "X-Gitlab-Event-UUID", "gl-1", "X-Gitlab-Token", "gitlab-tokeN"}},
		{"github without signature", "api-github", []string{"X-GitHub-Event", "push", "X-GitHub-Delivery", "gh-1"}},
		{"github signed with another secret", "api-github", []string{"X-GitHub-Event", "push", "X-GitHub-Delivery", "gh-1", "X-Hub-Signature-256", signature(gh, "github-secreT")}},
		{"github signature of another body", "api-github", []string{"X-GitHub-Event", "push", "X-GitHub-Delivery", "gh-1", "X-Hub-Signature-256", signature(gl, "github-secret")}},
	} {
		body := gl
		if tc.trigger == "api-github" {
			body = gh
		}
		if code, ans := hook(t, s.url, tc.trigger, body, tc.kv...); code != http.StatusUnauthorized {
			t.Errorf("%s: %d %v, want 401", tc.name, code, ans)
		}
	}
	time.Sleep(500 * time.Millisecond)
	if n := sshConnections(h); n != before {
		t.Fatalf("refused webhooks opened %d SSH connection(s) to h1", n-before)
	}
	if jobs := s.jobs(); len(jobs) != 0 {
		t.Fatalf("refused webhooks queued %+v", jobs)
	}

	code, ans := hook(t, s.url, "api-gitlab", gl, "X-Gitlab-Event", "Push Hook", "X-Gitlab-Event-UUID", "gl-1", "X-Gitlab-Token", "gitlab-token")
	j := s.wait(jobID(t, code, ans), 2*time.Minute)
	if j.Status != "ok" || j.Revision != commit || len(j.Hosts) != 1 || !j.Hosts[0].OK {
		t.Fatalf("gitlab job: %s %s revision %s; log:\n%s", j.Status, j.Error, j.Revision, j.Log)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "current", "VERSION")); string(got) != "from-git\n" {
		t.Fatalf("current/VERSION = %q", got)
	}
	hist, _ := os.ReadFile(filepath.Join(dir, ".skiff", "history.jsonl"))
	if !strings.Contains(string(hist), `"origin":"serve:api-gitlab/gl-1"`) || !strings.Contains(string(hist), commit) {
		t.Fatalf("history does not record the trigger, delivery and commit:\n%s", hist)
	}

	code, ans = hook(t, s.url, "api-gitlab", gl, "X-Gitlab-Event", "Push Hook", "X-Gitlab-Event-UUID", "gl-1", "X-Gitlab-Token", "gitlab-token")
	if code != http.StatusOK || ans["ignored"] == nil {
		t.Fatalf("replayed delivery: %d %v, want 200 ignored", code, ans)
	}
	if jobs := s.jobs(); len(jobs) != 1 {
		t.Fatalf("replayed delivery queued a job: %d jobs", len(jobs))
	}

	code, ans = hook(t, s.url, "api-github", gh, "X-GitHub-Event", "push", "X-GitHub-Delivery", "gh-1", "X-Hub-Signature-256", signature(gh, "github-secret"))
	if j := s.wait(jobID(t, code, ans), 2*time.Minute); j.Status != "ok" {
		t.Fatalf("github job: %s %s; log:\n%s", j.Status, j.Error, j.Log)
	}
}
