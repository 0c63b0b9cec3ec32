package ship

import (
	"bytes"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
)

// FileCount is the number of regular files m lists.
func (m *Manifest) FileCount() int {
	n := 0
	for _, e := range m.Entries {
		if e.Type == TypeFile {
			n++
		}
	}
	return n
}

// Without returns m without the entries at paths.
func (m *Manifest) Without(paths []string) (*Manifest, error) {
	drop := make(map[string]bool, len(paths))
	for _, p := range paths {
		drop[p] = true
	}
	keep := make([]Entry, 0, len(m.Entries))
	for _, e := range m.Entries {
		if !drop[e.Path] {
			keep = append(keep, e)
		}
	}
	return newManifest(keep, nil)
}

// RanInBase is what cloneScript prints when it leaves the base to be copied.
const RanInBase = "skiff:commands-ran-in-base"

// cloneScript creates release $3 under releases/ ($1) as hard links to everything in release $2 (a plain copy
// where the filesystem refuses links), then cuts it down to the names it reads on stdin (see trimLines),
// so that the copy of a large tree starts while those names are still being read from the manifest. It reads
// the names only after the copy, and with none (stdin closed at once) it leaves the copy as it is. A base
// in which commands of the app's ran (it has a build record in $4, see Layout.ReleaseBuilds) may hold files
// they changed in place: the script then makes nothing and prints RanInBase, and the caller copies instead.
// $5 names the temporary lists.
const cloneScript = `set -e
rel="$1"; base="$2"; id="$3"; man="$4"; tok="$5"
if [ -e "$man/$base` + release.ReleaseBuildsSuffix + `" ]; then echo ` + RanInBase + `; exit 0; fi
umask 022
[ -d "$rel" ] && [ -d "$man" ] || mkdir -p "$rel" "$man"
cd "$rel"
mkdir "$id"
cp -al "$base/." "$id/" 2>/dev/null || { rm -rf "$id"; mkdir "$id"; cp -a "$base/." "$id/"; }
cd "$id"
want="$rel/.skiff-want-$tok"; found="$rel/.skiff-found-$tok"
trap 'rm -f "$want" "$found"' EXIT
find . -print0 | LC_ALL=C sort -z > "$found" &
lister=$!
cat > "$want"
wait "$lister"
[ -s "$want" ] || exit 0
` + trimLines

// trimLines delete, from the current directory, every name that is not in the NUL-separated list in $want
// (".", then "./path" of each manifest entry, in the manifest's bytewise order, which is the C locale's),
// by comparing it on the target with the sorted list of what is there ($found): what base's hooks made,
// files added by hand and shared links go, and nothing is read back. A name of the list that is missing, or
// a list out of order, fails the script. When the two lists are the same, as they are unless something
// changed the base, cmp says so and nothing more runs.
const trimLines = `if ! cmp -s "$found" "$want"; then
LC_ALL=C comm -z -23 --check-order "$found" "$want" | xargs -0 -r rm -rf --
missing=$(LC_ALL=C comm -z -13 --check-order "$found" "$want" | head -z -n 3 | tr '\0' ' ')
[ -z "$missing" ] || { echo "the base release lacks entries of its manifest: $missing" >&2; exit 1; }
fi
`

// CloneReleaseCommand is cloneScript for release id from base; the caller sets Stdin to the names to keep
// (writeCloneNames). token names the temporary lists.
func CloneReleaseCommand(l release.Layout, base, id, token string) remote.Command {
	return remote.Script(cloneScript, l.Releases(), base, id, l.Manifests(), token)
}

// CopyReleaseCommand creates release id from the entries of base's manifest, and nothing else: its
// directories are made, its symlinks made again and its files copied with `cp --reflink=auto`
// (copy-on-write where the filesystem has it), then given their manifest modes and hashed (sha256sum lines
// on stdout, see cloneBase): a hook of base's may have rewritten or chmod-ed its own copy.
func CopyReleaseCommand(l release.Layout, base string, baseManifest *Manifest, id string) remote.Command {
	var b shipScript
	b.line("set -e")
	b.line("umask 022")
	b.copyClone(l, base, baseManifest, id)
	b.line("%s", hashScript)
	return shellScript(b.Bytes())
}

// clone writes the lines that create release id from base (or empty): copies of its manifest's entries with
// copyFiles, else hard links cut down to its manifest.
func (s *shipScript) clone(l release.Layout, base string, old *Manifest, id, token string, copyFiles bool) {
	if base == "" || old == nil {
		s.linkClone(l, "", id)
		return
	}
	if copyFiles {
		s.copyClone(l, base, old, id)
		return
	}
	s.linkClone(l, base, id)
	s.trim(l, old, id, token)
	s.line("trap - EXIT")
	s.line(`rm -f -- "$want" "$found"`)
}

// linkClone writes the lines that create release id as hard links to all of base (or empty), and the
// directories it lives in (cloneScript does the same for a deploy).
func (s *shipScript) linkClone(l release.Layout, base, id string) {
	s.line("mkdir -p -- %s %s", remote.Quote(l.Releases()), remote.Quote(l.Manifests()))
	s.line("cd %s", remote.Quote(l.Releases()))
	s.line("mkdir -- %s", remote.Quote(id))
	if base != "" {
		src, dst, rel := remote.Quote(base+"/."), remote.Quote(id+"/"), remote.Quote(id)
		s.line("cp -al %s %s 2>/dev/null || { rm -rf -- %s; mkdir -- %s; cp -a %s %s; }", src, dst, rel, rel, src, dst)
	}
}

// trim writes the lines that cut release id, cloned by linkClone, down to old (see trimLines).
func (s *shipScript) trim(l release.Layout, old *Manifest, id, token string) {
	s.line("cd %s", remote.Quote(l.Release(id)))
	s.line("want=%s", remote.Quote(path.Join(l.Releases(), ".skiff-want-"+token)))
	s.line("found=%s", remote.Quote(path.Join(l.Releases(), ".skiff-found-"+token)))
	s.line(`trap 'rm -f -- "$want" "$found"' EXIT`)
	names := make([]string, 0, len(old.Entries))
	for _, e := range old.Entries {
		names = append(names, e.Path)
	}
	s.line(`find . -print0 | LC_ALL=C sort -z > "$found"`)
	s.line(`{ printf '.\0'`)
	s.batch(`printf '%s\0'`, names)
	s.line(`} > "$want"`)
	s.WriteString(trimLines)
}

// relink writes the lines that make old's symlinks again and give its directories their manifest modes, in
// a release cloned from it with hard links: a symlink or a directory mode of base may have been changed on
// the target.
func (s *shipScript) relink(old *Manifest) {
	var links []string
	for _, e := range old.Entries {
		if e.Type == TypeSymlink {
			links = append(links, e.Path)
		}
	}
	s.batch("rm -f --", links)
	s.symlinks(old)
	s.modes(old, TypeDir)
}

// copyClone writes the lines of CopyReleaseCommand but the hashing.
func (s *shipScript) copyClone(l release.Layout, base string, old *Manifest, id string) {
	s.linkClone(l, "", id)
	var dirs, files []string
	for _, e := range old.Entries {
		switch e.Type {
		case TypeDir:
			dirs = append(dirs, e.Path)
		case TypeFile:
			files = append(files, e.Path)
		}
	}
	s.line("cd %s", remote.Quote(id))
	s.batch("mkdir -p --", dirs)
	s.symlinks(old)
	s.line("cd %s", remote.Quote(l.Release(base)))
	s.batch(fmt.Sprintf("cp -P -p --reflink=auto --parents -t %s --", remote.Quote(l.Release(id))), files)
	s.line("cd %s", remote.Quote(l.Release(id)))
	s.modes(old, TypeFile)
	s.modes(old, TypeDir)
}

// symlinks writes the lines that make m's symlinks in the current directory.
func (s *shipScript) symlinks(m *Manifest) {
	for _, e := range m.Entries {
		if e.Type == TypeSymlink {
			s.line("ln -s -- %s %s", remote.Quote(e.Link), remote.Quote("./"+e.Path))
		}
	}
}

// modes writes the chmod lines that give m's entries of type t, under the current directory, their modes.
func (s *shipScript) modes(m *Manifest, t EntryType) {
	var list []Entry
	for _, e := range m.Entries {
		if e.Type == t {
			list = append(list, e)
		}
	}
	if t == TypeDir {
		sortDeepestFirst(list)
	} else {
		sort.SliceStable(list, func(i, j int) bool { return list[i].Mode < list[j].Mode })
	}
	s.chmods(list)
}

// sortDeepestFirst orders directories so that a parent's mode is set after its children's: a parent losing
// its owner's search permission then does not lock its children out.
func sortDeepestFirst(dirs []Entry) {
	sort.Slice(dirs, func(i, j int) bool {
		di, dj := strings.Count(dirs[i].Path, "/"), strings.Count(dirs[j].Path, "/")
		if di != dj {
			return di > dj
		}
		return dirs[i].Path < dirs[j].Path
	})
}

// chmods writes one chmod line per run of entries with the same mode, in order.
func (s *shipScript) chmods(list []Entry) {
	for i := 0; i < len(list); {
		j := i
		var paths []string
		for ; j < len(list) && list[j].Mode == list[i].Mode; j++ {
			paths = append(paths, list[j].Path)
		}
		s.batch(fmt.Sprintf("chmod %04o --", uint32(list[i].Mode)), paths)
		i = j
	}
}

// shellScript runs a generated script as `sh -s`, on stdin, so that no list in it is bounded by the
// command-line limit.
func shellScript(text []byte) remote.Command {
	return remote.Command{Argv: []string{"sh", "-s"}, Stdin: bytes.NewReader(text)}
}

// RemoveFilesCommand removes the files at paths (relative to dir) on the target, as many per rm as the
// command line takes.
func RemoveFilesCommand(dir string, paths []string) remote.Command {
	var s shipScript
	s.line("set -e")
	s.line("cd %s", remote.Quote(dir))
	s.batch("rm -f --", paths)
	return shellScript(s.Bytes())
}
