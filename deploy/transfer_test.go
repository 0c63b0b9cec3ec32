package deploy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/internal/testenv"
	"github.com/skiffdeploy/skiff/remote"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var layoutSeq atomic.Int64

// connect dials the first shared test host and returns a fresh, not yet existing app directory on it.
func connect(tb testing.TB) (*remote.Conn, Layout, *testenv.Host) {
	tb.Helper()
	env := testenv.Shared(tb)
	h := env.Hosts[0]
	pool := remote.NewPool(remote.Options{})
	tb.Cleanup(func() { pool.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pool.Get(ctx, &remote.Target{Name: h.Name, Address: h.IP, Port: h.Port, User: env.User,
		IdentityFiles: []string{env.KeyFile}, KnownHosts: env.KnownHosts})
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	dir := path.Join(h.Root, "srv", fmt.Sprintf("app%d", layoutSeq.Add(1)))
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return c, Layout{Path: dir}, h
}

// node is one entry of a test tree: a file (content), a directory (dir) or a symlink (link).
type node struct {
	content string
	dir     bool
	link    string
	mode    fs.FileMode
}

// writeTree creates the entries under root; parents of files are created as needed with mode 0755.
func writeTree(tb testing.TB, root string, tree map[string]node) {
	tb.Helper()
	for name, n := range tree {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		mode := n.mode
		var err error
		switch {
		case n.dir:
			if mode == 0 {
				mode = 0o755
			}
			if err = os.MkdirAll(p, 0o755); err == nil {
				err = os.Chmod(p, mode)
			}
		case n.link != "":
			err = os.Symlink(n.link, p)
		default:
			if mode == 0 {
				mode = 0o644
			}
			if err = os.WriteFile(p, []byte(n.content), mode); err == nil {
				err = os.Chmod(p, mode)
			}
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// inodeState is what must not change in a base release when a later one is shipped from it.
type inodeState struct {
	ino     uint64
	mode    fs.FileMode
	content string
	link    string
}

// snapshot records every entry under root, which is on this machine since test hosts are local.
func snapshot(tb testing.TB, root string) map[string]inodeState {
	tb.Helper()
	out := make(map[string]inodeState)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		s := inodeState{ino: fi.Sys().(*syscall.Stat_t).Ino, mode: fi.Mode()}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s.content = string(b)
		case fi.Mode()&fs.ModeSymlink != 0:
			if s.link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = s
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func scan(tb testing.TB, root string) *Manifest {
	tb.Helper()
	m, err := Scan(context.Background(), root, nil)
	if err != nil {
		tb.Fatalf("Scan: %v", err)
	}
	return m
}

// manyFiles returns n small files under dir, enough to make Ship use a tar stream.
func manyFiles(dir string, n int, content string) map[string]node {
	tree := make(map[string]node)
	for i := 0; i < n; i++ {
		tree[fmt.Sprintf("%s/f%03d", dir, i)] = node{content: fmt.Sprintf("%s %d\n", content, i)}
	}
	return tree
}

func merge(trees ...map[string]node) map[string]node {
	out := make(map[string]node)
	for _, t := range trees {
		for k, v := range t {
			out[k] = v
		}
	}
	return out
}

// shipMethods are the two ways Ship sends content; every integration test runs with both.
var shipMethods = []struct {
	name string
	opts ShipOptions
	many int // files added to the tree so that the tar stream is used
}{
	{name: "sftp", opts: ShipOptions{SFTPOnly: true, Concurrency: 8}},
	{name: "tar", many: tarMinFiles},
}

func TestShip_FirstDeploy(t *testing.T) {
	for _, method := range shipMethods {
		t.Run(method.name, func(t *testing.T) {
			ctx := context.Background()
			c, layout, _ := connect(t)
			src := t.TempDir()
			writeTree(t, src, merge(manyFiles("many", method.many, "x"), map[string]node{
				"app.py":         {content: "print('hi')\n"},
				"bin/run":        {content: "#!/bin/sh\necho run\n", mode: 0o755},
				"conf/secret":    {content: "s3cret\n", mode: 0o600},
				"empty":          {content: ""},
				"private":        {dir: true, mode: 0o700},
				"readonly":       {dir: true, mode: 0o555},
				"static/a.css":   {content: "a{}\n"},
				"static/link":    {link: "a.css"},
				"static/up":      {link: "../app.py"},
				"static/dirlink": {link: "."},
			}))
			m := scan(t, src)
			id := "20260101T000000Z-abc1234"
			st, err := Ship(ctx, c, src, m, layout, id, "", nil, method.opts)
			if err != nil {
				t.Fatalf("Ship: %v", err)
			}
			if want := int64(5 + method.many); st.Files != want || st.Reused != 0 || st.Removed != 0 {
				t.Errorf("stats = %+v, want %d files sent, none reused or removed", st, want)
			}
			if err := Verify(ctx, c, layout, id, m); err != nil {
				t.Error(err)
			}
			got, err := ReadManifest(ctx, c, layout, id)
			if err != nil {
				t.Fatalf("ReadManifest: %v", err)
			}
			if d := Diff(m, got); len(d.Added)+len(d.Changed)+len(d.Removed) != 0 {
				t.Errorf("stored manifest differs from the shipped one: %+v", d)
			}
		})
	}
}

func TestShip_Incremental(t *testing.T) {
	for _, method := range shipMethods {
		t.Run(method.name, func(t *testing.T) {
			ctx := context.Background()
			c, layout, h := connect(t)
			v1 := merge(manyFiles("many", method.many, "v1"), map[string]node{
				"same.txt":        {content: "same\n"},
				"changed.txt":     {content: "old\n"},
				"chmod.sh":        {content: "#!/bin/sh\n", mode: 0o644},
				"gone.txt":        {content: "bye\n"},
				"gonedir/a":       {content: "a\n"},
				"gonedir/sub/b":   {content: "b\n"},
				"becomes-dir":     {content: "file\n"},
				"becomes-file/x":  {content: "x\n"},
				"link":            {link: "same.txt"},
				"locked":          {dir: true, mode: 0o555},
				"locked/keep.txt": {content: "keep\n"},
				"tight":           {dir: true, mode: 0o755},
			})
			src1 := t.TempDir()
			writeTree(t, src1, v1)
			m1 := scan(t, src1)
			id1, id2 := "20260101T000000Z", "20260101T000100Z"
			if _, err := Ship(ctx, c, src1, m1, layout, id1, "", nil, method.opts); err != nil {
				t.Fatalf("first Ship: %v", err)
			}
			local1 := filepath.Join(layout.Release(id1))
			before := snapshot(t, local1)

			v2 := merge(manyFiles("many", method.many, "v2"), map[string]node{
				"same.txt":          {content: "same\n"},
				"changed.txt":       {content: "new content\n"},
				"chmod.sh":          {content: "#!/bin/sh\n", mode: 0o755},
				"new.txt":           {content: "new\n"},
				"becomes-dir/y":     {content: "y\n"},
				"becomes-file":      {content: "now a file\n"},
				"link":              {link: "changed.txt"},
				"locked":            {dir: true, mode: 0o555},
				"locked/keep.txt":   {content: "keep\n"},
				"locked/added.txt":  {content: "added\n"},
				"tight":             {dir: true, mode: 0o700},
				"newdir/deep/z.txt": {content: "z\n"},
			})
			src2 := t.TempDir()
			writeTree(t, src2, v2)
			m2 := scan(t, src2)
			st, err := Ship(ctx, c, src2, m2, layout, id2, id1, m1, method.opts)
			if err != nil {
				t.Fatalf("second Ship: %v", err)
			}
			// changed.txt, new.txt, becomes-dir/y, becomes-file, locked/added.txt, newdir/deep/z.txt and the many.
			if want := int64(6 + method.many); st.Files != want {
				t.Errorf("sent %d files, want %d", st.Files, want)
			}
			if st.Reused != 3 { // same.txt, chmod.sh (copied on the target), locked/keep.txt
				t.Errorf("reused %d files, want 3", st.Reused)
			}
			if st.Removed != 6 { // gone.txt, gonedir, gonedir/a, gonedir/sub, gonedir/sub/b, becomes-file/x
				t.Errorf("removed %d entries, want 6", st.Removed)
			}
			if err := Verify(ctx, c, layout, id2, m2); err != nil {
				t.Error(err)
			}
			if err := Verify(ctx, c, layout, id1, m1); err != nil {
				t.Errorf("base release changed: %v", err)
			}
			after := snapshot(t, local1)
			for p, s := range before {
				if after[p] != s {
					t.Errorf("base release entry %q changed: %+v, was %+v", p, after[p], s)
				}
			}
			local2 := snapshot(t, layout.Release(id2))
			if local2["same.txt"].ino != before["same.txt"].ino {
				t.Errorf("same.txt was not hard-linked from the base release")
			}
			if local2["chmod.sh"].ino == before["chmod.sh"].ino {
				t.Errorf("chmod.sh shares its inode with the base release despite its new mode")
			}
			_ = h
		})
	}
}

func TestShip_HostileNames(t *testing.T) {
	names := []string{
		"with space.txt", "it's.txt", `dq"uote.txt`, "$(touch PWNED).txt", "`touch PWNED`", "-rf", "--help",
		"..foo", "...", "a\\b", "tab\there", "star*", "semi;colon", "amp&", "pipe|", "\xff\xfe-invalid-utf8",
		"ünïcödé", strings.Repeat("L", 250), "dir with space/-leading", "$HOME", "~tilde",
	}
	for _, method := range shipMethods {
		t.Run(method.name, func(t *testing.T) {
			ctx := context.Background()
			c, layout, h := connect(t)
			tree := manyFiles("many", method.many, "x")
			for i, n := range names {
				tree[n] = node{content: fmt.Sprintf("content %d\n", i)}
			}
			tree["link to it's"] = node{link: "it's.txt"}
			tree["-dash-link"] = node{link: "-rf"}
			src := t.TempDir()
			writeTree(t, src, tree)
			m1 := scan(t, src)
			id1, id2 := "20260101T000000Z", "20260101T000100Z"
			if _, err := Ship(ctx, c, src, m1, layout, id1, "", nil, method.opts); err != nil {
				t.Fatalf("Ship: %v", err)
			}
			if err := Verify(ctx, c, layout, id1, m1); err != nil {
				t.Error(err)
			}
			// Change every hostile file, then remove some, so each goes through every operation once.
			for i, n := range names {
				p := filepath.Join(src, filepath.FromSlash(n))
				if i%2 == 0 {
					os.Remove(p)
				} else if err := os.WriteFile(p, []byte("changed\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			m2 := scan(t, src)
			if _, err := Ship(ctx, c, src, m2, layout, id2, id1, m1, method.opts); err != nil {
				t.Fatalf("incremental Ship: %v", err)
			}
			if err := Verify(ctx, c, layout, id2, m2); err != nil {
				t.Error(err)
			}
			if err := Verify(ctx, c, layout, id1, m1); err != nil {
				t.Errorf("base release changed: %v", err)
			}
			filepath.WalkDir(h.Root, func(p string, d fs.DirEntry, err error) error {
				if err == nil && strings.HasPrefix(d.Name(), "PWNED") {
					t.Errorf("a name was run as a command: %s exists", p)
				}
				return nil
			})
		})
	}
}

func TestShip_ExistingReleaseIsAnError(t *testing.T) {
	ctx := context.Background()
	c, layout, _ := connect(t)
	src := t.TempDir()
	writeTree(t, src, map[string]node{"a": {content: "a\n"}})
	m := scan(t, src)
	id := "20260101T000000Z"
	if _, err := Ship(ctx, c, src, m, layout, id, "", nil, ShipOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := Ship(ctx, c, src, m, layout, id, "", nil, ShipOptions{})
	if err == nil || !strings.Contains(err.Error(), "prepare release") || !strings.Contains(err.Error(), "File exists") {
		t.Fatalf("second Ship to the same id: err = %v, want a prepare error saying the release exists", err)
	}
}

func TestShip_SourceChangedAfterScan(t *testing.T) {
	for _, method := range shipMethods {
		t.Run(method.name, func(t *testing.T) {
			ctx := context.Background()
			c, layout, _ := connect(t)
			src := t.TempDir()
			writeTree(t, src, merge(manyFiles("many", method.many, "x"), map[string]node{"a": {content: "a\n"}}))
			m := scan(t, src)
			if err := os.WriteFile(filepath.Join(src, "a"), []byte("b\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Ship(ctx, c, src, m, layout, "20260101T000000Z", "", nil, method.opts)
			if err == nil || !strings.Contains(err.Error(), `local file "a" changed since it was scanned`) {
				t.Fatalf("err = %v, want the changed file named", err)
			}
			noManifests(t, layout)
		})
	}
}

func TestReadManifest_Missing(t *testing.T) {
	c, layout, _ := connect(t)
	_, err := ReadManifest(context.Background(), c, layout, "20260101T000000Z")
	if !errors.Is(err, ErrNoManifest) {
		t.Fatalf("err = %v, want ErrNoManifest", err)
	}
}

func TestReadManifest_Tampered(t *testing.T) {
	ctx := context.Background()
	c, layout, _ := connect(t)
	src := t.TempDir()
	writeTree(t, src, map[string]node{"a": {content: "a\n"}, "b": {content: "b\n"}})
	id := "20260101T000000Z"
	if _, err := Ship(ctx, c, src, scan(t, src), layout, id, "", nil, ShipOptions{}); err != nil {
		t.Fatal(err)
	}
	bad := `{"path":"a","type":"file","mode":"0644","size":2,"sha256":"` + strings.Repeat("0", 64) + `"}` + "\n" +
		`{"path":"../../etc/passwd","type":"file","mode":"0644","size":2,"sha256":"` + strings.Repeat("0", 64) + `"}` + "\n"
	if err := os.WriteFile(layout.Manifest(id), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadManifest(ctx, c, layout, id)
	if err == nil || !strings.Contains(err.Error(), `manifest line 2: path "../../etc/passwd" escapes the tree`) {
		t.Fatalf("err = %v, want line 2 rejected", err)
	}
}

func TestVerify_DetectsTampering(t *testing.T) {
	ctx := context.Background()
	c, layout, _ := connect(t)
	src := t.TempDir()
	writeTree(t, src, map[string]node{"a": {content: "a\n"}, "b": {content: "b\n"}, "d/c": {content: "c\n"}})
	m := scan(t, src)
	id := "20260101T000000Z"
	if _, err := Ship(ctx, c, src, m, layout, id, "", nil, ShipOptions{}); err != nil {
		t.Fatal(err)
	}
	rel := layout.Release(id)
	os.WriteFile(filepath.Join(rel, "a"), []byte("tampered\n"), 0o644)
	os.Chmod(filepath.Join(rel, "b"), 0o777)
	os.Remove(filepath.Join(rel, "d", "c"))
	os.WriteFile(filepath.Join(rel, "extra"), []byte("x"), 0o644)
	err := Verify(ctx, c, layout, id, m)
	if err == nil {
		t.Fatal("Verify passed on a tampered release")
	}
	for _, want := range []string{`"a": sha256 `, `"b": mode 0777, want 0644`, `"d/c": missing`, `"extra": not in the manifest`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestShip_CancelStopsTransfer(t *testing.T) {
	for _, method := range shipMethods {
		t.Run(method.name, func(t *testing.T) {
			c, layout, _ := connect(t)
			src := t.TempDir()
			testenv.WriteBigFile(t, filepath.Join(src, "big"), 128<<20)
			m := scan(t, src)
			id := "20260101T000000Z"
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// Cancel as soon as the file starts to arrive on the target, under its temporary name or its own.
			go func() {
				for ctx.Err() == nil {
					if matches, _ := filepath.Glob(filepath.Join(layout.Release(id), "*big*")); len(matches) > 0 {
						cancel()
						return
					}
					time.Sleep(time.Millisecond)
				}
			}()
			_, err := Ship(ctx, c, src, m, layout, id, "", nil, method.opts)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			noManifests(t, layout)
		})
	}
}

// noManifests fails the test if a failed ship left a manifest behind, staged or final.
func noManifests(t *testing.T, layout Layout) {
	t.Helper()
	entries, err := os.ReadDir(layout.Manifests())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("failed ship left %s in %s", e.Name(), layout.Manifests())
	}
}
