package release

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/remote"
)

func TestRetireReleasesCommand_RemovesAtOnceAndFreesInTheBackground(t *testing.T) {
	for _, tc := range []struct {
		name   string
		retire func(ctx context.Context, c Conn, l Layout, ids []string, token string) error
	}{
		{name: "remote command", retire: func(ctx context.Context, c Conn, l Layout, ids []string, token string) error {
			_, err := c.Run(ctx, RetireReleasesCommand(l, ids, token))
			return err
		}},
		{name: "sftp, then the trash emptied", retire: func(ctx context.Context, c Conn, l Layout, ids []string, token string) error {
			if err := RetireReleasesSFTP(ctx, c, l, ids, token); err != nil {
				return err
			}
			_, err := c.Run(ctx, EmptyTrashCommand(l))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { testRetire(t, tc.retire) })
	}
}

func testRetire(t *testing.T, retire func(ctx context.Context, c Conn, l Layout, ids []string, token string) error) {
	ctx := context.Background()
	c, layout, _ := connect(t)
	const gone, kept = "20260101T000000Z", "20260101T000100Z"
	// A release with a read-only directory that holds files, a kept one, and the trash an earlier run left.
	setup := remote.Script(`set -e; rel="$1"; man="$2"
mkdir -p "$rel/$3/ro" "$rel/$4" "$man" "$rel/`+trashPrefix+`earlier/20251231T000000Z/d"
echo x > "$rel/$3/ro/file"; echo y > "$rel/$3/top"; chmod 555 "$rel/$3/ro"
echo old > "$rel/`+trashPrefix+`earlier/20251231T000000Z/d/f"
touch "$man/$3" "$man/$4"`, layout.Releases(), layout.Manifests(), gone, kept)
	if _, err := c.Run(ctx, setup); err != nil {
		t.Fatal(err)
	}

	if err := retire(ctx, c, layout, []string{gone}, "0123abcd"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{layout.Release(gone), layout.Manifest(gone)} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is still there once the command returned (err = %v)", p, err)
		}
	}
	for _, p := range []string{layout.Release(kept), layout.Manifest(kept)} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("kept release: %v", err)
		}
	}
	ids, err := ListReleases(ctx, c, layout)
	if err != nil || len(ids) != 1 || ids[0] != kept {
		t.Errorf("ListReleases = %v, %v; want only %s, never the trash", ids, err, kept)
	}

	deadline := time.Now().Add(20 * time.Second)
	for {
		trash, _ := filepath.Glob(filepath.Join(layout.Releases(), trashPrefix+"*"))
		if len(trash) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the trash is still there: %s", strings.Join(trash, ", "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReadRetention_ReportsStaleTrash(t *testing.T) {
	ctx := context.Background()
	c, layout, _ := connect(t)
	const stale, fresh = trashPrefix + "0001", trashPrefix + "0002"
	setup := remote.Script(`set -e; mkdir -p "$1/$2/20251231T000000Z" "$1/$3/20251231T000001Z" "$1/20260101T000000Z"`,
		layout.Releases(), stale, fresh)
	if _, err := c.Run(ctx, setup); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * staleTrashAge)
	if err := os.Chtimes(filepath.Join(layout.Releases(), stale), old, old); err != nil {
		t.Fatal(err)
	}
	st, err := ReadRetention(ctx, c, layout)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.StaleTrash) != 1 || st.StaleTrash[0] != stale {
		t.Errorf("stale trash = %v, want only %s", st.StaleTrash, stale)
	}
	if len(st.IDs) != 1 || st.IDs[0] != "20260101T000000Z" {
		t.Errorf("releases = %v, want only the real one", st.IDs)
	}
}
