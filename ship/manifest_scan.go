package ship

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// Scan builds the manifest of the tree under root. It never follows symlinks: they are recorded with their
// target, and one whose target is absolute or resolves outside the tree is an error naming it. Paths matching
// exclude are left out (an excluded directory with everything under it). Files are hashed in parallel,
// streaming, so memory does not grow with file size.
//
// Exclude patterns are gitignore-like: a pattern without a slash (`*.pyc`, `__pycache__`) matches a name at
// any depth; a pattern with a slash (`a/b`, `/build`) matches the path from the root; a trailing slash
// (`tmp/`) matches directories only. Wildcards are those of path.Match; `**` and `!` negation are not
// supported. Names containing a newline or NUL byte are refused.
func Scan(ctx context.Context, root string, exclude []string) (*Manifest, error) {
	return ScanCached(ctx, root, exclude, nil)
}

// ScanCached is Scan that takes the hashes of files that look unchanged (see HashCache) from cache, which may
// be nil, and remembers the others' for the next scan.
func ScanCached(ctx context.Context, root string, exclude []string, cache *HashCache) (*Manifest, error) {
	return scanTree(ctx, root, exclude, cache, false)
}

// ScanDeferred is ScanCached that leaves the files cache does not know unhashed, for one Ship to hash: up
// front the few it must compare with its base release (same path and size), and the others on the way while
// it sends them, so that reading and hashing a large new file overlaps with the transfer instead of
// preceding it. Such a manifest is complete only in the release Ship stores; it is meant for one Ship at a
// time (several would each hash what they send), and HashCache.Save after it keeps what it hashed.
func ScanDeferred(ctx context.Context, root string, exclude []string, cache *HashCache) (*Manifest, error) {
	return scanTree(ctx, root, exclude, cache, true)
}

func scanTree(ctx context.Context, root string, exclude []string, cache *HashCache, deferHashing bool) (*Manifest, error) {
	started := time.Now()
	rules, err := compileExcludes(exclude)
	if err != nil {
		return nil, err
	}
	if root, err = filepath.EvalSymlinks(root); err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	if fi, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("scan: %s is not a directory", root)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h := newScanHasher(ctx, cancel, runtime.GOMAXPROCS(0)*2, cache)
	var entries []*Entry
	stamps := map[string]fileStamp{}
	var deferred map[string]fs.FileInfo
	if deferHashing {
		deferred = map[string]fs.FileInfo{}
	}
	walkErr := filepath.WalkDir(root, func(abs string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if abs == root {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(root, abs)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if strings.ContainsAny(d.Name(), "\n\x00") {
			return fmt.Errorf("%q: names containing a newline or NUL byte are not supported", rel)
		}
		if rules.excluded(rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := &Entry{Path: rel, Mode: info.Mode().Perm()}
		switch {
		case d.IsDir():
			e.Type = TypeDir
		case d.Type()&fs.ModeSymlink != 0:
			if e.Link, err = os.Readlink(abs); err != nil {
				return err
			}
			e.Type, e.Mode = TypeSymlink, 0o777
			if err := checkManifestEntry(*e); err != nil {
				return fmt.Errorf("%q: %w", rel, err)
			}
		case d.Type().IsRegular():
			e.Type = TypeFile
			sum, cached := cache.lookup(rel, info)
			if !cached && deferred != nil {
				e.Size, deferred[rel] = info.Size(), info
				break
			}
			if st, ok := trustedStamp(info, started); ok {
				stamps[rel] = st
			}
			if cached {
				e.SHA256, e.Size = sum, info.Size()
			} else {
				h.add(abs, info, e)
			}
		default:
			return fmt.Errorf("%q: unsupported file type %v (exclude it)", rel, d.Type())
		}
		entries = append(entries, e)
		return nil
	})
	if walkErr != nil {
		cancel()
	}
	// A failed hash cancels the walk, and a failed walk cancels the hashing: report the cause, not the echo.
	hashErr := h.wait()
	if hashErr != nil && (walkErr == nil || !errors.Is(hashErr, context.Canceled)) {
		return nil, fmt.Errorf("scan %s: %w", root, hashErr)
	}
	if walkErr != nil {
		return nil, fmt.Errorf("scan %s: %w", root, walkErr)
	}

	m := &Manifest{Entries: make([]Entry, len(entries)), stamps: stamps}
	if len(deferred) > 0 {
		m.deferred = &deferredHashes{infos: deferred, cache: cache, started: started}
	}
	for i, e := range entries {
		m.Entries[i] = *e
	}
	sort.Slice(m.Entries, func(i, j int) bool { return m.Entries[i].Path < m.Entries[j].Path })
	if _, err := checkManifestTree(m.Entries); err != nil {
		return nil, fmt.Errorf("scan %s: %w", root, err)
	}
	return m, nil
}

// trustedStamp is the stamp of a file hashed now, unless it was modified within racyWindow of started: it
// could change again in the same timestamp tick, so its stamp would not prove its content, and Ship hashes
// it again instead.
func trustedStamp(info fs.FileInfo, started time.Time) (fileStamp, bool) {
	if !info.ModTime().Before(started.Add(-racyWindow)) {
		return fileStamp{}, false
	}
	return stampOf(info), true
}

// scanHasher hashes files on a bounded pool of goroutines while the walk goes on.
type scanHasher struct {
	ctx    context.Context
	cancel context.CancelFunc
	cache  *HashCache
	jobs   chan scanHashJob
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

type scanHashJob struct {
	abs  string
	info fs.FileInfo
	e    *Entry
}

func newScanHasher(ctx context.Context, cancel context.CancelFunc, workers int, cache *HashCache) *scanHasher {
	h := &scanHasher{ctx: ctx, cancel: cancel, cache: cache, jobs: make(chan scanHashJob, workers*4)}
	for i := 0; i < workers; i++ {
		h.wg.Add(1)
		go h.work()
	}
	return h
}

// add queues a file; it gives up quietly once the scan is cancelled, whose error the walk reports.
func (h *scanHasher) add(abs string, info fs.FileInfo, e *Entry) {
	select {
	case h.jobs <- scanHashJob{abs, info, e}:
	case <-h.ctx.Done():
	}
}

func (h *scanHasher) wait() error {
	close(h.jobs)
	h.wg.Wait()
	return h.err
}

func (h *scanHasher) work() {
	defer h.wg.Done()
	buf := make([]byte, 128<<10)
	for j := range h.jobs {
		if h.ctx.Err() != nil {
			continue
		}
		sum, size, err := hashLocalFile(h.ctx, j.abs, buf)
		if err != nil {
			h.once.Do(func() { h.err = err; h.cancel() })
			continue
		}
		// The size is what was hashed, so that the two always agree even if the file is being written to.
		j.e.SHA256, j.e.Size = sum, size
		if size == j.info.Size() {
			h.cache.store(j.e.Path, j.info, sum)
		}
	}
}

func hashLocalFile(ctx context.Context, abs string, buf []byte) (string, int64, error) {
	f, err := os.Open(abs)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	sum := sha256.New()
	var size int64
	for {
		if err := ctx.Err(); err != nil {
			return "", 0, err
		}
		n, err := f.Read(buf)
		sum.Write(buf[:n])
		size += int64(n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", 0, err
		}
	}
	return hex.EncodeToString(sum.Sum(nil)), size, nil
}

// excludeRule is one compiled exclude pattern.
type excludeRule struct {
	pattern  string
	anchored bool // matched against the whole relative path instead of the name
	dirOnly  bool
}

type excludeRules []excludeRule

func compileExcludes(patterns []string) (excludeRules, error) {
	var rules excludeRules
	for _, p := range patterns {
		r := excludeRule{pattern: p}
		if strings.HasPrefix(p, "!") {
			return nil, fmt.Errorf("exclude %q: negation is not supported", p)
		}
		if strings.HasSuffix(r.pattern, "/") {
			r.dirOnly = true
			r.pattern = strings.TrimRight(r.pattern, "/")
		}
		if strings.Contains(r.pattern, "/") {
			r.anchored = true
			r.pattern = path.Clean(strings.TrimLeft(r.pattern, "/"))
		}
		if r.pattern == "" || r.pattern == "." {
			return nil, fmt.Errorf("exclude %q: empty pattern", p)
		}
		if _, err := path.Match(r.pattern, ""); err != nil {
			return nil, fmt.Errorf("exclude %q: %w", p, err)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// excluded reports whether rel (slash-separated, relative to the root) is left out of the manifest.
func (rs excludeRules) excluded(rel string, isDir bool) bool {
	name := path.Base(rel)
	for _, r := range rs {
		if r.dirOnly && !isDir {
			continue
		}
		subject := name
		if r.anchored {
			subject = rel
		}
		if ok, _ := path.Match(r.pattern, subject); ok {
			return true
		}
	}
	return false
}
