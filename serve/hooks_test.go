package serve

import (
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffdeploy/skiff/inventory"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	imageApp  = &inventory.App{Name: "shop", Kind: inventory.KindImage, Image: "registry.example.com:5000/shop/app"}
	sourceApp = &inventory.App{Name: "api", Kind: inventory.KindSource}
)

func headers(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestParse_Payloads(t *testing.T) {
	tests := []struct {
		name    string
		kind    string
		file    string
		h       http.Header
		trigger inventory.Trigger
		app     *inventory.App
		want    Event
		bad     bool
		ignored bool
	}{
		{name: "gitlab push of main, image tag is the sha", kind: "gitlab", file: "gitlab_push.json",
			h:   headers("X-Gitlab-Event", "Push Hook", "X-Gitlab-Event-UUID", "u-1"),
			app: imageApp, trigger: inventory.Trigger{Ref: "main"},
			want: Event{Delivery: "u-1", What: "Push Hook", Ref: "main", SHA: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", Tag: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"}},
		{name: "gitlab push with a tag template", kind: "gitlab", file: "gitlab_push.json",
			h:   headers("X-Gitlab-Event", "Push Hook", "X-Gitlab-Event-UUID", "u-1"),
			app: imageApp, trigger: inventory.Trigger{Tag: "{{.Ref}}-{{.ShortSHA}}"},
			want: Event{Delivery: "u-1", What: "Push Hook", Ref: "main", SHA: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", Tag: "main-da156088"}},
		{name: "gitlab push of another branch is ignored", kind: "gitlab", file: "gitlab_push.json",
			h:   headers("X-Gitlab-Event", "Push Hook"),
			app: sourceApp, trigger: inventory.Trigger{Ref: "release/*"},
			want: Event{What: "Push Hook", Ref: "main", SHA: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", Ignored: `ref "main" does not match "release/*"`}},
		{name: "gitlab tag push for a source app", kind: "gitlab", file: "gitlab_tag_push.json",
			h: headers("X-Gitlab-Event", "Tag Push Hook", "X-Gitlab-Event-UUID", "u-2"), app: sourceApp, trigger: inventory.Trigger{Ref: "v*"},
			want: Event{Delivery: "u-2", What: "Tag Push Hook", Ref: "v1.0.0", SHA: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7"}},
		{name: "gitlab successful pipeline", kind: "gitlab", file: "gitlab_pipeline.json",
			h: headers("X-Gitlab-Event", "Pipeline Hook", "X-Gitlab-Event-UUID", "u-3"), app: imageApp,
			want: Event{Delivery: "u-3", What: "Pipeline Hook", Ref: "master", SHA: "bcbb5ec396a2c0f828686f14fac9b80b780504f2", Tag: "bcbb5ec396a2c0f828686f14fac9b80b780504f2"}},
		{name: "gitlab merge request event is ignored", kind: "gitlab", file: "gitlab_push.json",
			h: headers("X-Gitlab-Event", "Merge Request Hook", "X-Gitlab-Event-UUID", "u-4"), app: imageApp,
			want: Event{Delivery: "u-4", What: "Merge Request Hook", Ignored: "event Merge Request Hook is not deployed (push, tag push and pipeline events are)"}},
		{name: "gitlab without event header", kind: "gitlab", file: "gitlab_push.json", h: headers(), app: imageApp, bad: true},
		{name: "github push", kind: "github", file: "github_push.json",
			h: headers("X-GitHub-Event", "push", "X-GitHub-Delivery", "d-1"), app: sourceApp, trigger: inventory.Trigger{Ref: "main"},
			want: Event{Delivery: "d-1", What: "push", Ref: "main", SHA: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"}},
		{name: "github release deploys its tag", kind: "github", file: "github_release.json",
			h: headers("X-GitHub-Event", "release", "X-GitHub-Delivery", "d-2"), app: imageApp,
			want: Event{Delivery: "d-2", What: "release", Ref: "0.0.1", Tag: "0.0.1"}},
		{name: "github workflow run", kind: "github", file: "github_workflow_run.json",
			h: headers("X-GitHub-Event", "workflow_run", "X-GitHub-Delivery", "d-3"), app: imageApp, trigger: inventory.Trigger{Tag: "build-{{.ShortSHA}}"},
			want: Event{Delivery: "d-3", What: "workflow_run", Ref: "main", SHA: "acb5820ced9479c074f688cc328bf03f341a511d", Tag: "build-acb5820c"}},
		{name: "github ping is ignored", kind: "github", file: "github_push.json",
			h: headers("X-GitHub-Event", "ping", "X-GitHub-Delivery", "d-4"), app: imageApp,
			want: Event{Delivery: "d-4", What: "ping", Ignored: "event ping is not deployed (push, release and workflow_run are)"}},
		{name: "registry manifest push of the app's repository", kind: "registry", file: "registry_push.json", app: imageApp, trigger: inventory.Trigger{Ref: "v*"},
			want: Event{Delivery: "6b0a6b4f-4fb3-4c3b-a4a2-0b1e2e5f0a01", What: "push of shop/app:v2", Tag: "v2"}},
		{name: "registry push to another repository", kind: "registry", file: "registry_push.json",
			app: &inventory.App{Name: "web", Kind: inventory.KindImage, Image: "registry.example.com:5000/web/app"}, ignored: true},
		{name: "registry tag filter", kind: "registry", file: "registry_push.json", app: imageApp, trigger: inventory.Trigger{Ref: "release-*"}, ignored: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := readTestdata(t, tc.file)
			h := tc.h
			if h == nil {
				h = http.Header{}
			}
			tr := tc.trigger
			tr.Kind = tc.kind
			got, err := hookKinds[tc.kind].parse(h, body, &tr, tc.app)
			var bad *malformedError
			if tc.bad {
				if !errors.As(err, &bad) {
					t.Fatalf("err %v, want a malformed request", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.ignored {
				if got.Ignored == "" {
					t.Fatalf("event %+v, want it ignored", got)
				}
				return
			}
			if tc.want.Delivery == "" {
				tc.want.Delivery = bodyDelivery(body)
			}
			if got != tc.want {
				t.Fatalf("event\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestVerify_Secrets(t *testing.T) {
	body := []byte(`{"tag":"v1"}`)
	sig := "sha256=" + hex.EncodeToString(Sign(body, "s3cret"))
	tests := []struct {
		name string
		kind string
		h    http.Header
		want bool
	}{
		{"registry bearer", "registry", headers("Authorization", "Bearer s3cret"), true},
		{"registry wrong bearer", "registry", headers("Authorization", "Bearer s3cre"), false},
		{"registry basic", "registry", headers("Authorization", "Basic s3cret"), false},
		{"gitlab token", "gitlab", headers("X-Gitlab-Token", "s3cret"), true},
		{"gitlab missing token", "gitlab", headers(), false},
		{"github signature", "github", headers("X-Hub-Signature-256", sig), true},
		{"github sha1 signature only", "github", headers("X-Hub-Signature", sig), false},
		{"github bad hex", "github", headers("X-Hub-Signature-256", "sha256=zz"), false},
		{"generic signature", "generic", headers("X-Skiff-Signature", sig), true},
		{"generic signature of another body", "generic", headers("X-Skiff-Signature", "sha256="+hex.EncodeToString(Sign([]byte("{}"), "s3cret"))), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := hookKinds[tc.kind].verify(tc.h, body, "s3cret"); got != tc.want {
				t.Fatalf("verify = %v, want %v", got, tc.want)
			}
			if hookKinds[tc.kind].verify(tc.h, body, "") {
				t.Fatal("an empty secret verified a request")
			}
		})
	}
}

func TestRedactURL_HidesPassword(t *testing.T) {
	for in, want := range map[string]string{
		"https://ci:s3cret@gitlab.example.com/team/api.git": "https://ci:***@gitlab.example.com/team/api.git",
		"https://gitlab.example.com/team/api.git":           "https://gitlab.example.com/team/api.git",
		"git@gitlab.example.com:team/api.git":               "git@gitlab.example.com:team/api.git",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
	err := redactErr(errors.New("git fetch: exit status 128: fatal: unable to access 'https://ci:s3cret@gitlab.example.com/team/api.git/'"), "https://ci:s3cret@gitlab.example.com/team/api.git")
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("password in %v", err)
	}
}
