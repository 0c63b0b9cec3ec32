package deploy

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/internal/testenv"
)

// TestReadRetention_MatchesShellListing checks that the SFTP reads of retention see exactly what
// ListReleases, CompleteReleases and ReadHistory see through the shell, on trees with the odd entries a
// target may hold.
func TestReadRetention_MatchesShellListing(t *testing.T) {
	const a, b, c, d, e = "20261122T101500Z", "20261122T101600Z-abc1234", "20261122T101700Z", "20261122T101800Z", "20261122T101900Z"
	history := `{"time":"2026-11-22T10:15:00Z","op":"deploy","app":"x","id":"` + a + `","result":"ok"}` + "\n" +
		`{"time":"2026-11-22T10:16:00Z","op":"deploy","app":"x","id":"` + b + `","previous":"` + a + `","result":"failed"}` + "\n"
	tests := []struct {
		name  string
		tree  map[string]node
		count int // releases the shell lists, so that agreeing on nothing cannot pass
	}{
		{name: "no app directory"},
		{name: "empty app directory", tree: map[string]node{"releases": {dir: true}}},
		{name: "releases, manifests and history", tree: map[string]node{
			"releases/" + a:                 {dir: true},
			"releases/" + b:                 {dir: true},
			"releases/" + c:                 {dir: true},
			"releases/" + d:                 {content: "a file is not a release"},
			"releases/" + e:                 {link: a},
			"releases/20261122T999999Z":     {dir: true},
			"releases/.hidden":              {dir: true},
			"releases/junk":                 {dir: true},
			"releases/20261123T000000Z":     {link: "missing"},
			".skiff/manifests/" + a:         {content: "m"},
			".skiff/manifests/" + b:         {content: "m"},
			".skiff/manifests/" + c:         {dir: true},
			".skiff/manifests/" + e:         {link: a},
			".skiff/manifests/not-an-id":    {content: "m"},
			".skiff/history.jsonl":          {content: history},
			".skiff/manifests/.tmp-" + d:    {content: "m"},
			"releases/" + a + "/server.py":  {content: "print()"},
			"releases/" + b + "/lib/mod.py": {content: "x = 1"},
		}, count: 4},
		{name: "releases is a file, history a directory", tree: map[string]node{
			"releases":                     {content: "oops"},
			".skiff/history.jsonl/x":       {content: "y"},
			".skiff/manifests/" + a:        {content: "m"},
			".skiff/manifests/" + b + "/x": {content: "y"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, l, _ := connect(t)
			writeOwnedTree(t, l.Path, tc.tree)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			wantIDs, err := ListReleases(ctx, conn, l)
			if err != nil {
				t.Fatal(err)
			}
			if len(wantIDs) != tc.count {
				t.Fatalf("the shell lists %v, want %d releases", wantIDs, tc.count)
			}
			wantComplete, err := CompleteReleases(ctx, conn, l)
			if err != nil {
				t.Fatal(err)
			}
			wantHist, err := ReadHistory(ctx, conn, l)
			if err != nil {
				t.Fatal(err)
			}
			got, err := readRetention(ctx, conn, l)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.ids) != len(wantIDs) || (len(wantIDs) > 0 && !reflect.DeepEqual(got.ids, wantIDs)) {
				t.Errorf("release ids = %v, want %v", got.ids, wantIDs)
			}
			if !reflect.DeepEqual(got.complete, wantComplete) {
				t.Errorf("complete = %v, want %v", got.complete, wantComplete)
			}
			if !reflect.DeepEqual(got.hist, wantHist) {
				t.Errorf("history = %+v, want %+v", got.hist, wantHist)
			}
		})
	}
}

// TestLeftoverRelease_SeesDirectoryOrManifest checks the probe that decides whether a deploy removes the
// remains of a killed run of the same release id before shipping.
func TestLeftoverRelease_SeesDirectoryOrManifest(t *testing.T) {
	const id = "20261122T101500Z"
	tests := []struct {
		name string
		tree map[string]node
		want bool
	}{
		{name: "nothing there", want: false},
		{name: "other releases only", tree: map[string]node{"releases/20261122T101400Z": {dir: true}}, want: false},
		{name: "release directory", tree: map[string]node{"releases/" + id + "/a": {content: "x"}}, want: true},
		{name: "manifest only", tree: map[string]node{".skiff/manifests/" + id: {content: "m"}}, want: true},
		{name: "dangling symlink", tree: map[string]node{"releases/" + id: {link: "missing"}}, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, l, _ := connect(t)
			writeOwnedTree(t, l.Path, tc.tree)
			if got := leftoverRelease(context.Background(), conn, l, id); got != tc.want {
				t.Errorf("leftoverRelease = %v, want %v", got, tc.want)
			}
		})
	}
}

// writeOwnedTree writes tree under root (nothing when tree is nil) owned by the login user, as a deploy would
// have left it, creating root's parent for that user too when it is missing: tests that run later create
// their own app directories next to root as that user.
func writeOwnedTree(t *testing.T, root string, tree map[string]node) {
	t.Helper()
	env := testenv.Shared(t)
	if parent := filepath.Dir(root); !exists(parent) {
		if err := os.MkdirAll(parent, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(parent, env.UID, env.GID); err != nil {
			t.Fatal(err)
		}
	}
	if tree == nil {
		return
	}
	writeTree(t, root, tree)
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, env.UID, env.GID)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
