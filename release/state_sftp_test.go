package release

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/internal/remotetest"
	"github.com/skiffdeploy/skiff/internal/testenv"
	"github.com/skiffdeploy/skiff/remote"
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
		tree  map[string]testenv.Node
		count int // releases the shell lists, so that agreeing on nothing cannot pass
	}{
		{name: "no app directory"},
		{name: "empty app directory", tree: map[string]testenv.Node{"releases": {Dir: true}}},
		{name: "releases, manifests and history", tree: map[string]testenv.Node{
			"releases/" + a:                 {Dir: true},
			"releases/" + b:                 {Dir: true},
			"releases/" + c:                 {Dir: true},
			"releases/" + d:                 {Content: "a file is not a release"},
			"releases/" + e:                 {Link: a},
			"releases/20261122T999999Z":     {Dir: true},
			"releases/.hidden":              {Dir: true},
			"releases/junk":                 {Dir: true},
			"releases/20261123T000000Z":     {Link: "missing"},
			".skiff/manifests/" + a:         {Content: "m"},
			".skiff/manifests/" + b:         {Content: "m"},
			".skiff/manifests/" + c:         {Dir: true},
			".skiff/manifests/" + e:         {Link: a},
			".skiff/manifests/not-an-id":    {Content: "m"},
			".skiff/history.jsonl":          {Content: history},
			".skiff/manifests/.tmp-" + d:    {Content: "m"},
			"releases/" + a + "/server.py":  {Content: "print()"},
			"releases/" + b + "/lib/mod.py": {Content: "x = 1"},
		}, count: 4},
		{name: "releases is a file, history a directory", tree: map[string]testenv.Node{
			"releases":                     {Content: "oops"},
			".skiff/history.jsonl/x":       {Content: "y"},
			".skiff/manifests/" + a:        {Content: "m"},
			".skiff/manifests/" + b + "/x": {Content: "y"},
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
			got, err := ReadRetention(ctx, conn, l)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.IDs) != len(wantIDs) || (len(wantIDs) > 0 && !reflect.DeepEqual(got.IDs, wantIDs)) {
				t.Errorf("release ids = %v, want %v", got.IDs, wantIDs)
			}
			if !reflect.DeepEqual(got.Complete, wantComplete) {
				t.Errorf("complete = %v, want %v", got.Complete, wantComplete)
			}
			if !reflect.DeepEqual(got.History, wantHist) {
				t.Errorf("history = %+v, want %+v", got.History, wantHist)
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
		tree map[string]testenv.Node
		want bool
	}{
		{name: "nothing there", want: false},
		{name: "other releases only", tree: map[string]testenv.Node{"releases/20261122T101400Z": {Dir: true}}, want: false},
		{name: "release directory", tree: map[string]testenv.Node{"releases/" + id + "/a": {Content: "x"}}, want: true},
		{name: "manifest only", tree: map[string]testenv.Node{".skiff/manifests/" + id: {Content: "m"}}, want: true},
		{name: "dangling symlink", tree: map[string]testenv.Node{"releases/" + id: {Link: "missing"}}, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, l, _ := connect(t)
			writeOwnedTree(t, l.Path, tc.tree)
			if got := LeftoverRelease(context.Background(), conn, l, id); got != tc.want {
				t.Errorf("LeftoverRelease = %v, want %v", got, tc.want)
			}
		})
	}
}

// writeOwnedTree writes tree under root (nothing when tree is nil) owned by the login user, as a deploy would
// have left it, creating root's parent for that user too when it is missing: tests that run later create
// their own app directories next to root as that user.
func writeOwnedTree(t *testing.T, root string, tree map[string]testenv.Node) {
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
	testenv.WriteTree(t, root, tree)
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

// connect dials the first shared test host and returns a fresh, not yet existing app directory on it.
func connect(tb testing.TB) (*remote.Conn, Layout, *testenv.Host) {
	c, dir, h := remotetest.Connect(tb)
	return c, Layout{Path: dir}, h
}
