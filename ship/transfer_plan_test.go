package ship

import (
	"context"
	"io"
	"io/fs"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pkg/sftp"

	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
)

// refusingConn fails the test on any use: dry runs and rejected input must not touch the target.
type refusingConn struct{ t *testing.T }

func (c refusingConn) Run(context.Context, remote.Command) (*remote.Result, error) {
	c.t.Fatal("Run called")
	return nil, nil
}

func (c refusingConn) SFTP(context.Context) (*sftp.Client, error) {
	c.t.Fatal("SFTP called")
	return nil, nil
}

func mustManifest(t *testing.T, entries ...Entry) *Manifest {
	t.Helper()
	m, err := NewManifest(entries)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func fileEntry(p, content string, mode fs.FileMode) Entry {
	return Entry{Path: p, Type: TypeFile, Mode: mode, Size: int64(len(content)), SHA256: sha(content)}
}

func TestShip_DryRun(t *testing.T) {
	old := mustManifest(t,
		fileEntry("same", "s", 0o644),
		fileEntry("changed", "old", 0o644),
		fileEntry("mode", "m", 0o644),
		fileEntry("gone", "g", 0o644),
		Entry{Path: "d", Type: TypeDir, Mode: 0o755},
		fileEntry("d/x", "x", 0o644),
		Entry{Path: "ro", Type: TypeDir, Mode: 0o555},
		Entry{Path: "l", Type: TypeSymlink, Mode: 0o777, Link: "same"},
	)
	m := mustManifest(t,
		fileEntry("same", "s", 0o644),
		fileEntry("changed", "new", 0o644),
		fileEntry("mode", "m", 0o755),
		fileEntry("new", "n", 0o644),
		Entry{Path: "ro", Type: TypeDir, Mode: 0o555},
		Entry{Path: "nd", Type: TypeDir, Mode: 0o700},
		fileEntry("nd/y", "y", 0o600),
		Entry{Path: "l", Type: TypeSymlink, Mode: 0o777, Link: "changed"},
	)
	var ops []string
	layout := release.Layout{Path: "/srv/api"}
	st, err := Ship(context.Background(), refusingConn{t}, "/nonexistent", m, layout, "20260101T000100Z",
		"20260101T000000Z", old, ShipOptions{DryRun: true, Plan: func(op, p string) { ops = append(ops, op+" "+p) }})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"base /srv/api/releases/20260101T000000Z",
		"remove d", "remove gone", "remove l",
		"chmod mode",
		"mkdir nd",
		"symlink l",
		"upload changed", "upload nd/y", "upload new",
		"chmod nd", "chmod ro",
		"manifest /srv/api/.skiff/manifests/20260101T000100Z",
	}
	if !reflect.DeepEqual(ops, want) {
		t.Errorf("plan:\n got %q\nwant %q", ops, want)
	}
	if st.Files != 3 || st.Bytes != 5 || st.Reused != 2 || st.Removed != 3 {
		t.Errorf("stats = %+v, want 3 files / 5 bytes sent, 2 reused, 3 removed", st)
	}
}

func TestShip_RejectsBadInput(t *testing.T) {
	good := mustManifest(t, fileEntry("a", "a", 0o644))
	id, base := "20260101T000100Z", "20260101T000000Z"
	tests := []struct {
		name     string
		layout   release.Layout
		id, base string
		m        *Manifest
		wantErr  string
	}{
		{name: "relative path", layout: release.Layout{Path: "srv"}, id: id, m: good,
			wantErr: `ship: target path "srv" is not absolute`},
		{name: "bad id", layout: release.Layout{Path: "/srv"}, id: "../x", m: good,
			wantErr: `ship: invalid release id "../x"`},
		{name: "bad base", layout: release.Layout{Path: "/srv"}, id: id, base: "current", m: good,
			wantErr: `ship 20260101T000100Z: invalid base release id "current"`},
		{name: "own base", layout: release.Layout{Path: "/srv"}, id: id, base: id, m: good,
			wantErr: `ship 20260101T000100Z: a release cannot be its own base`},
		{name: "no manifest", layout: release.Layout{Path: "/srv"}, id: id, base: base,
			wantErr: `ship 20260101T000100Z: no manifest`},
		{name: "hand-built hostile manifest", layout: release.Layout{Path: "/srv"}, id: id,
			m:       &Manifest{Entries: []Entry{fileEntry("../../etc/cron.d/x", "x", 0o644)}},
			wantErr: `ship 20260101T000100Z: manifest entry "../../etc/cron.d/x": path "../../etc/cron.d/x" escapes the tree`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Ship(context.Background(), refusingConn{t}, t.TempDir(), tc.m, tc.layout, tc.id, tc.base, good,
				ShipOptions{})
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestShipPlan_PrepareScriptQuotesNames(t *testing.T) {
	old := mustManifest(t, fileEntry("it's", "1", 0o644), fileEntry("-rf", "1", 0o644))
	m := mustManifest(t, fileEntry("it's", "1", 0o755), Entry{Path: "$(id)", Type: TypeDir, Mode: 0o755},
		Entry{Path: "l", Type: TypeSymlink, Mode: 0o777, Link: "-rf x"})
	p := newShipPlan(old, m, "20260101T000000Z")
	script, _ := p.prepareScript(release.Layout{Path: "/srv/my app"}, "20260101T000100Z", "tok", prepareOpts{})
	got := string(script)
	for _, want := range []string{
		"mkdir -p -- '/srv/my app/releases' '/srv/my app/.skiff/manifests'\n",
		"cp -al 20260101T000000Z/. 20260101T000100Z/ 2>/dev/null || { rm -rf -- 20260101T000100Z; " +
			"mkdir -- 20260101T000100Z; cp -a 20260101T000000Z/. 20260101T000100Z/; }\n",
		`printf '%s\0' ./-rf './it'\''s'` + "\n",
		"rm -rf -- ./-rf\n",
		`cp -p -- './it'\''s' './.it'\''s.skiff-tmp-tok'` + "\n",
		`chmod 0755 -- './.it'\''s.skiff-tmp-tok'` + "\n",
		`mv -f -- './.it'\''s.skiff-tmp-tok' './it'\''s'` + "\n",
		"mkdir -p -- './$(id)'\n",
		"ln -s -- '-rf x' ./l\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("prepare script lacks %q:\n%s", want, got)
		}
	}
}

func TestShipPlan_PrepareScriptOfAClonedRelease(t *testing.T) {
	old := mustManifest(t, fileEntry("a", "1", 0o644), fileEntry("gone", "1", 0o644))
	p := newShipPlan(old, mustManifest(t, fileEntry("a", "1", 0o644)), "20260101T000000Z")
	l := release.Layout{Path: "/srv/app"}
	script, _ := p.prepareScript(l, "20260101T000100Z", "tok", prepareOpts{cloned: true})
	got := string(script)
	if strings.Contains(got, "cp -al") || strings.Contains(got, "mkdir -- 20260101T000100Z") {
		t.Errorf("the script of a cloned release clones it again:\n%s", got)
	}
	for _, want := range []string{"cd /srv/app/releases/20260101T000100Z\n", "rm -rf -- ./gone\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("prepare script lacks %q:\n%s", want, got)
		}
	}
	clone := CloneReleaseCommand(l, "20260101T000000Z", "20260101T000100Z", "tok")
	if want := []string{"/srv/app/releases", "20260101T000000Z", "20260101T000100Z", "/srv/app/.skiff/manifests", "tok"}; !slices.Equal(clone.Argv[4:], want) {
		t.Errorf("clone command arguments = %q, want %q", clone.Argv[4:], want)
	}
}

func TestCloneScripts_TakeOnlyTheManifest(t *testing.T) {
	old := mustManifest(t, fileEntry("a", "1", 0o644), fileEntry("x", "1", 0o600), Entry{Path: "d", Type: TypeDir, Mode: 0o750},
		Entry{Path: "d/l", Type: TypeSymlink, Mode: 0o777, Link: "../a"})
	l := release.Layout{Path: "/srv/app"}
	tests := []struct {
		name string
		cmd  func() []byte
		want []string
	}{
		{"trim a linked clone", func() []byte {
			p := newShipPlan(old, old, "20260101T000000Z")
			script, _ := p.prepareScript(l, "20260101T000100Z", "tok", prepareOpts{})
			return script
		}, []string{
			"cd /srv/app/releases/20260101T000100Z\n",
			"want=/srv/app/releases/.skiff-want-tok\n",
			`printf '%s\0' ./a ./d ./d/l ./x` + "\n",
			`LC_ALL=C comm -z -23 --check-order "$found" "$want" | xargs -0 -r rm -rf --` + "\n",
			"rm -f -- ./d/l\nln -s -- ../a ./d/l\n",
			"chmod 0750 -- ./d\n",
		}},
		{"copies", func() []byte {
			b, _ := io.ReadAll(CopyReleaseCommand(l, "20260101T000000Z", old, "20260101T000100Z").Stdin)
			return b
		}, []string{
			"mkdir -p -- ./d\nln -s -- ../a ./d/l\n",
			"cp -P -p --reflink=auto --parents -t /srv/app/releases/20260101T000100Z -- ./a ./x\n",
			"chmod 0600 -- ./x\nchmod 0644 -- ./a\nchmod 0750 -- ./d\n",
			hashScript + "\n",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(tc.cmd())
			for _, want := range tc.want {
				if !strings.Contains(got, want) {
					t.Errorf("script lacks %q:\n%s", want, got)
				}
			}
		})
	}
}

func TestShipTempName(t *testing.T) {
	tests := []struct {
		name, path string
	}{
		{"short", "/r/dir/file.txt"},
		{"at the limit", "/r/" + strings.Repeat("x", 255)},
		{"top level", "name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := shipTempName(tc.path, "0123456789ab")
			if path.Dir(got) != path.Dir(tc.path) {
				t.Errorf("%q is not in the directory of %q", got, tc.path)
			}
			if base := path.Base(got); len(base) > 255 || !strings.HasPrefix(base, ".") ||
				!strings.HasSuffix(base, ".skiff-tmp-0123456789ab") {
				t.Errorf("temporary name %q is not hidden, marked and at most 255 bytes", base)
			}
		})
	}
}

func TestParseSHA256Sums(t *testing.T) {
	a, b := sha("a"), sha("b")
	tests := []struct {
		name, out string
		want      map[string]string
		wantErr   string
	}{
		{name: "plain", out: a + "  ./x y\n" + b + "  ./d/-z\n", want: map[string]string{"x y": a, "d/-z": b}},
		{name: "escaped backslash", out: `\` + a + `  ./a\\b` + "\n", want: map[string]string{`a\b`: a}},
		{name: "escaped carriage return", out: `\` + a + `  ./a\rb` + "\n", want: map[string]string{"a\rb": a}},
		{name: "garbage", out: "sha256sum: x: Permission denied\n",
			wantErr: `unexpected sha256sum output "sha256sum: x: Permission denied"`},
		{name: "bad escape", out: `\` + a + `  ./a\qb` + "\n", wantErr: `unknown escape \q in sha256sum output`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSHA256Sums([]byte(tc.out))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseSHA256Sums = %v, %v, want %v", got, err, tc.want)
			}
		})
	}
}

func TestShipPlan_PrepareScriptWork(t *testing.T) {
	l := release.Layout{Path: "/srv/app"}
	old := mustManifest(t, fileEntry("a", "1", 0o644), Entry{Path: "d", Type: TypeDir, Mode: 0o755})
	changed := mustManifest(t, fileEntry("a", "2", 0o644), Entry{Path: "d", Type: TypeDir, Mode: 0o755})
	tests := []struct {
		name     string
		o        prepareOpts
		wantWork bool
	}{
		{"cloned, relinked over SFTP, new contents only", prepareOpts{cloned: true, relinked: true}, false},
		{"cloned, relinked by the script", prepareOpts{cloned: true}, true},
		{"not cloned", prepareOpts{relinked: true}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newShipPlan(old, changed, "20260101T000000Z")
			script, work := p.prepareScript(l, "20260101T000100Z", "tok", tc.o)
			if work != tc.wantWork {
				t.Errorf("work = %v, want %v:\n%s", work, tc.wantWork, script)
			}
			// The tar stream is extracted where the script leaves the shell, work or not.
			if !strings.HasSuffix(string(script), "cd /srv/app/releases/20260101T000100Z\n") && !tc.wantWork {
				t.Errorf("script does not end in the release directory:\n%s", script)
			}
			if !strings.Contains(string(script), "cd /srv/app/releases/20260101T000100Z\n") {
				t.Errorf("script never enters the release directory:\n%s", script)
			}
		})
	}
}
