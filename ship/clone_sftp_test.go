package ship

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/internal/testenv"
)

// TestCloneSFTP_TakesExactlyTheManifest ships a release, changes it on the target as an app or an operator
// might (a file it wrote, a directory mode, a symlink), clones it over SFTP and ships the next version on the
// clone: the clone holds exactly the manifest, its files hard links to the base's, and the base is unchanged.
func TestCloneSFTP_TakesExactlyTheManifest(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, layout, _ := connect(t)
	v1 := map[string]testenv.Node{
		"same.txt":      {Content: "same\n"},
		"changed.txt":   {Content: "old\n"},
		"lib/a.py":      {Content: "a\n"},
		"lib/deep/b.py": {Content: "b\n"},
		"private":       {Dir: true, Mode: 0o700},
		"private/k":     {Content: "k\n", Mode: 0o600},
		"link":          {Link: "lib/a.py"},
	}
	src1 := t.TempDir()
	testenv.WriteTree(t, src1, v1)
	m1 := scan(t, src1)
	id1, id2 := "20260101T000000Z", "20260101T000100Z"
	if _, err := Ship(ctx, c, src1, m1, layout, id1, "", nil, ShipOptions{SFTPOnly: true}); err != nil {
		t.Fatalf("first Ship: %v", err)
	}
	base := layout.Release(id1)
	for _, err := range []error{
		os.MkdirAll(filepath.Join(base, "lib", "__pycache__"), 0o755),
		os.WriteFile(filepath.Join(base, "lib", "__pycache__", "a.pyc"), []byte("x"), 0o644),
		os.Chmod(filepath.Join(base, "lib"), 0o750),
		os.Remove(filepath.Join(base, "link")),
		os.Symlink("same.txt", filepath.Join(base, "link")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	before := snapshot(t, base)
	if !CloneBySFTP(m1) {
		t.Fatal("CloneBySFTP refuses a small manifest")
	}
	if err := CloneSFTP(ctx, c, layout, id1, id2, m1, 4); err != nil {
		t.Fatalf("CloneSFTP: %v", err)
	}
	clone := snapshot(t, layout.Release(id2))
	var got, want []string
	for p := range clone {
		got = append(got, p)
	}
	for _, e := range m1.Entries {
		if e.Path != "." {
			want = append(want, e.Path)
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("clone holds %v, want the manifest's %v", got, want)
	}
	for _, e := range m1.Entries {
		s := clone[e.Path]
		switch e.Type {
		case TypeFile:
			if s.ino != before[e.Path].ino {
				t.Errorf("%s is not a hard link to the base's", e.Path)
			}
		case TypeDir:
			if e.Path != "." && s.mode.Perm() != e.Mode.Perm() {
				t.Errorf("%s has mode %v, want the manifest's %v", e.Path, s.mode.Perm(), e.Mode.Perm())
			}
		case TypeSymlink:
			if s.link != e.Link {
				t.Errorf("%s links to %q, want the manifest's %q", e.Path, s.link, e.Link)
			}
		}
	}

	v2 := merge(v1, map[string]testenv.Node{"changed.txt": {Content: "new\n"}, "lib/new.py": {Content: "n\n"}})
	src2 := t.TempDir()
	testenv.WriteTree(t, src2, v2)
	m2 := scan(t, src2)
	st, err := Ship(ctx, c, src2, m2, layout, id2, id1, m1, ShipOptions{SFTPOnly: true, Cloned: true, ClonedExact: true})
	if err != nil {
		t.Fatalf("Ship on the clone: %v", err)
	}
	if st.Files != 2 {
		t.Errorf("sent %d files, want 2", st.Files)
	}
	if err := Verify(ctx, c, layout, id2, m2); err != nil {
		t.Error(err)
	}
	after := snapshot(t, base)
	for p, s := range before {
		if after[p] != s {
			t.Errorf("base release entry %q changed: %+v, was %+v", p, after[p], s)
		}
	}
}

// TestCloneSFTP_Refusals covers what CloneSFTP does not clone: a base its commands ran in, and a base that lacks
// a file of its manifest.
func TestCloneSFTP_Refusals(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	for _, tc := range []struct {
		name    string
		damage  func(t *testing.T, base, buildsRecord string) error
		want    func(error) bool
		created bool // the new release directory was made
	}{
		{name: "commands ran in the base", damage: func(t *testing.T, _, rec string) error {
			return os.WriteFile(rec, []byte("{}\n"), 0o644)
		}, want: func(err error) bool { return errors.Is(err, ErrRanInBase) }},
		{name: "a file of the manifest missing", damage: func(t *testing.T, base, _ string) error {
			return os.Remove(filepath.Join(base, "lib", "a.py"))
		}, want: func(err error) bool {
			return err != nil && strings.Contains(err.Error(), "the base release lacks entries of its manifest: lib/a.py")
		}, created: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, layout, _ := connect(t)
			src := t.TempDir()
			testenv.WriteTree(t, src, map[string]testenv.Node{"lib/a.py": {Content: "a\n"}, "b.txt": {Content: "b\n"}})
			m := scan(t, src)
			id1, id2 := "20260101T000000Z", "20260101T000100Z"
			if _, err := Ship(ctx, c, src, m, layout, id1, "", nil, ShipOptions{SFTPOnly: true}); err != nil {
				t.Fatal(err)
			}
			if err := tc.damage(t, layout.Release(id1), layout.ReleaseBuilds(id1)); err != nil {
				t.Fatal(err)
			}
			err := CloneSFTP(ctx, c, layout, id1, id2, m, 4)
			if !tc.want(err) {
				t.Fatalf("CloneSFTP: %v", err)
			}
			if _, serr := os.Lstat(layout.Release(id2)); (serr == nil) != tc.created {
				t.Errorf("release directory made: %v, want %v", serr == nil, tc.created)
			}
		})
	}
}
