package inventory

import (
	"reflect"
	"testing"
)

// buildsApp is a source app on web whose builds the tests append.
const buildsApp = hostsOK + `
[apps.api]
hosts = ["web"]
path = "/srv/api"
shared = ["logs"]
`

const venvBuild = `
[[apps.api.builds]]
name = "venv"
path = ".venv"
inputs = ["requirements.txt"]
run = 'python3 -m venv "$SKIFF_BUILD_DIR"'
`

func TestParse_Builds(t *testing.T) {
	inv, err := Options{Home: "/home/test"}.Parse("hosts.toml", []byte(buildsApp+venvBuild+`
[[apps.api.builds]]
name = "node-modules"
path = "web/node_modules"
inputs = ["web/package.json", "web/package-lock.json"]
run = "npm ci"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Build{
		{Name: "venv", Path: ".venv", Inputs: []string{"requirements.txt"}, Run: `python3 -m venv "$SKIFF_BUILD_DIR"`},
		{Name: "node-modules", Path: "web/node_modules", Inputs: []string{"web/package.json", "web/package-lock.json"}, Run: "npm ci"},
	}
	if got := inv.Apps["api"].Builds; !reflect.DeepEqual(got, want) {
		t.Errorf("builds = %+v, want %+v", got, want)
	}
}

func TestParse_BuildErrors(t *testing.T) {
	build := func(name, path, inputs, run string) string {
		return buildsApp + "\n[[apps.api.builds]]\nname = " + name + "\npath = " + path + "\ninputs = " + inputs + "\nrun = " + run + "\n"
	}
	tests := []struct {
		name string
		toml string
		want string
	}{
		{"bad name", build(`"Venv"`, `".venv"`, `["r.txt"]`, `"x"`),
			`hosts.toml:15: apps.api.builds[0].name: invalid build name "Venv": use 1 to 64 of a-z, 0-9 and -`},
		{"name with a slash", build(`"a/b"`, `".venv"`, `["r.txt"]`, `"x"`),
			`hosts.toml:15: apps.api.builds[0].name: invalid build name "a/b": use 1 to 64 of a-z, 0-9 and -`},
		{"path outside the release", build(`"venv"`, `"../venv"`, `["r.txt"]`, `"x"`),
			`hosts.toml:16: apps.api.builds[0].path: "../venv" must not contain ..`},
		{"absolute path", build(`"venv"`, `"/opt/venv"`, `["r.txt"]`, `"x"`),
			`hosts.toml:16: apps.api.builds[0].path: "/opt/venv" must be relative to the release`},
		{"path is the release", build(`"venv"`, `"."`, `["r.txt"]`, `"x"`),
			`hosts.toml:16: apps.api.builds[0].path: "." must name a file or directory`},
		{"path in shared", build(`"venv"`, `"logs/venv"`, `["r.txt"]`, `"x"`),
			`hosts.toml:16: apps.api.builds[0].path: "logs/venv" clashes with the shared entry "logs"`},
		{"no inputs", build(`"venv"`, `".venv"`, `[]`, `"x"`),
			`hosts.toml:17: apps.api.builds[0].inputs: must name at least one file of the release (requirements.txt, package-lock.json)`},
		{"input in the build", build(`"venv"`, `".venv"`, `[".venv/x"]`, `"x"`),
			`hosts.toml:17: apps.api.builds[0].inputs: ".venv/x" is not a shipped file: it lies in the build's path or a shared entry`},
		{"empty run", build(`"venv"`, `".venv"`, `["r.txt"]`, `"  "`),
			`hosts.toml:18: apps.api.builds[0].run: is required and must not be empty`},
		{"duplicate name", buildsApp + venvBuild + venvBuild,
			`hosts.toml:21: apps.api.builds[1].name: duplicate build name "venv"`},
		{"unknown key", buildsApp + venvBuild + "cache = true\n",
			`hosts.toml:19: apps.api.builds[0].cache: unknown key`},
		{"image app", hostsOK + "\n[apps.shop]\nhosts = [\"web\"]\npath = \"/srv/shop\"\nimage = \"r/shop\"\nservice = \"app\"\n[[apps.shop.builds]]\nname = \"v\"\npath = \"v\"\ninputs = [\"a\"]\nrun = \"x\"\n",
			`hosts.toml:9: apps.shop.builds: only for source apps (remove image)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Options{Home: "/home/test"}.Parse("hosts.toml", []byte(tc.toml))
			if err == nil {
				t.Fatalf("Parse succeeded, want error %q", tc.want)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("error\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}
