package deploy

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/compose"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/remote"
)

var updateImageGolden = flag.Bool("update-image-golden", false, "rewrite deploy/testdata/image/*.golden")

// renderImageCommands renders every command an image deploy and rollback of app sends, in the order the
// flow sends them, exactly as they go to the target.
func renderImageCommands(t *testing.T, app *inventory.App, tool compose.Tool) string {
	t.Helper()
	var b strings.Builder
	add := func(what string, c built) {
		cmd, err := c.cmd, c.err
		if err != nil {
			fmt.Fprintf(&b, "# %s\nREFUSED: %v\n\n", what, err)
			return
		}
		if err := cmd.Validate(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		fmt.Fprintf(&b, "# %s\n%s\n", what, cmd.String())
		if cmd.Stdin != nil {
			data, _ := io.ReadAll(cmd.Stdin)
			fmt.Fprintf(&b, "<<stdin\n%s>>\n", data)
		}
		b.WriteString("\n")
	}

	img := &ImageOptions{
		Ref:         compose.Reference{Repository: app.Image, Tag: "v2"},
		Registry:    &inventory.Registry{Name: "main", Server: "registry.example.com", Username: "ci", PasswordEnv: "REGISTRY_PASSWORD"},
		ComposeYAML: []byte("services:\n  app:\n    image: registry.example.com/shop/app:latest\n"),
	}
	r := newImageRun(nil, app, "web1", &Options{}, img)
	r.tool = tool
	rel := ImageRelease{ID: "20261122T101500Z-0123456789ab", Image: app.Image, Tag: "v2", Digest: "sha256:" + strings.Repeat("0123456789abcdef", 4)}
	docker := compose.Docker{ConfigDir: r.dockerConfig()}

	add("detect: plugin", built{cmd: remote.Command{Argv: compose.VersionCommand(compose.Plugin)}})
	add("detect: standalone", built{cmd: remote.Command{Argv: compose.VersionCommand(compose.Standalone)}})
	add("upload compose file", built{cmd: r.uploadCommand()})
	add("or: compose file present?", built{cmd: r.composePresentCommand()})
	add("docker config directory", built{cmd: configDirCommand(docker.ConfigDir)})
	add("login (password on stdin)", fromArgv(docker.Login(img.Registry.Server, img.Registry.Username)))
	add("pull", fromArgv(docker.Pull(img.Ref)))
	add("logout", fromArgv(docker.Logout(img.Registry.Server)))
	add("inspect pulled image", fromArgv(compose.InspectImage(img.Ref)))
	cmd, err := r.pinCommand(rel, false)
	add("pin (deploy)", built{cmd, err})
	cmd, err = r.upCommand()
	add("up", built{cmd, err})
	add("service containers", fromArgv(compose.ServiceContainers(r.proj.Name, app.Service)))
	add("inspect containers", fromArgv(compose.InspectContainers([]string{strings.Repeat("c0ffee", 10) + "abcd"})))
	add("logs of a failed container", fromArgv(compose.ContainerLogs(strings.Repeat("c0ffee", 10)+"abcd", containerLogLines)))
	add("rollback: image still there?", fromArgv(compose.InspectImage(rel.Ref())))
	cmd, err = r.pinCommand(rel, true)
	add("pin (rollback, restores compose.yaml)", built{cmd, err})
	return b.String()
}

// built is a command or the reason it was refused.
type built struct {
	cmd remote.Command
	err error
}

func fromArgv(argv []string, err error) built { return built{remote.Command{Argv: argv}, err} }

func TestImageCommands_Golden(t *testing.T) {
	base := func(p, service, image string) *inventory.App {
		return &inventory.App{Name: "shop", Kind: inventory.KindImage, Path: p, Service: service, Image: image,
			Timeout: inventory.Duration{Duration: time.Minute}}
	}
	for _, tc := range []struct {
		name string
		app  *inventory.App
		tool compose.Tool
	}{
		{"standalone-v1", base("/srv/shop", "app", "registry.example.com/shop/app"), compose.Tool{Flavour: compose.Standalone, Version: compose.Version{Major: 1, Minor: 29, Patch: 2}}},
		{"plugin-v2", base("/srv/shop", "app", "registry.example.com/shop/app"), compose.Tool{Flavour: compose.Plugin, Version: compose.Version{Major: 2, Minor: 21}}},
		{"standalone-v2", base("/srv/shop", "app", "registry.example.com/shop/app"), compose.Tool{Flavour: compose.Standalone, Version: compose.Version{Major: 2, Minor: 5}}},
		// Paths are the inventory's to choose: they are quoted, never interpreted.
		{"hostile-path", base("/srv/it's a $(shop) `x`", "app", "registry.example.com/shop/app"), compose.Tool{Flavour: compose.Standalone, Version: compose.Version{Major: 1, Minor: 29, Patch: 2}}},
		// A service name that the inventory should have refused never reaches a command line.
		{"hostile-service", base("/srv/shop", "a b", "registry.example.com/shop/app"), compose.Tool{Flavour: compose.Standalone, Version: compose.Version{Major: 1, Minor: 29, Patch: 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := renderImageCommands(t, tc.app, tc.tool)
			file := filepath.Join("testdata", "image", tc.name+".golden")
			if *updateImageGolden {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -run TestImageCommands_Golden -update-image-golden ./deploy/)", err)
			}
			if got != string(want) {
				t.Fatalf("commands differ from %s:\n--- got\n%s", file, got)
			}
		})
	}
}

func TestImageReference(t *testing.T) {
	app := &inventory.App{Name: "shop", Image: "registry.example.com/shop/app"}
	for _, tc := range []struct {
		name, tag, image, want, err string
	}{
		{name: "tag", tag: "3f2a9c0", want: "registry.example.com/shop/app:3f2a9c0"},
		{name: "default latest", want: "registry.example.com/shop/app:latest"},
		{name: "full image", image: "other.example.com/x:v1", want: "other.example.com/x:v1"},
		{name: "image without tag", image: "other.example.com/x", want: "other.example.com/x:latest"},
		{name: "image by digest", image: "r.example.com/x@sha256:" + strings.Repeat("a", 64), want: "r.example.com/x@sha256:" + strings.Repeat("a", 64)},
		{name: "both", tag: "v1", image: "x:v1", err: "not both"},
		{name: "hostile tag", tag: "$(reboot)", err: "not a valid image tag"},
		{name: "option tag", tag: "-rf", err: "not a valid image tag"},
		{name: "quote tag", tag: "v1'", err: "not a valid image tag"},
		{name: "hostile image", image: "x:v1; rm -rf /", err: "invalid image reference"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := ImageReference(app, tc.tag, tc.image)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || ref.String() != tc.want {
				t.Fatalf("ImageReference = %s, %v; want %s", ref, err, tc.want)
			}
		})
	}
}
