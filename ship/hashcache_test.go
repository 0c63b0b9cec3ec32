package ship

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestScanCached_ReusesOnlyUnchangedFiles scans a tree twice through a cache: an untouched file takes its hash
// from the cache, a rewritten one (same size, new mtime) and a recently written one are hashed again, and the
// manifests always equal an uncached scan.
func TestScanCached_ReusesOnlyUnchangedFiles(t *testing.T) {
	ctx := context.Background()
	root, cacheDir := t.TempDir(), t.TempDir()
	old := time.Now().Add(-time.Hour)
	write := func(name, content string, mtime time.Time) {
		p := filepath.Join(root, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	write("same.txt", "unchanged", old)
	write("edited.txt", "version 1", old)
	write("racy.txt", "just now", time.Now())

	scan := func() *Manifest {
		t.Helper()
		c := OpenHashCache(cacheDir, root)
		m, err := ScanCached(ctx, root, nil, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Save(); err != nil {
			t.Fatal(err)
		}
		plain, err := Scan(ctx, root, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := Diff(plain, m); len(d.Added)+len(d.Changed)+len(d.Removed) != 0 {
			t.Fatalf("cached scan differs from a plain one: %+v", d)
		}
		return m
	}
	scan()
	c := OpenHashCache(cacheDir, root)
	cases := []struct {
		name   string
		cached bool
	}{
		{name: "same.txt", cached: true},
		{name: "edited.txt", cached: false},
		{name: "racy.txt", cached: false},
	}
	write("edited.txt", "version 2", old.Add(time.Minute))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			info, err := os.Lstat(filepath.Join(root, tc.name))
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := c.lookup(tc.name, info); ok != tc.cached {
				t.Errorf("lookup(%s) cached = %v, want %v", tc.name, ok, tc.cached)
			}
		})
	}
	if m := scan(); len(m.Entries) != 3 {
		t.Fatalf("second scan: %d entries, want 3", len(m.Entries))
	}
}

// TestOpenHashCache_Disabled shows that an empty directory turns the cache off without errors.
func TestOpenHashCache_Disabled(t *testing.T) {
	c := OpenHashCache("", t.TempDir())
	if c != nil {
		t.Fatal("want a nil cache")
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
}

func TestHashCache_SaveWritesOnlyWhatIsNew(t *testing.T) {
	root, cacheDir := t.TempDir(), t.TempDir()
	p := filepath.Join(root, "f")
	if err := os.WriteFile(p, []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	c := OpenHashCache(cacheDir, root)
	file := c.file
	saveAndRead := func() string {
		t.Helper()
		if err := c.Save(); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(file)
		return string(b)
	}
	if got := saveAndRead(); got != "{}" {
		t.Fatalf("first save wrote %q, want the empty cache", got)
	}
	os.Remove(file)
	if got := saveAndRead(); got != "" {
		t.Errorf("a save with nothing new wrote %q", got)
	}
	c.store("f", info, strings.Repeat("0", 64))
	if got := saveAndRead(); !strings.Contains(got, `"f"`) {
		t.Errorf("a save after a store wrote %q, want f in it", got)
	}
}
