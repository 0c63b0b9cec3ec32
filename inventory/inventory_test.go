package inventory

import (
	"encoding/json"
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func loadExample(t *testing.T) *Inventory {
	t.Helper()
	inv, err := Options{Home: "/home/test"}.Load(filepath.Join("testdata", "hosts.toml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return inv
}

func TestLoad_DesignExample(t *testing.T) {
	inv := loadExample(t)

	wantDefaults := Defaults{
		User:           "deploy",
		Port:           22,
		IdentityFiles:  []string{"/home/test/.ssh/id_ed25519"},
		KnownHosts:     "/home/test/.ssh/known_hosts",
		ConnectTimeout: Duration{10 * time.Second},
		Keepalive:      Duration{15 * time.Second},
	}
	if !reflect.DeepEqual(inv.Defaults, wantDefaults) {
		t.Errorf("Defaults = %+v, want %+v", inv.Defaults, wantDefaults)
	}

	wantWeb1 := &Host{
		Name:           "web1",
		Address:        "10.0.0.11",
		User:           "deploy",
		Port:           22,
		IdentityFiles:  []string{"/home/test/.ssh/id_ed25519"},
		KnownHosts:     "/home/test/.ssh/known_hosts",
		ConnectTimeout: Duration{10 * time.Second},
		Keepalive:      Duration{15 * time.Second},
		Jump:           "bastion",
		Groups:         []string{"web"},
	}
	if !reflect.DeepEqual(inv.Hosts["web1"], wantWeb1) {
		t.Errorf("web1 = %+v, want %+v", inv.Hosts["web1"], wantWeb1)
	}
	if got := inv.Hosts["bastion"]; got.Jump != "" || got.Address != "203.0.113.5" || len(got.Groups) != 0 {
		t.Errorf("bastion = %+v, want a direct host at 203.0.113.5 without groups", got)
	}
	wantGroups := map[string][]string{"all": {"bastion", "web1", "web2"}, "web": {"web1", "web2"}}
	if got := inv.Groups(); !reflect.DeepEqual(got, wantGroups) {
		t.Errorf("Groups() = %v, want %v", got, wantGroups)
	}

	wantReg := &Registry{Name: "main", Server: "registry.example.com", Username: "ci", PasswordEnv: "REGISTRY_PASSWORD"}
	if !reflect.DeepEqual(inv.Registries["main"], wantReg) {
		t.Errorf("registry main = %+v, want %+v", inv.Registries["main"], wantReg)
	}

	wantAPI := &App{
		Name:         "api",
		Kind:         KindSource,
		Hosts:        []string{"web"},
		Path:         "/srv/api",
		Source:       filepath.Join("testdata", "build", "api"),
		Exclude:      []string{".git", "__pycache__", "*.pyc"},
		Shared:       []string{"logs", ".env"},
		KeepReleases: 5,
		Hooks: Hooks{
			BeforeSwitch: []string{"python3 -m venv .venv && .venv/bin/pip install -r requirements.txt"},
			AfterSwitch:  []string{},
		},
		Supervisor: Supervisor{URL: "unix:///var/run/supervisor.sock", Programs: []string{"api"}},
		Check:      Check{Ports: []int{8088}, HTTP: "http://127.0.0.1:8088/health", Timeout: Duration{30 * time.Second}},
		Rollout:    Rollout{Parallel: 10, Batch: "50%", MaxFail: 0},
		Timeout:    Duration{10 * time.Minute},
	}
	if !reflect.DeepEqual(inv.Apps["api"], wantAPI) {
		t.Errorf("app api =\n %+v\nwant\n %+v", inv.Apps["api"], wantAPI)
	}

	wantShop := &App{
		Name:        "shop",
		Kind:        KindImage,
		Hosts:       []string{"web1"},
		Path:        "/srv/shop",
		Check:       Check{Ports: []int{7001}, Timeout: Duration{30 * time.Second}},
		Rollout:     Rollout{Parallel: 10, Batch: "100%"},
		ComposeFile: filepath.Join("testdata", "deploy", "compose.yaml"),
		Service:     "app",
		Image:       "registry.example.com/shop/app",
		Registry:    "main",
		KeepImages:  3,
		Timeout:     Duration{10 * time.Minute},
	}
	if !reflect.DeepEqual(inv.Apps["shop"], wantShop) {
		t.Errorf("app shop =\n %+v\nwant\n %+v", inv.Apps["shop"], wantShop)
	}

	wantSchedules := []*Schedule{{
		Name: "nightly-prune", Cron: "CRON_TZ=UTC 0 3 * * *", Job: JobPrune, Hosts: []string{"all"}, Command: []string{},
	}}
	if !reflect.DeepEqual(inv.Schedules, wantSchedules) {
		t.Errorf("Schedules = %+v, want %+v", inv.Schedules[0], wantSchedules[0])
	}
}

func TestLoad_MissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load error = %v, want one wrapping fs.ErrNotExist", err)
	}
}

func TestParse_Overrides(t *testing.T) {
	const src = `
[defaults]
user = "deploy"
port = 2222
jump = "gw"
keepalive = "0s"

[hosts.gw]
address = "gw.example.com"
port = 22

[hosts.db]
address = "10.0.0.5"
user = ""
jump = ""
identity_files = ["/keys/db", "~/db2"]
connect_timeout = "1m30s"

[hosts.app]
address = "10.0.0.6"
user = "app"
known_hosts = "~/kh"

[apps.site]
hosts = ["all"]
path = "/srv/site"
source = "/abs/site"
rollout.batch = 2
rollout.max_fail = 1
check.timeout = "5s"
timeout = "1h"

[apps.web]
hosts = ["app"]
path = "/srv/web"
source = "~/web"
rollout = { batch = "3", parallel = 4 }

[[schedules]]
name = "redeploy"
cron = "0 */5 * * * *"
job = "deploy"
app = "web"
tag = "v1.2.3"

[[schedules]]
name = "uptime"
cron = "@every 1h"
job = "exec"
command = ["uptime"]
hosts = ["db", "app"]
`
	inv, err := Options{Home: "/h"}.Parse("/etc/skiff/hosts.toml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"gw keeps its own port", inv.Hosts["gw"].Port, 22},
		{"gw is reached directly although it is the default jump", inv.Hosts["gw"].Jump, ""},
		{"app inherits the default jump", inv.Hosts["app"].Jump, "gw"},
		{"db opts out of the default jump", inv.Hosts["db"].Jump, ""},
		{"db inherits the default port", inv.Hosts["db"].Port, 2222},
		{"db clears the user", inv.Hosts["db"].User, ""},
		{"app sets its user", inv.Hosts["app"].User, "app"},
		{"db identity files replace the defaults", inv.Hosts["db"].IdentityFiles, []string{"/keys/db", "/h/db2"}},
		{"app known_hosts expanded", inv.Hosts["app"].KnownHosts, "/h/kh"},
		{"db connect timeout", inv.Hosts["db"].ConnectTimeout.String(), "1m30s"},
		{"keepalive can be off", inv.Hosts["app"].Keepalive.Duration, time.Duration(0)},
		{"integer batch normalized", inv.Apps["site"].Rollout.Batch, "2"},
		{"string count batch", inv.Apps["web"].Rollout.Batch, "3"},
		{"inline rollout parallel", inv.Apps["web"].Rollout.Parallel, 4},
		{"max_fail", inv.Apps["site"].Rollout.MaxFail, 1},
		{"absolute source kept", inv.Apps["site"].Source, "/abs/site"},
		{"home source expanded", inv.Apps["web"].Source, "/h/web"},
		{"app timeout", inv.Apps["site"].Timeout.String(), "1h"},
		{"check timeout", inv.Apps["site"].Check.Timeout.String(), "5s"},
		{"deploy schedule tag", inv.Schedules[0].Tag, "v1.2.3"},
		{"exec schedule command", inv.Schedules[1].Command, []string{"uptime"}},
		{"schedules in file order", inv.Schedules[1].Name, "uptime"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Errorf("got %#v, want %#v", tc.got, tc.want)
			}
		})
	}
}

func TestParse_RelativeSourceFollowsInventoryDir(t *testing.T) {
	const src = "[hosts.a]\naddress = \"a\"\n[apps.x]\nhosts = [\"a\"]\npath = \"/srv/x\"\nsource = \"./build/x\"\n"
	inv, err := Parse("/etc/skiff/hosts.toml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := inv.Apps["x"].Source, "/etc/skiff/build/x"; got != want {
		t.Errorf("Source = %q, want %q", got, want)
	}
}

func TestInventory_JSON(t *testing.T) {
	inv := loadExample(t)
	out, err := json.Marshal(inv)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	s := string(out)
	for _, want := range []string{`"connect_timeout":"10s"`, `"timeout":"10m"`, `"password_env":"REGISTRY_PASSWORD"`, `"kind":"image"`, `"keep_releases":5`} {
		if !strings.Contains(s, want) {
			t.Errorf("JSON lacks %s:\n%s", want, s)
		}
	}
}

func TestDuration_Text(t *testing.T) {
	tests := []struct {
		name string
		in   time.Duration
		want string
	}{
		{"seconds", 10 * time.Second, "10s"},
		{"minutes drop zero seconds", 10 * time.Minute, "10m"},
		{"hours drop zero units", 2 * time.Hour, "2h"},
		{"mixed", 90 * time.Second, "1m30s"},
		{"hours and minutes", 90 * time.Minute, "1h30m"},
		{"zero", 0, "0s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Duration{tc.in}
			text, _ := d.MarshalText()
			js, _ := d.MarshalJSON()
			if string(text) != tc.want || string(js) != `"`+tc.want+`"` {
				t.Errorf("MarshalText = %s, MarshalJSON = %s, want %q", text, js, tc.want)
			}
			var back Duration
			if err := back.UnmarshalText(text); err != nil || back != d {
				t.Errorf("UnmarshalText(%s) = %v, %v", text, back, err)
			}
		})
	}
}

func TestError_Format(t *testing.T) {
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{"full", Error{File: "hosts.toml", Key: "hosts.web1.port", Line: 12, Msg: "must be between 1 and 65535"}, "hosts.toml:12: hosts.web1.port: must be between 1 and 65535"},
		{"no line", Error{File: "hosts.toml", Key: "hosts.web1.port", Msg: "bad"}, "hosts.toml: hosts.web1.port: bad"},
		{"no key", Error{File: "hosts.toml", Line: 3, Msg: "bad"}, "hosts.toml:3: bad"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}
