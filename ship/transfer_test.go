package ship

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/internal/remotetest"
	"github.com/skiffdeploy/skiff/internal/testenv"
	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// connect dials the first shared test host and returns a fresh, not yet existing app directory on it.
func connect(tb testing.TB) (*remote.Conn, release.Layout, *testenv.Host) {
	c, dir, h := remotetest.Connect(tb)
	return c, release.Layout{Path: dir}, h
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
func manyFiles(dir string, n int, content string) map[string]testenv.Node {
	tree := make(map[string]testenv.Node)
	for i := 0; i < n; i++ {
		tree[fmt.Sprintf("%s/f%03d", dir, i)] = testenv.Node{Content: fmt.Sprintf("%s %d\n", content, i)}
	}
	return tree
}

func merge(trees ...map[string]testenv.Node) map[string]testenv.Node {
	out := make(map[string]testenv.Node)
	for _, t := range trees {
		for k, v := range t {
			out[k] = v
		}
	}
	return out
}

// shipMethod is a way Ship sends content, and the target it sends to.
type shipMethod struct {
	name  string
	opts  ShipOptions
	many  int               // files added to the tree so that the tar stream is used
	tools map[string]string // the target's programs, when not the shared test host's (StartHostWithTools)
}

// shipMethods are the ways Ship sends content; every integration test runs with each: over SFTP, in a tar
// stream, and in a tar stream to a target whose tar is known to be GNU tar.
var shipMethods = []shipMethod{
	{name: "sftp", opts: ShipOptions{SFTPOnly: true, Concurrency: 8}},
	{name: "tar", many: tarMinFiles},
	{name: "tar, GNU tar known", opts: ShipOptions{GNUTar: true}, many: tarMinFiles},
}

// busyBoxTar is a tar stream to a target whose tar is BusyBox's, which rejects GNU tar's options: a release
// without a base is made again without tar after its extraction fails, and one with a base learns it from the
// prepare script.
var busyBoxTar = shipMethod{name: "tar, BusyBox's on the target", many: tarMinFiles, tools: map[string]string{"tar": "/bin/busybox"}}

// connect dials the method's target and returns a fresh, not yet existing app directory on it.
func (m shipMethod) connect(tb testing.TB) (*remote.Conn, release.Layout, *testenv.Host) {
	tb.Helper()
	if m.tools == nil {
		return connect(tb)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		testenv.SkipOrFail(tb, "busybox is not installed (apt-get install busybox-static)")
	}
	env := testenv.Shared(tb)
	c, dir, h := remotetest.ConnectHost(tb, env, env.StartHostWithTools(tb, "tools", m.tools))
	return c, release.Layout{Path: dir}, h
}

func TestShip_FirstDeploy(t *testing.T) {
	for _, method := range append(shipMethods, busyBoxTar) {
		t.Run(method.name, func(t *testing.T) {
			ctx := context.Background()
			c, layout, _ := method.connect(t)
			src := t.TempDir()
			testenv.WriteTree(t, src, merge(manyFiles("many", method.many, "x"), map[string]testenv.Node{
				"app.py":         {Content: "print('hi')\n"},
				"bin/run":        {Content: "#!/bin/sh\necho run\n", Mode: 0o755},
				"conf/secret":    {Content: "s3cret\n", Mode: 0o600},
				"empty":          {Content: ""},
				"private":        {Dir: true, Mode: 0o700},
				"readonly":       {Dir: true, Mode: 0o555},
				"static/a.css":   {Content: "a{}\n"},
				"static/link":    {Link: "a.css"},
				"static/up":      {Link: "../app.py"},
				"static/dirlink": {Link: "."},
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
	for _, method := range append(shipMethods, busyBoxTar) {
		t.Run(method.name, func(t *testing.T) {
			ctx := context.Background()
			c, layout, h := method.connect(t)
			v1 := merge(manyFiles("many", method.many, "v1"), map[string]testenv.Node{
				"same.txt":        {Content: "same\n"},
				"changed.txt":     {Content: "old\n"},
				"chmod.sh":        {Content: "#!/bin/sh\n", Mode: 0o644},
				"gone.txt":        {Content: "bye\n"},
				"gonedir/a":       {Content: "a\n"},
				"gonedir/sub/b":   {Content: "b\n"},
				"becomes-dir":     {Content: "file\n"},
				"becomes-file/x":  {Content: "x\n"},
				"link":            {Link: "same.txt"},
				"locked":          {Dir: true, Mode: 0o555},
				"locked/keep.txt": {Content: "keep\n"},
				"tight":           {Dir: true, Mode: 0o755},
			})
			src1 := t.TempDir()
			testenv.WriteTree(t, src1, v1)
			m1 := scan(t, src1)
			id1, id2 := "20260101T000000Z", "20260101T000100Z"
			if _, err := Ship(ctx, c, src1, m1, layout, id1, "", nil, method.opts); err != nil {
				t.Fatalf("first Ship: %v", err)
			}
			local1 := filepath.Join(layout.Release(id1))
			before := snapshot(t, local1)

			v2 := merge(manyFiles("many", method.many, "v2"), map[string]testenv.Node{
				"same.txt":          {Content: "same\n"},
				"changed.txt":       {Content: "new content\n"},
				"chmod.sh":          {Content: "#!/bin/sh\n", Mode: 0o755},
				"new.txt":           {Content: "new\n"},
				"becomes-dir/y":     {Content: "y\n"},
				"becomes-file":      {Content: "now a file\n"},
				"link":              {Link: "changed.txt"},
				"locked":            {Dir: true, Mode: 0o555},
				"locked/keep.txt":   {Content: "keep\n"},
				"locked/added.txt":  {Content: "added\n"},
				"tight":             {Dir: true, Mode: 0o700},
				"newdir/deep/z.txt": {Content: "z\n"},
			})
			src2 := t.TempDir()
			testenv.WriteTree(t, src2, v2)
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
				tree[n] = testenv.Node{Content: fmt.Sprintf("content %d\n", i)}
			}
			tree["link to it's"] = testenv.Node{Link: "it's.txt"}
			tree["-dash-link"] = testenv.Node{Link: "-rf"}
			src := t.TempDir()
			testenv.WriteTree(t, src, tree)
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
	for _, method := range shipMethods {
		t.Run(method.name, func(t *testing.T) {
			ctx := context.Background()
			c, layout, _ := connect(t)
			src := t.TempDir()
			testenv.WriteTree(t, src, merge(manyFiles("many", method.many, "x"), map[string]testenv.Node{"a": {Content: "a\n"}}))
			m := scan(t, src)
			id := "20260101T000000Z"
			if _, err := Ship(ctx, c, src, m, layout, id, "", nil, method.opts); err != nil {
				t.Fatal(err)
			}
			_, err := Ship(ctx, c, src, m, layout, id, "", nil, method.opts)
			if err == nil || !strings.Contains(err.Error(), "prepare release") || !strings.Contains(err.Error(), "File exists") {
				t.Fatalf("second Ship to the same id: err = %v, want a prepare error saying the release exists", err)
			}
		})
	}
}

func TestShip_SourceChangedAfterScan(t *testing.T) {
	for _, method := range shipMethods {
		t.Run(method.name, func(t *testing.T) {
			ctx := context.Background()
			c, layout, _ := connect(t)
			src := t.TempDir()
			testenv.WriteTree(t, src, merge(manyFiles("many", method.many, "x"), map[string]testenv.Node{"a": {Content: "a\n"}}))
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
	testenv.WriteTree(t, src, map[string]testenv.Node{"a": {Content: "a\n"}, "b": {Content: "b\n"}})
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
	testenv.WriteTree(t, src, map[string]testenv.Node{"a": {Content: "a\n"}, "b": {Content: "b\n"}, "d/c": {Content: "c\n"}})
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
func noManifests(t *testing.T, layout release.Layout) {
	t.Helper()
	entries, err := os.ReadDir(layout.Manifests())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("failed ship left %s in %s", e.Name(), layout.Manifests())
	}
}
