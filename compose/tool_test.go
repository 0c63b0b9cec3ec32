package compose

import (
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Version
		wait bool
	}{
		{"1.29.2\n", Version{1, 29, 2}, false},
		{"v2.21.0", Version{2, 21, 0}, true},
		{"2.24.6-desktop.1", Version{2, 24, 6}, true},
		{"2.1.0", Version{2, 1, 0}, false},
		{"2.1.1", Version{2, 1, 1}, true},
		{"2.0", Version{2, 0, 0}, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseVersion(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("ParseVersion(%q) = %v, want %v", tc.in, got, tc.want)
			}
			if w := (Tool{Flavour: Standalone, Version: got}).SupportsWait(); w != tc.wait {
				t.Fatalf("SupportsWait = %v, want %v", w, tc.wait)
			}
		})
	}
	if _, err := ParseVersion("Docker Compose version"); err == nil {
		t.Fatal("ParseVersion accepted text without a version")
	}
}

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mode
		bad  bool
	}{
		{in: "", want: Auto}, {in: "auto", want: Auto}, {in: " Plugin ", want: ForcePlugin},
		{in: "standalone", want: ForceStandalone}, {in: "v2", bad: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseMode(tc.in)
			if (err != nil) != tc.bad || got != tc.want {
				t.Fatalf("ParseMode(%q) = %q, %v", tc.in, got, err)
			}
		})
	}
}

// fakeRunner answers version commands from a table keyed by the joined argv; a missing key fails like a
// missing program.
type fakeRunner struct {
	out   map[string]string
	calls []string
}

func (f *fakeRunner) Run(_ context.Context, argv []string, _ io.Reader) ([]byte, error) {
	key := strings.Join(argv, " ")
	f.calls = append(f.calls, key)
	if out, ok := f.out[key]; ok {
		return []byte(out), nil
	}
	return nil, errors.New("exit status 127: sh: 1: " + argv[0] + ": not found")
}

func TestDetect(t *testing.T) {
	const plugin, standalone = "docker compose version --short", "docker-compose version --short"
	for _, tc := range []struct {
		name      string
		mode      Mode
		installed map[string]string
		want      Tool
		calls     []string
		err       string
	}{
		{name: "auto prefers the plugin", mode: Auto, installed: map[string]string{plugin: "2.21.0\n", standalone: "1.29.2\n"},
			want: Tool{Plugin, Version{2, 21, 0}}, calls: []string{plugin}},
		{name: "auto falls back to standalone", mode: Auto, installed: map[string]string{standalone: "1.29.2\n"},
			want: Tool{Standalone, Version{1, 29, 2}}, calls: []string{plugin, standalone}},
		{name: "auto with neither", mode: Auto, installed: map[string]string{},
			calls: []string{plugin, standalone}, err: "neither `docker compose` (v2 plugin: exit status 127"},
		{name: "forced plugin missing", mode: ForcePlugin, installed: map[string]string{standalone: "1.29.2"},
			calls: []string{plugin}, err: "compose is forced to the v2 plugin (`docker compose`), which does not work on the host"},
		{name: "forced standalone", mode: ForceStandalone, installed: map[string]string{plugin: "2.21.0", standalone: "2.5.0"},
			want: Tool{Standalone, Version{2, 5, 0}}, calls: []string{standalone}},
		{name: "garbage version", mode: ForceStandalone, installed: map[string]string{standalone: "oops"},
			calls: []string{standalone}, err: "unrecognised compose version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &fakeRunner{out: tc.installed}
			got, err := Detect(context.Background(), r, tc.mode)
			if !reflect.DeepEqual(r.calls, tc.calls) {
				t.Fatalf("calls %q, want %q", r.calls, tc.calls)
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("err %v does not wrap ErrNotFound", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Detect = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestCommands_Argv(t *testing.T) {
	v1 := Tool{Standalone, Version{1, 29, 2}}
	v2 := Tool{Plugin, Version{2, 21, 0}}
	proj := Project{Name: "shop", Files: []string{"/srv/shop/compose.yaml", "/srv/shop/skiff.override.yaml"}}
	ref := Reference{Repository: "registry.example.com/shop/app", Tag: "v2"}
	pinned := ref.Pinned("sha256:" + strings.Repeat("ab", 32))
	cfg := Docker{ConfigDir: "/srv/shop/.skiff/docker"}
	must := func(argv []string, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return argv
	}
	for _, tc := range []struct {
		name string
		got  []string
		want string // argv joined with "|"
	}{
		{"up standalone v1", must(v1.Up(proj, "app")), "docker-compose|-p|shop|-f|/srv/shop/compose.yaml|-f|/srv/shop/skiff.override.yaml|up|-d|--no-deps|--no-build|--|app"},
		{"up plugin v2", must(v2.Up(proj, "app")), "docker|compose|-p|shop|-f|/srv/shop/compose.yaml|-f|/srv/shop/skiff.override.yaml|up|-d|--no-deps|--no-build|--wait|--|app"},
		{"version plugin", VersionCommand(Plugin), "docker|compose|version|--short"},
		{"version standalone", VersionCommand(Standalone), "docker-compose|version|--short"},
		{"login", must(cfg.Login("registry.example.com", "-ci")), "docker|--config|/srv/shop/.skiff/docker|login|--username=-ci|--password-stdin|registry.example.com"},
		{"logout", must(cfg.Logout("registry.example.com")), "docker|--config|/srv/shop/.skiff/docker|logout|registry.example.com"},
		{"pull with config", must(cfg.Pull(ref)), "docker|--config|/srv/shop/.skiff/docker|pull|registry.example.com/shop/app:v2"},
		{"pull without config", must(Docker{}.Pull(pinned)), "docker|pull|" + pinned.String()},
		{"inspect image", must(InspectImage(pinned)), "docker|image|inspect|--format|" + imageFormat + "|" + pinned.String()},
		{"service containers", must(ServiceContainers("shop", "app")), "docker|ps|--all|--quiet|--no-trunc|--filter|label=com.docker.compose.project=shop|--filter|label=com.docker.compose.service=app|--filter|label=com.docker.compose.oneoff=False"},
		{"inspect containers", must(InspectContainers([]string{strings.Repeat("a", 64)})), "docker|inspect|--type|container|--format|" + containerFormat + "|" + strings.Repeat("a", 64)},
		{"logs", must(ContainerLogs(strings.Repeat("b", 12), 20)), "docker|logs|--tail|20|bbbbbbbbbbbb"},
		{"follow logs", must(FollowLogs(strings.Repeat("b", 12), 100, 10*time.Minute, true)), "docker|logs|--tail|100|--since|600s|--follow|bbbbbbbbbbbb"},
		{"all logs", must(FollowLogs(strings.Repeat("b", 12), -1, 0, false)), "docker|logs|bbbbbbbbbbbb"},
		{"image list", ImageList(), "docker|image|ls|--all|--no-trunc|--digests|--format|{{json .}}"},
		{"all containers", AllContainers(), "docker|ps|--all|--quiet|--no-trunc"},
		{"container images", must(ContainerImages([]string{strings.Repeat("c", 64)})), "docker|inspect|--type|container|--format|{{.Id}} {{.Image}}|" + strings.Repeat("c", 64)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(tc.got, "|"); got != tc.want {
				t.Fatalf("argv\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestCommands_RejectHostileInput(t *testing.T) {
	v1 := Tool{Standalone, Version{1, 29, 2}}
	proj := Project{Name: "shop", Files: []string{"/srv/shop/compose.yaml"}}
	for _, tc := range []struct {
		name string
		err  func() error
	}{
		{"service with space", func() error { _, err := v1.Up(proj, "a b"); return err }},
		{"service substitution", func() error { _, err := v1.Up(proj, "$(x)"); return err }},
		{"service quote", func() error { _, err := v1.Up(proj, "'"); return err }},
		{"service option", func() error { _, err := v1.Up(proj, "-d"); return err }},
		{"project option", func() error { _, err := v1.Up(Project{Name: "-x", Files: proj.Files}, "app"); return err }},
		{"relative file", func() error {
			_, err := v1.Up(Project{Name: "shop", Files: []string{"compose.yaml"}}, "app")
			return err
		}},
		{"no files", func() error { _, err := v1.Up(Project{Name: "shop"}, "app"); return err }},
		{"tag substitution", func() error {
			_, err := Docker{}.Pull(Reference{Repository: "shop/app", Tag: "$(x)"})
			return err
		}},
		{"repository option", func() error { _, err := Docker{}.Pull(Reference{Repository: "-shop"}); return err }},
		{"empty reference", func() error { _, err := InspectImage(Reference{}); return err }},
		{"server option", func() error { _, err := Docker{}.Login("-r.example.com", "ci"); return err }},
		{"username newline", func() error { _, err := Docker{}.Login("r.example.com", "ci\nx"); return err }},
		{"relative config dir", func() error { _, err := Docker{ConfigDir: "cfg"}.Login("r.example.com", "ci"); return err }},
		{"container id", func() error { _, err := InspectContainers([]string{"$(x)"}); return err }},
		{"logs id", func() error { _, err := ContainerLogs("-f", 1); return err }},
		{"follow logs id", func() error { _, err := FollowLogs("-f", 1, 0, true); return err }},
		{"label injection", func() error { _, err := ServiceContainers("shop", "app,label=x"); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.err(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
