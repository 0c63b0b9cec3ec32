package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffdeploy/skiff/internal/testenv"
)

// TestInventory_HostileValuesRejected feeds values that could change the meaning of a command line (spaces,
// quotes, $(), .., a leading -) to every inventory field that reaches a target, and expects each to be
// refused with exit code 2 and the exact message, located at its file and line.
func TestInventory_HostileValuesRejected(t *testing.T) {
	t.Parallel()
	app := "[apps.x]\nhosts = [\"h1\"]\n"
	sup := "supervisor.url = \"unix:///run/s.sock\"\n"
	for _, tc := range []struct {
		name  string
		extra string // after a [hosts.h1] table of two lines
		want  string // the whole message after "skiff: "
	}{
		{name: "path with ..", extra: app + `path = "/srv/../etc"`, want: `:5: apps.x.path: "/srv/../etc" must not contain ..`},
		{name: "relative path", extra: app + `path = "srv/x"`, want: `:5: apps.x.path: "srv/x" must be an absolute path`},
		{name: "unclean path", extra: app + `path = "/srv//x"`, want: `:5: apps.x.path: "/srv//x" must be a clean path (write "/srv/x")`},
		{name: "newline in path", extra: app + `path = "/srv/x\nrm -rf ~"`, want: `:5: apps.x.path: "/srv/x\nrm -rf ~" must not contain control characters`},
		{name: "app name with a space", extra: "[apps.\"a b\"]\nhosts = [\"h1\"]\npath = \"/srv/x\"",
			want: `:3: apps."a b": invalid app name "a b": ' ' is not allowed (use letters, digits, '.', '_' and '-')`},
		{name: "app name with $()", extra: "[apps.\"$(touch pwned)\"]\nhosts = [\"h1\"]\npath = \"/srv/x\"",
			want: `:3: apps."$(touch pwned)": invalid app name "$(touch pwned)": '$' is not allowed (use letters, digits, '.', '_' and '-')`},
		{name: "app name with leading -", extra: "[apps.-rf]\nhosts = [\"h1\"]\npath = \"/srv/x\"",
			want: `:3: apps.-rf: invalid app name "-rf": must not start with -`},
		{name: "user with leading -", extra: "[hosts.evil]\naddress = \"127.0.0.1\"\nuser = \"-oProxyCommand=touch pwned\"",
			want: `:5: hosts.evil.user: "-oProxyCommand=touch pwned" must not start with -`},
		{name: "address with leading -", extra: "[hosts.evil]\naddress = \"-oProxyCommand=touch pwned\"",
			want: `:4: hosts.evil.address: "-oProxyCommand=touch pwned" must not start with -`},
		{name: "address with a space", extra: "[hosts.evil]\naddress = \"a b\"", want: `:4: hosts.evil.address: "a b" must not contain spaces or control characters`},
		{name: "host name with leading -", extra: "[hosts.-rf]\naddress = \"127.0.0.9\"", want: `:3: hosts.-rf: invalid host name "-rf": must not start with -`},
		{name: "group with ;", extra: "[hosts.evil]\naddress = \"127.0.0.9\"\ngroups = [\"a;b\"]",
			want: `:5: hosts.evil.groups: invalid group name "a;b": ';' is not allowed (use letters, digits, '.', '_' and '-')`},
		{name: "app hosts with $()", extra: "[apps.x]\nhosts = [\"h1\", \"$(touch pwned)\"]\npath = \"/srv/x\"",
			want: `:4: apps.x.hosts: unknown host or group "$(touch pwned)"`},
		{name: "shared with ..", extra: app + "path = \"/srv/x\"\nshared = [\"../escape\"]", want: `:6: apps.x.shared: "../escape" must not contain ..`},
		{name: "absolute shared", extra: app + "path = \"/srv/x\"\nshared = [\"/etc/passwd\"]", want: `:6: apps.x.shared: "/etc/passwd" must be relative to the release`},
		{name: "program with a space", extra: app + "path = \"/srv/x\"\n" + sup + `supervisor.programs = ["a b"]`,
			want: `:7: apps.x.supervisor.programs: invalid program "a b" (write "name", "group:name" or "group:*")`},
		{name: "program with leading -", extra: app + "path = \"/srv/x\"\n" + sup + `supervisor.programs = ["-x"]`,
			want: `:7: apps.x.supervisor.programs: invalid program "-x" (write "name", "group:name" or "group:*")`},
		{name: "relative supervisor socket", extra: app + "path = \"/srv/x\"\nsupervisor.url = \"unix://../s.sock\"\nsupervisor.programs = [\"x\"]",
			want: `:6: apps.x.supervisor.url: "unix://../s.sock" must be unix:///absolute/path/to/socket`},
		{name: "password in supervisor url", extra: app + "path = \"/srv/x\"\nsupervisor.url = \"http://u:p@127.0.0.1:9001\"\nsupervisor.programs = [\"x\"]",
			want: `:6: apps.x.supervisor.url: "http://127.0.0.1:9001" must not hold credentials (set supervisor.username and supervisor.password_env)`},
		{name: "password_env with $()", extra: app + "path = \"/srv/x\"\n" + sup + "supervisor.programs = [\"x\"]\nsupervisor.username = \"u\"\nsupervisor.password_env = \"$(touch pwned)\"",
			want: `:9: apps.x.supervisor.password_env: "$(touch pwned)" is not an environment variable name`},
		{name: "password_env naming SKIFF_SSH_KEY", extra: app + "path = \"/srv/x\"\n" + sup + "supervisor.programs = [\"x\"]\nsupervisor.username = \"u\"\nsupervisor.password_env = \"SKIFF_SSH_KEY\"",
			want: `:9: apps.x.supervisor.password_env: "SKIFF_SSH_KEY" names one of skiff's own SKIFF_* variables; use a variable of its own`},
		{name: "registry password_env naming SKIFF_KNOWN_HOSTS", extra: "[registries.r]\nserver = \"registry.example.com\"\nusername = \"ci\"\npassword_env = \"skiff_known_hosts\"",
			want: `:6: registries.r.password_env: "skiff_known_hosts" names one of skiff's own SKIFF_* variables; use a variable of its own`},
		{name: "supervisor username with leading -", extra: app + "path = \"/srv/x\"\n" + sup + "supervisor.programs = [\"x\"]\nsupervisor.username = \"-u x\"\nsupervisor.password_env = \"P\"",
			want: `:8: apps.x.supervisor.username: "-u x" must not start with -`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			inv := filepath.Join(dir, "hosts.toml")
			e2eWrite(t, inv, "[hosts.h1]\naddress = \"127.0.0.1\"\n"+tc.extra+"\n")
			for _, args := range [][]string{{"inventory"}, {"deploy", "x", "--source", dir}} {
				r := e2eSkiff(t, append([]string{"-i", inv}, args...)...)
				if want := "skiff: " + inv + tc.want + "\n"; r.code != exitUsage || r.stderr != want {
					t.Errorf("skiff %s: want exit 2 and stderr %q, got %s", args[0], want, r)
				}
			}
			if p := findNamed(t, dir, "pwned"); p != "" {
				t.Errorf("%s exists", p)
			}
		})
	}
}

// hostileTree is a source tree whose names mean something to a shell or to option parsing.
var hostileTree = map[string]string{
	`it's "x" $(touch pwned).txt`: "quote and command substitution\n",
	"-rf":                         "leading dash\n",
	"--help":                      "double dash\n",
	"a b/c":                       "space in a directory\n",
	"`x`":                         "backquotes\n",
	"*":                           "a glob\n",
	"$HOME ${IFS}; rm -rf ~":      "variables and a command list\n",
	"-dir/-f":                     "leading dashes all the way\n",
	"back\\slash":                 "backslash\n",
	"ünï cødé ✓":                  "utf-8\n",
	"VERSION":                     "hostile\n",
}

// TestDeploy_HostileNamesShipLiterally deploys a tree full of hostile names to an app whose path and shared
// entries are hostile too, and expects every byte where it belongs and no command run by accident.
func TestDeploy_HostileNamesShipLiterally(t *testing.T) {
	t.Parallel()
	env := testenv.Shared(t)
	base := filepath.Join(env.Hosts[0].Root, "srv", `hostile it's "q" $(touch pwned) `+"`touch pwned`"+` ;x`)
	a := newE2EApp(t, "hostile", appOptions{
		supervisor: supervisorNone,
		path:       filepath.Join(base, "-app"),
		extra: `shared = ["-shared", "sp ace/$(touch pwned)", "q'uote"]
hooks.before_switch = ["test -f ./-rf && test -f 'a b/c' && test -d ./-shared && test -d 'sp ace/$(touch pwned)'"]`,
	})
	src := t.TempDir()
	for name, content := range hostileTree {
		e2eWrite(t, filepath.Join(src, name), content)
	}
	if err := os.Symlink("a b/c", filepath.Join(src, "-link to $(touch pwned)")); err != nil {
		t.Fatal(err)
	}

	first := a.deploy(0, src)
	if first.Files != int64(len(hostileTree)) {
		t.Errorf("first deploy sent %d files, want %d", first.Files, len(hostileTree))
	}
	wantSameTree(t, src, filepath.Join(a.path, "current"), []string{"-shared", "sp ace", "q'uote"})

	e2eWrite(t, filepath.Join(src, `it's "x" $(touch pwned).txt`), "changed\n")
	second := a.deploy(0, src)
	if second.Files != 1 || second.Reused != int64(len(hostileTree)-1) {
		t.Errorf("second deploy sent %d and reused %d files, want 1 and %d", second.Files, second.Reused, len(hostileTree)-1)
	}
	wantSameTree(t, src, filepath.Join(a.path, "current"), []string{"-shared", "sp ace", "q'uote"})
	wantFile(t, filepath.Join(a.path, "releases", first.After, `it's "x" $(touch pwned).txt`), "quote and command substitution\n")
	for _, e := range []string{"-shared", "sp ace/$(touch pwned)", "q'uote"} {
		if target, err := os.Readlink(filepath.Join(a.path, "current", e)); err != nil || target != filepath.Join(a.path, "shared", e) {
			t.Errorf("shared %q: link to %q, %v", e, target, err)
		}
	}

	back := a.skiffJSON(0, "rollback", a.name)
	if back.After != first.After {
		t.Errorf("rollback went to %q, want %s", back.After, first.After)
	}
	for _, dir := range []string{env.Hosts[0].Root, env.Home, src, "."} {
		if p := findNamed(t, dir, "pwned"); p != "" {
			t.Errorf("%s exists: a name was run as a command", p)
		}
	}
}

// wantSameTree fails the test unless got holds exactly what want holds (names, types, modes, contents, link
// targets), apart from the entries skip (shared links) and the top directory's own mode.
func wantSameTree(t *testing.T, want, got string, skip []string) {
	t.Helper()
	w, g := e2eSnapshot(t, want), e2eSnapshot(t, got+"/")
	delete(w, ".")
	delete(g, ".")
	if len(w) < 2 {
		t.Fatalf("%s is empty", want)
	}
	for k := range g {
		for _, s := range skip {
			if k == s || strings.HasPrefix(k, s+"/") {
				delete(g, k)
			}
		}
	}
	if diff := e2eDiff(w, g); len(diff) > 0 {
		t.Errorf("%s differs from %s: %q", got, want, diff)
	}
}

// findNamed returns the first path under root whose last element is exactly name, or "".
func findNamed(t *testing.T, root, name string) string {
	t.Helper()
	found := ""
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			return nil
		}
		if err != nil {
			return err
		}
		if d.Name() == name && found == "" {
			found = p
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
