package ship

import (
	"context"
	"fmt"
	"io/fs"
	"os"
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
	return stampOf(d.infos[p])
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

// deferMinBytes is how much must be left to hash for Ship to hash it on the way: below it, hashing up front
// costs less than what deferring does, which is staging the manifest only once the files are sent.
const deferMinBytes = 8 << 20

// hashUpFront hashes, in parallel and before anything is planned, the deferred files of m (Ship's own copy)
// that base has with the same size, since only their hash tells whether they changed; and every deferred file
// when the others come to less than deferMinBytes. A file that is no longer what the scan saw is an error, as
// it is when it is sent. It returns stamps with theirs added, and whether files are still deferred, to be
// hashed while they are sent.
func (d *deferredHashes) hashUpFront(ctx context.Context, localRoot string, m, base *Manifest,
	stamps map[string]fileStamp) (map[string]fileStamp, bool, error) {
	var compare, rest []int
	var restBytes int64
	for i, e := range m.Entries {
		if !d.pending(e) {
			continue
		}
		if o, ok := base.Lookup(e.Path); ok && o.Type == TypeFile && o.Size == e.Size {
			compare = append(compare, i)
		} else {
			rest, restBytes = append(rest, i), restBytes+e.Size
		}
	}
	now := compare
	if restBytes < deferMinBytes {
		now, rest = append(now, rest...), nil
	}
	if len(now) == 0 {
		return stamps, len(rest) > 0, nil
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h := newScanHasher(ctx, cancel, runtime.GOMAXPROCS(0)*2, d.cache)
	out := make(map[string]fileStamp, len(stamps)+len(now))
	for p, st := range stamps {
		out[p] = st
	}
	for _, i := range now {
		e := &m.Entries[i]
		info := d.infos[e.Path]
		h.add(filepath.Join(localRoot, filepath.FromSlash(e.Path)), info, e)
		if st, ok := trustedStamp(info, d.started); ok {
			out[e.Path] = st
		}
	}
	if err := h.wait(); err != nil {
		return nil, false, fmt.Errorf("hash: %w", err)
	}
	for _, i := range now {
		e := m.Entries[i]
		fi, err := os.Lstat(filepath.Join(localRoot, filepath.FromSlash(e.Path)))
		if st := d.stamp(e.Path); err != nil || e.Size != st.size || stampOf(fi) != st {
			return nil, false, ChangedSinceScan(e.Path)
		}
	}
	return out, len(rest) > 0, nil
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
