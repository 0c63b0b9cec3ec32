package ship

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/skiffdeploy/skiff/internal/testenv"
)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func paths(m *Manifest) []string {
	var out []string
	for _, e := range m.Entries {
		out = append(out, e.Path)
	}
	return out
}

func TestScan_Entries(t *testing.T) {
	src := t.TempDir()
	testenv.WriteTree(t, src, map[string]testenv.Node{
		"app.py":      {Content: "print(1)\n"},
		"bin/run":     {Content: "#!/bin/sh\n", Mode: 0o755},
		"secret":      {Content: "s\n", Mode: 0o600},
		"private":     {Dir: true, Mode: 0o700},
		"bin/current": {Link: "run"},
	})
	if err := os.Chmod(filepath.Join(src, "bin"), 0o750); err != nil {
		t.Fatal(err)
	}
	m, err := Scan(context.Background(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Path: "app.py", Type: TypeFile, Mode: 0o644, Size: 9, SHA256: sha("print(1)\n")},
		{Path: "bin", Type: TypeDir, Mode: 0o750},
		{Path: "bin/current", Type: TypeSymlink, Mode: 0o777, Link: "run"},
		{Path: "bin/run", Type: TypeFile, Mode: 0o755, Size: 10, SHA256: sha("#!/bin/sh\n")},
		{Path: "private", Type: TypeDir, Mode: 0o700},
		{Path: "secret", Type: TypeFile, Mode: 0o600, Size: 2, SHA256: sha("s\n")},
	}
	if !reflect.DeepEqual(m.Entries, want) {
		t.Errorf("entries:\n got %+v\nwant %+v", m.Entries, want)
	}
}

func TestScan_Excludes(t *testing.T) {
	tree := map[string]testenv.Node{
		"app.py":                  {Content: "1"},
		"app.pyc":                 {Content: "1"},
		"pkg/mod.py":              {Content: "1"},
		"pkg/mod.pyc":             {Content: "1"},
		"pkg/__pycache__/mod.pyc": {Content: "1"},
		"__pycache__/x":           {Content: "1"},
		".git/HEAD":               {Content: "1"},
		"a/b/c.txt":               {Content: "1"},
		"a/bb/c.txt":              {Content: "1"},
		"x/a/b/c.txt":             {Content: "1"},
		"tmp/file":                {Content: "1"},
		"tmpfile/tmp":             {Content: "1"},
	}
	tests := []struct {
		name    string
		exclude []string
		want    []string
	}{
		{name: "none", want: []string{".git", ".git/HEAD", "__pycache__", "__pycache__/x", "a", "a/b", "a/b/c.txt",
			"a/bb", "a/bb/c.txt", "app.py", "app.pyc", "pkg", "pkg/__pycache__", "pkg/__pycache__/mod.pyc", "pkg/mod.py",
			"pkg/mod.pyc", "tmp", "tmp/file", "tmpfile", "tmpfile/tmp", "x", "x/a", "x/a/b", "x/a/b/c.txt"}},
		{name: "basename globs at any depth", exclude: []string{"*.pyc", "__pycache__", ".git"},
			want: []string{"a", "a/b", "a/b/c.txt", "a/bb", "a/bb/c.txt", "app.py", "pkg", "pkg/mod.py", "tmp",
				"tmp/file", "tmpfile", "tmpfile/tmp", "x", "x/a", "x/a/b", "x/a/b/c.txt"}},
		{name: "path from the root only", exclude: []string{"a/b"},
			want: []string{".git", ".git/HEAD", "__pycache__", "__pycache__/x", "a", "a/bb", "a/bb/c.txt", "app.py",
				"app.pyc", "pkg", "pkg/__pycache__", "pkg/__pycache__/mod.pyc", "pkg/mod.py", "pkg/mod.pyc", "tmp",
				"tmp/file", "tmpfile", "tmpfile/tmp", "x", "x/a", "x/a/b", "x/a/b/c.txt"}},
		{name: "leading slash anchors", exclude: []string{"/tmp", "/pkg/*.pyc", "/.git", "/__pycache__", "/a", "/x"},
			want: []string{"app.py", "app.pyc", "pkg", "pkg/__pycache__", "pkg/__pycache__/mod.pyc", "pkg/mod.py",
				"tmpfile", "tmpfile/tmp"}},
		{name: "trailing slash matches directories only", exclude: []string{"tmp/", ".git/", "__pycache__/", "a/",
			"x/", "pkg/"}, want: []string{"app.py", "app.pyc", "tmpfile", "tmpfile/tmp"}},
	}
	src := t.TempDir()
	testenv.WriteTree(t, src, tree)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Scan(context.Background(), src, tc.exclude)
			if err != nil {
				t.Fatal(err)
			}
			if got := paths(m); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("paths:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestScan_BadExclude(t *testing.T) {
	tests := []struct {
		name, pattern, want string
	}{
		{name: "syntax", pattern: "[", want: `exclude "[": syntax error in pattern`},
		{name: "negation", pattern: "!keep", want: `exclude "!keep": negation is not supported`},
		{name: "empty", pattern: "/", want: `exclude "/": empty pattern`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Scan(context.Background(), t.TempDir(), []string{tc.pattern})
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestScan_Symlinks(t *testing.T) {
	tests := []struct {
		name    string
		tree    map[string]testenv.Node
		wantErr string
	}{
		{name: "sibling", tree: map[string]testenv.Node{"a": {Content: "a"}, "l": {Link: "a"}}},
		{name: "dangling inside", tree: map[string]testenv.Node{"l": {Link: "missing/file"}}},
		{name: "up and back in", tree: map[string]testenv.Node{"d/x": {Content: "x"}, "d/l": {Link: "../d/x"}}},
		{name: "the root itself", tree: map[string]testenv.Node{"d/l": {Link: ".."}}},
		{name: "dots in a name", tree: map[string]testenv.Node{"..foo": {Content: "x"}, "l": {Link: "..foo"}}},
		{name: "loop is not an escape", tree: map[string]testenv.Node{"a": {Link: "b"}, "b": {Link: "a"}}},
		{name: "absolute", tree: map[string]testenv.Node{"l": {Link: "/etc/passwd"}},
			wantErr: `"l": symlink target "/etc/passwd" is absolute`},
		{name: "parent of root", tree: map[string]testenv.Node{"l": {Link: "../outside"}},
			wantErr: `symlink "l": target "../outside" escapes the tree`},
		{name: "deep escape", tree: map[string]testenv.Node{"d/e/l": {Link: "../../../x"}},
			wantErr: `symlink "d/e/l": target "../../../x" escapes the tree`},
		{name: "escape through another link", tree: map[string]testenv.Node{"b": {Link: "."}, "l": {Link: "b/.."}},
			wantErr: `symlink "l": target "b/.." escapes the tree`},
		{name: "escape through a nested link", tree: map[string]testenv.Node{"d/up": {Link: ".."}, "l": {Link: "d/up/../x"}},
			wantErr: `symlink "l": target "d/up/../x" escapes the tree`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := t.TempDir()
			testenv.WriteTree(t, src, tc.tree)
			m, err := Scan(context.Background(), src, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.HasSuffix(err.Error(), ": "+tc.wantErr) {
					t.Fatalf("err = %v, want one ending in %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for name, n := range tc.tree {
				if e, ok := m.Lookup(name); n.Link != "" && (!ok || e.Type != TypeSymlink || e.Link != n.Link) {
					t.Errorf("%s: entry %+v, want a symlink to %q", name, e, n.Link)
				}
			}
		})
	}
}

func TestScan_HostileNames(t *testing.T) {
	names := []string{"with space", "it's", `"dq"`, "$(touch x)", "`id`", "-rf", "--", "..foo", "...", `a\b`,
		"\xff\xfe", "ünï", "*", "semi;colon", strings.Repeat("n", 255)}
	src := t.TempDir()
	tree := map[string]testenv.Node{}
	for _, n := range names {
		tree[n] = testenv.Node{Content: n}
	}
	testenv.WriteTree(t, src, tree)
	m, err := Scan(context.Background(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string(nil), names...)
	sort.Strings(want)
	if got := paths(m); !reflect.DeepEqual(got, want) {
		t.Fatalf("paths:\n got %q\nwant %q", got, want)
	}
	for _, e := range m.Entries {
		if e.SHA256 != sha(e.Path) {
			t.Errorf("%q: sha256 %s, want that of its name", e.Path, e.SHA256)
		}
	}
}

func TestScan_Refuses(t *testing.T) {
	tests := []struct {
		name    string
		make    func(dir string) error
		wantErr string
	}{
		{name: "newline in a name", make: func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "a\nb"), nil, 0o644)
		}, wantErr: `"a\nb": names containing a newline or NUL byte are not supported`},
		{name: "fifo", make: func(dir string) error {
			return syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644)
		}, wantErr: `"pipe": unsupported file type p--------- (exclude it)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := t.TempDir()
			if err := tc.make(src); err != nil {
				t.Fatal(err)
			}
			_, err := Scan(context.Background(), src, nil)
			if err == nil || !strings.HasSuffix(err.Error(), ": "+tc.wantErr) {
				t.Fatalf("err = %v, want one ending in %q", err, tc.wantErr)
			}
		})
	}
}

func TestScan_RootMayBeASymlink(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteTree(t, dir, map[string]testenv.Node{"real/a": {Content: "a"}, "link": {Link: "real"}})
	m, err := Scan(context.Background(), filepath.Join(dir, "link"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := paths(m); !reflect.DeepEqual(got, []string{"a"}) {
		t.Fatalf("paths = %q, want [a]", got)
	}
}

func TestScan_Cancelled(t *testing.T) {
	src := t.TempDir()
	testenv.WriteTree(t, src, manyFiles("d", 50, "x"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Scan(ctx, src, nil); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("err = %v, want context canceled", err)
	}
}

func TestManifest_EncodeDecodeRoundTrip(t *testing.T) {
	fixture, err := os.ReadFile("testdata/manifest/good.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeManifest(bytes.NewReader(fixture))
	if err != nil {
		t.Fatalf("DecodeManifest: %v", err)
	}
	if e, ok := m.Lookup("\xff\xfe.txt"); !ok || e.Mode != 0o600 {
		t.Errorf("non-UTF-8 name not decoded from path64: %+v", e)
	}
	if e, ok := m.Lookup("ü"); !ok || e.Link != "\xff\xfe.txt" {
		t.Errorf("non-UTF-8 link target not decoded from link64: %+v", e)
	}
	var out bytes.Buffer
	if err := m.Encode(&out); err != nil {
		t.Fatal(err)
	}
	if out.String() != string(fixture) {
		t.Errorf("Encode(Decode(fixture)) differs from the fixture:\n%s", out.String())
	}
	again, err := NewManifest(m.Entries)
	if err != nil || !reflect.DeepEqual(again, m) {
		t.Errorf("NewManifest of decoded entries: %v", err)
	}
}

func TestDecodeManifest_BadLines(t *testing.T) {
	tests := []struct {
		name, want string
	}{
		{"invalid-json", `manifest line 2: invalid JSON: unexpected EOF`},
		{"unknown-field", `manifest line 1: invalid JSON: json: unknown field "owner"`},
		{"data-after-object", `manifest line 1: invalid JSON: data after the object`},
		{"empty-line", `manifest line 2: empty line`},
		{"missing-path", `manifest line 1: missing path`},
		{"both-path-forms", `manifest line 1: both path and path64 are set`},
		{"bad-base64", `manifest line 1: path64 is not valid base64`},
		{"absolute-path", `manifest line 2: path "/etc/passwd" is absolute`},
		{"dotdot-path", `manifest line 2: path "a/../../b" escapes the tree`},
		{"unclean-path", `manifest line 1: path "a//b" is not clean`},
		{"dot-slash-path", `manifest line 1: path "./a" is not clean`},
		{"dot-path", `manifest line 1: path "." is not clean`},
		{"newline-path", `manifest line 1: path "a\nb" contains a newline or NUL byte`},
		{"nul-path", `manifest line 1: path "a\x00b" contains a newline or NUL byte`},
		{"long-name", `manifest line 1: path "` + strings.Repeat("x", 256) + `" has a name longer than 255 bytes`},
		{"unknown-type", `manifest line 1: unknown type "fifo"`},
		{"missing-type", `manifest line 1: unknown type ""`},
		{"mode-three-digits", `manifest line 1: mode "644" is not four octal digits between 0000 and 0777`},
		{"mode-setuid", `manifest line 1: mode "4755" is not four octal digits between 0000 and 0777`},
		{"mode-not-octal", `manifest line 1: mode "0o644" is not four octal digits between 0000 and 0777`},
		{"mode-number", `manifest line 1: invalid JSON: json: cannot unmarshal number into Go struct field entryJSON.mode of type string`},
		{"negative-size", `manifest line 1: size -1 is negative`},
		{"short-sha", `manifest line 1: sha256 "abc" is not 64 lowercase hex digits`},
		{"uppercase-sha", `manifest line 1: sha256 "` + strings.ToUpper(sha("a\n")) + `" is not 64 lowercase hex digits`},
		{"file-with-link", `manifest line 1: a file has no link target`},
		{"dir-with-sha", `manifest line 1: a dir has no size, sha256 or link target`},
		{"symlink-without-target", `manifest line 1: symlink has no target`},
		{"symlink-absolute", `manifest line 1: symlink target "/etc" is absolute`},
		{"symlink-escapes", `manifest line 2: symlink "d/l": target "../../x" escapes the tree`},
		{"symlink-escapes-via-link", `manifest line 3: symlink "l": target "b/.." escapes the tree`},
		{"unsorted", `manifest line 2: path "a" is not after "b" (entries must be sorted and unique)`},
		{"duplicate", `manifest line 2: path "a" is not after "a" (entries must be sorted and unique)`},
		{"parent-missing", `manifest line 2: parent of "d/x" is not a dir entry`},
		{"parent-is-symlink", `manifest line 3: parent of "l/x" is not a dir entry`},
	}
	files, err := filepath.Glob("testdata/manifest/bad/*.jsonl")
	if err != nil || len(files) != len(tests) {
		t.Fatalf("%d fixtures in testdata/manifest/bad, %d cases (%v)", len(files), len(tests), err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata/manifest/bad", tc.name+".jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			m, err := DecodeManifest(f)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("DecodeManifest = %v, %v\nwant error %q", m, err, tc.want)
			}
		})
	}
}

func TestNewManifest_SortsAndValidates(t *testing.T) {
	m, err := NewManifest([]Entry{
		{Path: "d/f", Type: TypeFile, Mode: 0o644, SHA256: sha("")},
		{Path: "d", Type: TypeDir, Mode: 0o755},
	})
	if err != nil || !reflect.DeepEqual(paths(m), []string{"d", "d/f"}) {
		t.Fatalf("NewManifest = %v, %v", m, err)
	}
	_, err = NewManifest([]Entry{{Path: "../x", Type: TypeFile, Mode: 0o644, SHA256: sha("")}})
	if want := `manifest entry "../x": path "../x" escapes the tree`; err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

func TestDiff(t *testing.T) {
	file := func(p, content string, mode os.FileMode) Entry {
		return Entry{Path: p, Type: TypeFile, Mode: mode, Size: int64(len(content)), SHA256: sha(content)}
	}
	dir := func(p string, mode os.FileMode) Entry { return Entry{Path: p, Type: TypeDir, Mode: mode} }
	link := func(p, target string) Entry { return Entry{Path: p, Type: TypeSymlink, Mode: 0o777, Link: target} }
	base := []Entry{file("a", "a", 0o644), dir("d", 0o755), file("d/x", "x", 0o644), link("l", "a"), file("z", "z", 0o644)}
	tests := []struct {
		name                    string
		old                     []Entry // nil: no old manifest
		new                     []Entry
		added, changed, removed []string
		unchanged               int
	}{
		{name: "no old manifest", new: base, added: []string{"a", "d", "d/x", "l", "z"}},
		{name: "identical", old: base, new: base, unchanged: 5},
		{name: "content", old: base, new: []Entry{file("a", "A", 0o644), dir("d", 0o755), file("d/x", "x", 0o644),
			link("l", "a"), file("z", "z", 0o644)}, changed: []string{"a"}, unchanged: 4},
		{name: "mode only", old: base, new: []Entry{file("a", "a", 0o755), dir("d", 0o700), file("d/x", "x", 0o644),
			link("l", "a"), file("z", "z", 0o644)}, changed: []string{"a", "d"}, unchanged: 3},
		{name: "type and link target", old: base, new: []Entry{dir("a", 0o755), dir("d", 0o755), file("d/x", "x", 0o644),
			link("l", "z"), link("z", "a")}, changed: []string{"a", "l", "z"}, unchanged: 2},
		{name: "added and removed", old: base, new: []Entry{file("a", "a", 0o644), file("b", "b", 0o644), link("l", "a")},
			added: []string{"b"}, removed: []string{"d", "d/x", "z"}, unchanged: 2},
		{name: "everything removed", old: base, new: nil, removed: []string{"a", "d", "d/x", "l", "z"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var old *Manifest
			if tc.old != nil {
				old = &Manifest{Entries: tc.old}
			}
			ch := Diff(old, &Manifest{Entries: tc.new})
			names := func(es []Entry) []string {
				var out []string
				for _, e := range es {
					out = append(out, e.Path)
				}
				return out
			}
			if got := names(ch.Added); !reflect.DeepEqual(got, tc.added) {
				t.Errorf("Added = %q, want %q", got, tc.added)
			}
			if got := names(ch.Changed); !reflect.DeepEqual(got, tc.changed) {
				t.Errorf("Changed = %q, want %q", got, tc.changed)
			}
			if got := names(ch.Removed); !reflect.DeepEqual(got, tc.removed) {
				t.Errorf("Removed = %q, want %q", got, tc.removed)
			}
			if ch.Unchanged != tc.unchanged {
				t.Errorf("Unchanged = %d, want %d", ch.Unchanged, tc.unchanged)
			}
		})
	}
}
