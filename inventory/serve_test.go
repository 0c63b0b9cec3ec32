package inventory

import (
	"path/filepath"
	"strings"
	"testing"
)

// serveApps are an image app and a source app that triggers refer to.
const serveApps = hostsOK + `
[apps.shop]
hosts = ["web1"]
path = "/srv/shop"
image = "registry.example.com/shop/app"
service = "app"

[apps.api]
hosts = ["web"]
path = "/srv/api"
`

func TestLoad_ServeAndTriggers(t *testing.T) {
	inv, err := Parse("/etc/skiff/hosts.toml", []byte(serveApps+`
[serve]
state = "serve.db"
max_jobs = 2

[[triggers]]
name = "shop-registry"
kind = "registry"
secret_env = "SHOP_HOOK_SECRET"
app = "shop"
ref = "v*"

[[triggers]]
name = "shop-ci"
kind = "gitlab"
secret_env = "SHOP_CI_SECRET"
app = "shop"
tag = "main-{{.ShortSHA}}"

[[triggers]]
name = "api-push"
kind = "github"
secret_env = "API_SECRET"
app = "api"
ref = "main"
repo = "git@github.com:team/api.git"
`))
	if err != nil {
		t.Fatal(err)
	}
	s := inv.Serve
	if s == nil || s.Listen != "127.0.0.1:8099" || s.TokenEnv != "SKIFF_SERVE_TOKEN" || s.MaxJobs != 2 || s.State != filepath.Join("/etc/skiff", "serve.db") {
		t.Fatalf("serve %+v", s)
	}
	if len(inv.Triggers) != 3 || inv.Triggers[2].Repo != "git@github.com:team/api.git" {
		t.Fatalf("triggers %+v", inv.Triggers)
	}
	tag, err := inv.Triggers[1].ExpandTag(TagData{SHA: "0123456789abcdef", ShortSHA: "01234567"})
	if err != nil || tag != "main-01234567" {
		t.Fatalf("ExpandTag = %q, %v", tag, err)
	}
}

func TestLoad_ServeAndTriggerErrors(t *testing.T) {
	trig := func(body string) string { return serveApps + "\n[[triggers]]\n" + body }
	tests := []struct {
		name, toml, want string
	}{
		{"unknown serve key", serveApps + "\n[serve]\nport = 80\n", `hosts.toml:20: serve.port: unknown key`},
		{"bad listen", serveApps + "\n[serve]\nlisten = \"8099\"\n", `hosts.toml:20: serve.listen: "8099" is not host:port`},
		{"bad token env", serveApps + "\n[serve]\ntoken_env = \"MY-TOKEN\"\n", `hosts.toml:20: serve.token_env: "MY-TOKEN" is not an environment variable name`},
		{"max_jobs zero", serveApps + "\n[serve]\nmax_jobs = 0\n", `hosts.toml:20: serve.max_jobs: must be at least 1`},
		{"unknown app", trig("name = \"t\"\nkind = \"registry\"\nsecret_env = \"S\"\napp = \"nope\"\n"), `hosts.toml:23: triggers[0].app: unknown app "nope"`},
		{"missing secret", trig("name = \"t\"\nkind = \"registry\"\napp = \"shop\"\n"), `hosts.toml:19: triggers[0].secret_env: is required`},
		{"bad secret env", trig("name = \"t\"\nkind = \"registry\"\nsecret_env = \"1X\"\napp = \"shop\"\n"), `hosts.toml:22: triggers[0].secret_env: "1X" is not an environment variable name`},
		{"unknown kind", trig("name = \"t\"\nkind = \"bitbucket\"\nsecret_env = \"S\"\napp = \"shop\"\n"), `hosts.toml:21: triggers[0].kind: unknown kind "bitbucket" (want registry, gitlab, github or generic)`},
		{"unknown trigger key", trig("name = \"t\"\nkind = \"registry\"\nsecret_env = \"S\"\napp = \"shop\"\nbranch = \"main\"\n"), `hosts.toml:24: triggers[0].branch: unknown key`},
		{"registry for source app", trig("name = \"t\"\nkind = \"registry\"\nsecret_env = \"S\"\napp = \"api\"\n"), `hosts.toml:23: triggers[0].app: registry triggers deploy image apps; api is a source app`},
		{"source app without repo", trig("name = \"t\"\nkind = \"gitlab\"\nsecret_env = \"S\"\napp = \"api\"\n"), `hosts.toml:19: triggers[0].repo: is required: source app api is fetched from it`},
		{"bad glob", trig("name = \"t\"\nkind = \"registry\"\nsecret_env = \"S\"\napp = \"shop\"\nref = \"[\"\n"), `hosts.toml:24: triggers[0].ref: invalid glob "[": syntax error in pattern`},
		{"bad tag template", trig("name = \"t\"\nkind = \"gitlab\"\nsecret_env = \"S\"\napp = \"shop\"\ntag = \"{{.Nope}}\"\n"), `triggers[0].tag: tag template:`},
		{"duplicate name", trig("name = \"t\"\nkind = \"registry\"\nsecret_env = \"S\"\napp = \"shop\"\n[[triggers]]\nname = \"t\"\nkind = \"registry\"\nsecret_env = \"S\"\napp = \"shop\"\n"), `hosts.toml:25: triggers[1].name: duplicate trigger name "t" (also triggers[0])`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("hosts.toml", []byte(tc.toml))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if got := err.Error(); got != tc.want && !(tc.want[0] != 'h' && strings.Contains(got, tc.want)) {
				t.Fatalf("error\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}
