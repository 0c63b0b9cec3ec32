package ship

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/internal/testenv"
	"github.com/skiffdeploy/skiff/release"
)

// scanDeferred is ScanDeferred of root with the given cache, failing the test on error.
func scanDeferred(tb testing.TB, root string, cache *HashCache) *Manifest {
	tb.Helper()
	m, err := ScanDeferred(context.Background(), root, nil, cache)
	if err != nil {
		tb.Fatalf("ScanDeferred: %v", err)
	}
	return m
}

// backdate sets the modification time of every file of tree under root an hour back, out of the racy window.
func backdate(tb testing.TB, root string, tree map[string]testenv.Node) {
	tb.Helper()
	earlier := time.Now().Add(-time.Hour)
	for p, n := range tree {
		if n.Link == "" {
			if err := os.Chtimes(filepath.Join(root, filepath.FromSlash(p)), earlier, earlier); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

// storedMatchesScan fails the test unless the manifest stored for id is the one a full Scan of src gives, and
// the release holds exactly that.
func storedMatchesScan(t *testing.T, c release.Conn, layout release.Layout, id, src string) *Manifest {
	t.Helper()
	ctx := context.Background()
	stored, err := ReadManifest(ctx, c, layout, id)
	if err != nil {
		t.Fatalf("ReadManifest: %v", err)
	}
	full := scan(t, src)
	if d := Diff(full, stored); len(d.Added)+len(d.Changed)+len(d.Removed) != 0 {
		t.Errorf("stored manifest of %s differs from a full scan: %+v", id, d)
	}
	if err := Verify(ctx, c, layout, id, full); err != nil {
		t.Error(err)
	}
	return full
}

func TestScanDeferred_LeavesUnknownFilesToShip(t *testing.T) {
	src := t.TempDir()
	tree := map[string]testenv.Node{"known": {Content: "known\n"}, "unknown": {Content: "unknown\n"}, "d/link": {Link: "../known"}}
	testenv.WriteTree(t, src, tree)
	backdate(t, src, tree)
	cacheDir := t.TempDir()
	cache := OpenHashCache(cacheDir, src)
	if _, err := ScanCached(context.Background(), src, []string{"unknown"}, cache); err != nil {
		t.Fatal(err)
	}
	if err := cache.Save(); err != nil {
		t.Fatal(err)
	}

	m := scanDeferred(t, src, OpenHashCache(cacheDir, src))
	known, _ := m.Lookup("known")
	unknown, _ := m.Lookup("unknown")
	if !isSHA256Hex(known.SHA256) || unknown.SHA256 != "" || unknown.Size != int64(len("unknown\n")) {
		t.Errorf("known = %+v, unknown = %+v; want the cached hash taken and the other left with its size", known, unknown)
	}
	if _, err := NewManifest(m.Entries); err == nil || !strings.Contains(err.Error(), `"unknown": sha256 ""`) {
		t.Errorf("NewManifest of a deferred scan: err = %v, want the unhashed entry refused", err)
	}
	if m := scanDeferred(t, src, OpenHashCache(cacheDir, src)); m.deferred == nil {
		t.Error("a file the cache does not know was hashed by the scan")
	}
}

func TestShip_DeferredHashes(t *testing.T) {
	for _, method := range shipMethods {
		t.Run(method.name, func(t *testing.T) {
			ctx := context.Background()
			c, layout, _ := connect(t)
			v1 := merge(manyFiles("many", method.many, "v1"), map[string]testenv.Node{
				"same.txt":      {Content: "same\n"},
				"same-size.txt": {Content: "aaaa\n"},
				"resized.txt":   {Content: "short\n"},
				"mode.sh":       {Content: "#!/bin/sh\n", Mode: 0o644},
				"link":          {Link: "same.txt"},
			})
			src1 := t.TempDir()
			testenv.WriteTree(t, src1, v1)
			testenv.WriteBigFile(t, filepath.Join(src1, "big.bin"), deferMinBytes) // so that hashes are taken on the way
			id1, id2 := "20260101T000000Z", "20260101T000100Z"
			st, err := Ship(ctx, c, src1, scanDeferred(t, src1, nil), layout, id1, "", nil, method.opts)
			if err != nil {
				t.Fatalf("first Ship: %v", err)
			}
			if st.Rehashed != 0 {
				t.Errorf("first Ship rehashed %d bytes, want none: every file was hashed once, on the way", st.Rehashed)
			}
			m1 := storedMatchesScan(t, c, layout, id1, src1)

			v2 := merge(manyFiles("many", method.many, "v2"), map[string]testenv.Node{
				"same.txt":      {Content: "same\n"},
				"same-size.txt": {Content: "bbbb\n"},
				"resized.txt":   {Content: "much longer now\n"},
				"mode.sh":       {Content: "#!/bin/sh\n", Mode: 0o755},
				"new.txt":       {Content: "new\n"},
				"link":          {Link: "new.txt"},
			})
			src2 := t.TempDir()
			testenv.WriteTree(t, src2, v2)
			testenv.WriteBigFile(t, filepath.Join(src2, "big.bin"), deferMinBytes+1)
			st, err = Ship(ctx, c, src2, scanDeferred(t, src2, nil), layout, id2, id1, m1, method.opts)
			if err != nil {
				t.Fatalf("second Ship: %v", err)
			}
			// same-size.txt (found changed by its hash), resized.txt, new.txt, big.bin and the many; same.txt
			// and mode.sh (copied on the target) are reused.
			if want := int64(4 + method.many); st.Files != want || st.Reused != 2 {
				t.Errorf("sent %d files and reused %d, want %d and 2", st.Files, st.Reused, want)
			}
			storedMatchesScan(t, c, layout, id2, src2)
			if err := Verify(ctx, c, layout, id1, m1); err != nil {
				t.Errorf("base release changed: %v", err)
			}
		})
	}
}

func TestShip_DeferredFileChangedAfterScan(t *testing.T) {
	sizes := []struct {
		name string
		size int64
	}{
		{name: "hashed up front", size: 100},
		{name: "hashed on the way", size: deferMinBytes},
	}
	for _, method := range shipMethods {
		for _, size := range sizes {
			t.Run(method.name+"/"+size.name, func(t *testing.T) {
				c, layout, _ := connect(t)
				src := t.TempDir()
				testenv.WriteTree(t, src, manyFiles("many", method.many, "x"))
				a := filepath.Join(src, "a")
				testenv.WriteBigFile(t, a, size.size)
				m := scanDeferred(t, src, nil)
				testenv.WriteBigFile(t, a, size.size)
				later := time.Now().Add(time.Minute)
				if err := os.Chtimes(a, later, later); err != nil {
					t.Fatal(err)
				}
				_, err := Ship(context.Background(), c, src, m, layout, "20260101T000000Z", "", nil, method.opts)
				if err == nil || !strings.Contains(err.Error(), `local file "a" changed since it was scanned`) {
					t.Fatalf("err = %v, want the changed file named", err)
				}
				noManifests(t, layout)
			})
		}
	}
}

func TestDeferredHashes_HashUpFront(t *testing.T) {
	src := t.TempDir()
	testenv.WriteTree(t, src, map[string]testenv.Node{"small": {Content: "small\n"}, "same": {Content: "same\n"}})
	testenv.WriteBigFile(t, filepath.Join(src, "big"), deferMinBytes)
	old := scan(t, src)
	cases := []struct {
		name     string
		base     *Manifest
		without  []string // files left out of the tree for this case
		hashed   []string // files to be hashed up front
		leftOver bool
	}{
		{name: "few bytes, no base", without: []string{"big"}, hashed: []string{"small", "same"}},
		{name: "many bytes, no base", hashed: nil, leftOver: true},
		{name: "many bytes, base with the same sizes", base: old, hashed: []string{"small", "same", "big"}},
		{name: "many bytes, base with one same size", base: mustManifest(t, mustLookup(t, old, "same")), hashed: []string{"same"}, leftOver: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := scanDeferred(t, src, nil)
			m, err := withoutShared(m, tc.without)
			if err != nil {
				t.Fatal(err)
			}
			_, left, err := m.deferred.hashUpFront(context.Background(), src, m, tc.base, nil)
			if err != nil {
				t.Fatal(err)
			}
			if left != tc.leftOver {
				t.Errorf("files left to hash on the way = %v, want %v", left, tc.leftOver)
			}
			want := map[string]bool{}
			for _, p := range tc.hashed {
				want[p] = true
			}
			for _, e := range m.Entries {
				if full, _ := old.Lookup(e.Path); want[e.Path] != (e.SHA256 == full.SHA256) {
					t.Errorf("%s: sha256 %q, want it hashed up front: %v", e.Path, e.SHA256, want[e.Path])
				}
			}
		})
	}
}

func TestShip_DeferredHashesReachTheCache(t *testing.T) {
	ctx := context.Background()
	c, layout, _ := connect(t)
	src := t.TempDir()
	tree := map[string]testenv.Node{"a": {Content: "a\n"}, "d/b": {Content: "bb\n"}, "big": {}}
	testenv.WriteTree(t, src, tree)
	testenv.WriteBigFile(t, filepath.Join(src, "big"), deferMinBytes) // hashed on the way, the others too
	backdate(t, src, tree)
	cacheDir := t.TempDir()
	cache := OpenHashCache(cacheDir, src)
	if _, err := Ship(ctx, c, src, scanDeferred(t, src, cache), layout, "20260101T000000Z", "", nil, ShipOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cache.Save(); err != nil {
		t.Fatal(err)
	}
	m := scanDeferred(t, src, OpenHashCache(cacheDir, src))
	if m.deferred != nil {
		t.Fatalf("after a Ship, %d file(s) still unknown to the cache", len(m.deferred.infos))
	}
	if d := Diff(scan(t, src), m); len(d.Changed) != 0 {
		t.Errorf("cached hashes differ from a full scan: %+v", d.Changed)
	}
}

func TestShip_RehashesOnlyFilesNoStampProves(t *testing.T) {
	for _, method := range shipMethods {
		t.Run(method.name, func(t *testing.T) {
			ctx := context.Background()
			c, layout, _ := connect(t)
			src := t.TempDir()
			tree := merge(manyFiles("many", method.many, "x"), map[string]testenv.Node{"a": {Content: "a\n"}, "b": {Content: "b\n"}, "new": {Content: "new\n"}})
			testenv.WriteTree(t, src, tree)
			earlier := time.Now().Add(-time.Hour)
			for p := range tree {
				if p != "new" {
					if err := os.Chtimes(filepath.Join(src, p), earlier, earlier); err != nil {
						t.Fatal(err)
					}
				}
			}
			m := scan(t, src)
			if err := os.Chtimes(filepath.Join(src, "a"), time.Now(), time.Now()); err != nil {
				t.Fatal(err)
			}
			st, err := Ship(ctx, c, src, m, layout, "20260101T000000Z", "", nil, method.opts)
			if err != nil {
				t.Fatal(err)
			}
			if st.Rehashed != 2+4 {
				t.Errorf("rehashed %d bytes, want 6: the file touched since the scan and the one written just before it", st.Rehashed)
			}
			handMade, err := NewManifest(m.Entries)
			if err != nil {
				t.Fatal(err)
			}
			st, err = Ship(ctx, c, src, handMade, layout, "20260101T000001Z", "", nil, method.opts)
			if err != nil {
				t.Fatal(err)
			}
			if st.Rehashed != st.Bytes {
				t.Errorf("rehashed %d of %d bytes of a manifest without stamps, want all", st.Rehashed, st.Bytes)
			}
		})
	}
}

func mustLookup(tb testing.TB, m *Manifest, p string) Entry {
	tb.Helper()
	e, ok := m.Lookup(p)
	if !ok {
		tb.Fatalf("no entry %q", p)
	}
	return e
}
