package deploy

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"
)

// deferredHashes are the files ScanDeferred left unhashed: their entries have a size but no sha256 yet.
type deferredHashes struct {
	infos   map[string]fs.FileInfo // what the scan's stat said of each
	cache   *HashCache             // where the hashes taken later are remembered; may be nil
	started time.Time              // when the scan started, for trustedStamp
}

// pending reports whether e is a file whose hash is still to be taken.
func (d *deferredHashes) pending(e Entry) bool {
	if d == nil || e.Type != TypeFile || e.SHA256 != "" {
		return false
	}
	_, ok := d.infos[e.Path]
	return ok
}

// stamp is the stat the scan took of a deferred file: what must still hold once it has been read.
func (d *deferredHashes) stamp(p string) fileStamp {
	info := d.infos[p]
	return fileStamp{size: info.Size(), mtimeNS: info.ModTime().UnixNano()}
}

// placeholderSHA256 stands in for a deferred hash while the rest of an entry is checked.
const placeholderSHA256 = "0000000000000000000000000000000000000000000000000000000000000000"

// newManifest is NewManifest for a manifest that may still have deferred hashes.
func newManifest(entries []Entry, d *deferredHashes) (*Manifest, error) {
	if d == nil {
		return NewManifest(entries)
	}
	sorted := append([]Entry(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	for _, e := range sorted {
		if d.pending(e) {
			e.SHA256 = placeholderSHA256
		}
		if err := checkManifestEntry(e); err != nil {
			return nil, fmt.Errorf("manifest entry %q: %w", e.Path, err)
		}
	}
	if i, err := checkManifestTree(sorted); err != nil {
		return nil, fmt.Errorf("manifest entry %q: %w", sorted[i].Path, err)
	}
	return &Manifest{Entries: sorted, deferred: d}, nil
}

// hashComparable hashes, in parallel and before anything is planned, the deferred files of m (Ship's own
// copy) that base has with the same size: only their hash tells whether they changed. It returns stamps with
// theirs added, and whether files are still deferred, to be hashed while they are sent.
func (d *deferredHashes) hashComparable(ctx context.Context, localRoot string, m, base *Manifest,
	stamps map[string]fileStamp) (map[string]fileStamp, bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h := newScanHasher(ctx, cancel, runtime.GOMAXPROCS(0)*2, d.cache)
	hashed := map[string]fileStamp{}
	left := false
	for i := range m.Entries {
		e := &m.Entries[i]
		if !d.pending(*e) {
			continue
		}
		if o, ok := base.Lookup(e.Path); !ok || o.Type != TypeFile || o.Size != e.Size {
			left = true
			continue
		}
		info := d.infos[e.Path]
		h.add(filepath.Join(localRoot, filepath.FromSlash(e.Path)), info, e)
		if st, ok := trustedStamp(info, d.started); ok {
			hashed[e.Path] = st
		}
	}
	if err := h.wait(); err != nil {
		return nil, false, fmt.Errorf("hash: %w", err)
	}
	if len(hashed) == 0 {
		return stamps, left, nil
	}
	out := make(map[string]fileStamp, len(stamps)+len(hashed))
	for p, st := range stamps {
		out[p] = st
	}
	for p, st := range hashed {
		out[p] = st
	}
	return out, left, nil
}

// settledHashes collects the hashes of deferred files taken while they were sent, from many goroutines.
type settledHashes struct {
	mu   sync.Mutex
	sums map[string]string
}

func (s *settledHashes) put(p, sum string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sums == nil {
		s.sums = map[string]string{}
	}
	s.sums[p] = sum
}

// complete returns m with every deferred hash filled in from what was settled, checked as NewManifest checks
// any manifest, and remembers the hashes in the cache.
func (s *settledHashes) complete(m *Manifest, d *deferredHashes) (*Manifest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	entries := append([]Entry(nil), m.Entries...)
	for i := range entries {
		e := &entries[i]
		if !d.pending(*e) {
			continue
		}
		sum, ok := s.sums[e.Path]
		if !ok {
			return nil, fmt.Errorf("manifest entry %q: not hashed while it was sent", e.Path)
		}
		e.SHA256 = sum
		d.cache.store(e.Path, d.infos[e.Path], sum)
	}
	return NewManifest(entries)
}
