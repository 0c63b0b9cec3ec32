package ship

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"unicode/utf8"
)

// EntryType is the kind of a manifest entry. Anything else in a source tree (sockets, devices, fifos) is
// refused by Scan: it cannot be shipped.
type EntryType string

// The kinds of entries a release holds.
const (
	TypeFile    EntryType = "file"
	TypeDir     EntryType = "dir"
	TypeSymlink EntryType = "symlink"
)

// Entry describes one path of a release. Paths are relative to the release root, slash-separated and clean;
// names are kept byte for byte (spaces, quotes, leading dashes, invalid UTF-8), only newline and NUL are refused.
type Entry struct {
	Path   string
	Type   EntryType
	Mode   fs.FileMode // permission bits only (0 to 0777); 0777 for symlinks
	Size   int64       // bytes of a file; 0 for dirs and symlinks
	SHA256 string      // lowercase hex digest of a file's content
	Link   string      // target of a symlink, relative and staying inside the release
}

// Manifest lists every entry of a release, sorted by path, so that two releases can be compared without
// looking at the target. It is what `<path>/.skiff/manifests/<id>` stores.
type Manifest struct {
	Entries []Entry
	// stamps holds what stat said of each file when Scan hashed it, for files not modified within
	// racyWindow of the scan; Ship uses them to prove a file is unchanged since without hashing it a second
	// time. Never stored on a target.
	stamps map[string]fileStamp
	// deferred lists the files ScanDeferred left for Ship to hash; nil when every file has its sha256.
	deferred *deferredHashes
}

// fileStamp is a local file's size and modification time as Scan saw them.
type fileStamp struct{ size, mtimeNS int64 }

func stampOf(fi fs.FileInfo) fileStamp {
	return fileStamp{size: fi.Size(), mtimeNS: fi.ModTime().UnixNano()}
}

// NewManifest sorts a copy of entries and checks them the way DecodeManifest checks what it reads back from a
// target; callers that build manifests by hand get the same guarantees as Scan's.
func NewManifest(entries []Entry) (*Manifest, error) {
	sorted := append([]Entry(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	for _, e := range sorted {
		if err := checkManifestEntry(e); err != nil {
			return nil, fmt.Errorf("manifest entry %q: %w", e.Path, err)
		}
	}
	if i, err := checkManifestTree(sorted); err != nil {
		return nil, fmt.Errorf("manifest entry %q: %w", sorted[i].Path, err)
	}
	return &Manifest{Entries: sorted}, nil
}

// Lookup returns the entry at path p, if the manifest has one.
func (m *Manifest) Lookup(p string) (Entry, bool) {
	if m == nil {
		return Entry{}, false
	}
	i := sort.Search(len(m.Entries), func(i int) bool { return m.Entries[i].Path >= p })
	if i < len(m.Entries) && m.Entries[i].Path == p {
		return m.Entries[i], true
	}
	return Entry{}, false
}

// entryJSON is the stored form of an Entry. Names that are not valid UTF-8 cannot survive a JSON string, so
// they are stored base64-encoded in path64/link64 instead of path/link.
type entryJSON struct {
	Path   string    `json:"path,omitempty"`
	Path64 string    `json:"path64,omitempty"`
	Type   EntryType `json:"type"`
	Mode   string    `json:"mode"`
	Size   int64     `json:"size"`
	SHA256 string    `json:"sha256,omitempty"`
	Link   string    `json:"link,omitempty"`
	Link64 string    `json:"link64,omitempty"`
}

// Encode writes the manifest as one JSON object per line, in path order. Its writes are as large as the
// manifest, up to 1 MiB: over SFTP each one goes as concurrent requests.
func (m *Manifest) Encode(w io.Writer) error {
	bw := bufio.NewWriterSize(w, clampSize(encodedSize(m), 4<<10, maxManifestIO))
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for _, e := range m.Entries {
		j := entryJSON{Type: e.Type, Mode: fmt.Sprintf("%04o", uint32(e.Mode.Perm())), Size: e.Size, SHA256: e.SHA256}
		j.Path, j.Path64 = splitName(e.Path)
		j.Link, j.Link64 = splitName(e.Link)
		if err := enc.Encode(j); err != nil {
			return fmt.Errorf("encode manifest entry %q: %w", e.Path, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

func splitName(s string) (plain, b64 string) {
	if utf8.ValidString(s) {
		return s, ""
	}
	return "", base64.StdEncoding.EncodeToString([]byte(s))
}

// maxManifestLine bounds one line of a stored manifest: a path is at most a few KiB even fully escaped.
const maxManifestLine = 1 << 20

// maxManifestEntries bounds the entries of a stored manifest, so that a target cannot make skiff hold an
// endless one in memory; it is several times the largest trees deployed (node_modules included).
const maxManifestEntries = 1 << 20

// DecodeManifest reads a manifest written by Encode and validates every entry, since it comes back from a
// target that may have been tampered with: clean relative paths, known types, permission-only modes, 64-hex
// digests, non-negative sizes, sorted unique paths whose parents are directories, and symlinks that stay in the
// tree. The first bad line is reported with its number.
func DecodeManifest(r io.Reader) (*Manifest, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 8<<10), maxManifestLine) // grows for a longer line
	var entries []Entry
	for line := 1; sc.Scan(); line++ {
		if line > maxManifestEntries {
			return nil, fmt.Errorf("manifest has more than %d entries", maxManifestEntries)
		}
		e, err := decodeEntry(sc.Bytes())
		if err == nil {
			err = checkManifestEntry(e)
		}
		if err != nil {
			return nil, fmt.Errorf("manifest line %d: %w", line, err)
		}
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("manifest line %d: longer than %d bytes", len(entries)+1, maxManifestLine)
		}
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	if i, err := checkManifestTree(entries); err != nil {
		return nil, fmt.Errorf("manifest line %d: %w", i+1, err)
	}
	return &Manifest{Entries: entries}, nil
}

// isSHA256Hex reports whether s is a sha256 digest in lowercase hex, as Scan writes it. (A regexp would be
// a third of the cost of reading a large manifest.)
func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// checkManifestEntry validates one entry on its own: its path, and the fields its type requires or forbids.
func checkManifestEntry(e Entry) error {
	if err := checkManifestPath(e.Path); err != nil {
		return err
	}
	if e.Mode&^fs.ModePerm != 0 {
		return fmt.Errorf("mode %v has bits other than permissions", e.Mode)
	}
	switch e.Type {
	case TypeFile:
		if e.Size < 0 {
			return fmt.Errorf("size %d is negative", e.Size)
		}
		if !isSHA256Hex(e.SHA256) {
			return fmt.Errorf("sha256 %q is not 64 lowercase hex digits", e.SHA256)
		}
		if e.Link != "" {
			return errors.New("a file has no link target")
		}
	case TypeDir:
		if e.Size != 0 || e.SHA256 != "" || e.Link != "" {
			return errors.New("a dir has no size, sha256 or link target")
		}
	case TypeSymlink:
		if e.Size != 0 || e.SHA256 != "" {
			return errors.New("a symlink has no size or sha256")
		}
		if e.Link == "" {
			return errors.New("symlink has no target")
		}
		if strings.ContainsAny(e.Link, "\n\x00") {
			return fmt.Errorf("symlink target %q contains a newline or NUL byte", e.Link)
		}
		if path.IsAbs(e.Link) {
			return fmt.Errorf("symlink target %q is absolute", e.Link)
		}
	default:
		return fmt.Errorf("unknown type %q", e.Type)
	}
	return nil
}

// checkManifestPath accepts only what can be joined under a release directory without leaving it.
func checkManifestPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case strings.ContainsAny(p, "\n\x00"):
		return fmt.Errorf("path %q contains a newline or NUL byte", p)
	case path.IsAbs(p):
		return fmt.Errorf("path %q is absolute", p)
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return fmt.Errorf("path %q escapes the tree", p)
		}
		if len(c) > 255 {
			return fmt.Errorf("path %q has a name longer than 255 bytes", p)
		}
	}
	if p == "." || path.Clean(p) != p {
		return fmt.Errorf("path %q is not clean", p)
	}
	return nil
}

// checkManifestTree validates the entries together: sorted and unique, every parent a directory entry (so that
// nothing is ever written through a symlink), and every symlink resolving inside the tree. It returns the
// index of the offending entry.
func checkManifestTree(entries []Entry) (int, error) {
	dirs := make(map[string]bool)
	links := make(map[string]string)
	for i, e := range entries {
		if i > 0 && e.Path <= entries[i-1].Path {
			return i, fmt.Errorf("path %q is not after %q (entries must be sorted and unique)", e.Path, entries[i-1].Path)
		}
		if parent := path.Dir(e.Path); parent != "." && !dirs[parent] {
			return i, fmt.Errorf("parent of %q is not a dir entry", e.Path)
		}
		switch e.Type {
		case TypeDir:
			dirs[e.Path] = true
		case TypeSymlink:
			links[e.Path] = e.Link
		}
	}
	for i, e := range entries {
		if e.Type == TypeSymlink && linkEscapes(links, e.Path, e.Link) {
			return i, fmt.Errorf("symlink %q: target %q escapes the tree", e.Path, e.Link)
		}
	}
	return 0, nil
}

// maxLinkHops is how many symlinks one lookup may pass through, as on Linux; beyond it the link is broken
// (ELOOP), which is harmless.
const maxLinkHops = 40

// linkEscapes resolves target from the directory of link the way the kernel would, substituting the tree's own
// symlinks as it meets them, and reports whether the lookup ever climbs above the root. A purely lexical check
// is not enough: with `b -> .`, the target `b/..` is the root's parent.
func linkEscapes(links map[string]string, link, target string) bool {
	var cur []string
	if d := path.Dir(link); d != "." {
		cur = strings.Split(d, "/")
	}
	hops := 0
	_, escaped := resolveLink(links, cur, target, &hops)
	return escaped
}

func resolveLink(links map[string]string, cur []string, target string, hops *int) ([]string, bool) {
	if path.IsAbs(target) {
		return nil, true
	}
	cur = append([]string(nil), cur...)
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return nil, true
			}
			cur = cur[:len(cur)-1]
			continue
		}
		cur = append(cur, c)
		next, ok := links[strings.Join(cur, "/")]
		if !ok {
			continue
		}
		if *hops++; *hops > maxLinkHops {
			return cur, false
		}
		var escaped bool
		if cur, escaped = resolveLink(links, cur[:len(cur)-1], next, hops); escaped {
			return nil, true
		}
	}
	return cur, false
}

// Changes is what Diff finds between two manifests. Changed holds the new entries of paths whose type,
// mode, content or link target differ.
type Changes struct {
	Added, Changed, Removed []Entry
	Unchanged               int
}

// Diff compares the manifest of the release a deploy starts from (old, nil when there is none) with the one
// being shipped (new).
func Diff(old, new *Manifest) Changes {
	var ch Changes
	var a, b []Entry
	if old != nil {
		a = old.Entries
	}
	if new != nil {
		b = new.Entries
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i].Path < b[j].Path):
			ch.Removed = append(ch.Removed, a[i])
			i++
		case i == len(a) || b[j].Path < a[i].Path:
			ch.Added = append(ch.Added, b[j])
			j++
		default:
			if sameEntry(a[i], b[j]) {
				ch.Unchanged++
			} else {
				ch.Changed = append(ch.Changed, b[j])
			}
			i++
			j++
		}
	}
	return ch
}

// sameEntry reports whether x and y need no work to turn one into the other.
func sameEntry(x, y Entry) bool {
	return x.Type == y.Type && x.Mode == y.Mode && sameContent(x, y)
}

// sameContent compares what a path holds, ignoring its mode.
func sameContent(x, y Entry) bool {
	return x.Type == y.Type && x.Size == y.Size && x.SHA256 == y.SHA256 && x.Link == y.Link
}
