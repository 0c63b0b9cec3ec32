package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/skiffdeploy/skiff/remote"
)

// cloneResult is what cloneBase found: the base's manifest as far as the new release took it from the base
// (nil when there is no base, or it has none), an error that fails the deploy, or a clone that failed on the
// target (the deploy then sends every file).
type cloneResult struct {
	base          *Manifest
	err, cloneErr error
}

// cloneBase reads the manifest of the live release prev and makes release id from it. Without copyFiles,
// the release starts as hard links to all of prev, made while the manifest is read, then is cut down to
// the manifest (TrimCloneCommand), unless commands of the app's ran in prev. With copyFiles, it gets copies of the manifest's files
// (CopyReleaseCommand), hashed as they are made: a file whose copy is not what the manifest says (a hook or
// a hand edit changed it in prev) is deleted from the new release and left out of the base, so that Ship
// sends it again.
func (r *hostRun) cloneBase(ctx context.Context, prev, id string, copyFiles bool) cloneResult {
	if prev == "" {
		return cloneResult{}
	}
	if r.opts.DryRun || copyFiles {
		base, err := ReadManifest(ctx, r.c, r.l, prev)
		if errors.Is(err, ErrNoManifest) {
			return cloneResult{} // an older tool's release: every file is sent, into an empty release
		}
		if err != nil || r.opts.DryRun {
			return cloneResult{base: base, err: err}
		}
		return r.copyBase(ctx, prev, id, base)
	}
	type linkResult struct {
		copyInstead bool
		err         error
	}
	linked := make(chan linkResult, 1)
	go func() {
		res, err := r.c.Run(ctx, CloneReleaseCommand(r.l, prev, id)) // its stderr comes back in err
		linked <- linkResult{err == nil && string(res.Stdout) == ranInBase+"\n", err}
	}()
	base, err := ReadManifest(ctx, r.c, r.l, prev)
	lr := <-linked
	lerr := lr.err
	switch {
	case errors.Is(err, ErrNoManifest):
		// An older tool's release: every file is sent, into an empty release.
		if err := r.run(ctx, RemoveReleasesCommand(r.l, []string{id})); err != nil {
			return cloneResult{err: err}
		}
		return cloneResult{}
	case err != nil:
		return cloneResult{err: err}
	case lerr != nil:
		return r.cloneFailed(ctx, base, prev, lerr)
	case lr.copyInstead:
		return r.copyBase(ctx, prev, id, base)
	}
	if _, err := r.c.Run(ctx, TrimCloneCommand(r.l, base, id, newShipToken())); err != nil {
		return r.cloneFailed(ctx, base, prev, err)
	}
	return cloneResult{base: base}
}

// copyBase makes release id from copies of base's files (CopyReleaseCommand) and leaves out of base the
// files whose copy is not what the manifest says.
func (r *hostRun) copyBase(ctx context.Context, prev, id string, base *Manifest) cloneResult {
	cmd := CopyReleaseCommand(r.l, prev, base, id)
	sums := newBoundedLines(base.fileCount() + 1)
	cmd.Stdout = sums.add
	if _, err := r.c.Run(ctx, cmd); err != nil {
		return r.cloneFailed(ctx, base, prev, err)
	}
	changed, err := sums.changedFiles(base)
	if err != nil {
		return r.cloneFailed(ctx, base, prev, err)
	}
	if len(changed) == 0 {
		return cloneResult{base: base}
	}
	r.logf("%d file(s) of %s are no longer what its manifest says (changed on the target), sent again: %s", len(changed), prev, firstFew(changed, 5))
	var rm shipScript
	rm.line("set -e")
	rm.line("cd %s", remote.Quote(r.l.Release(id)))
	rm.batch("rm -f --", changed)
	if err := r.run(ctx, shellScript(rm.Bytes())); err != nil {
		return cloneResult{err: fmt.Errorf("clone %s: %w", prev, err)}
	}
	kept, err := base.without(changed)
	return cloneResult{base: kept, err: err}
}

// cloneFailed is the result of a clone that failed: an error when the run is over, else a clone to give up
// (the deploy then sends every file).
func (r *hostRun) cloneFailed(ctx context.Context, base *Manifest, prev string, err error) cloneResult {
	if ctx.Err() != nil {
		return cloneResult{err: fmt.Errorf("clone %s: %w", prev, err)}
	}
	return cloneResult{base: base, cloneErr: err}
}

// boundedLines collects at most max lines of a command's output: what a target prints is bounded before it
// is kept.
type boundedLines struct {
	lines []string
	max   int
	over  bool
}

func newBoundedLines(max int) *boundedLines { return &boundedLines{max: max} }

func (b *boundedLines) add(line string) {
	if len(b.lines) >= b.max {
		b.over = true
		return
	}
	b.lines = append(b.lines, line)
}

// changedFiles compares the sha256sum lines collected with the files of m: the files whose copy is missing or
// differs, sorted.
func (b *boundedLines) changedFiles(m *Manifest) ([]string, error) {
	if b.over {
		return nil, fmt.Errorf("the copy holds more files than the manifest lists")
	}
	var out strings.Builder
	for _, l := range b.lines {
		out.WriteString(l)
		out.WriteByte('\n')
	}
	sums, err := parseSHA256Sums([]byte(out.String()))
	if err != nil {
		return nil, err
	}
	var changed []string
	for _, e := range m.Entries {
		if e.Type == TypeFile && sums[e.Path] != e.SHA256 {
			changed = append(changed, e.Path)
		}
	}
	return changed, nil
}

// fileCount is the number of regular files m lists.
func (m *Manifest) fileCount() int {
	n := 0
	for _, e := range m.Entries {
		if e.Type == TypeFile {
			n++
		}
	}
	return n
}

// without returns m without the entries at paths.
func (m *Manifest) without(paths []string) (*Manifest, error) {
	drop := setOf(paths)
	keep := make([]Entry, 0, len(m.Entries))
	for _, e := range m.Entries {
		if !drop[e.Path] {
			keep = append(keep, e)
		}
	}
	return newManifest(keep, nil)
}

func firstFew(list []string, n int) string {
	if len(list) <= n {
		return strings.Join(list, ", ")
	}
	return strings.Join(list[:n], ", ") + fmt.Sprintf(" and %d more", len(list)-n)
}

// CloneReleaseCommand creates release id as hard links to everything in base (a plain copy where the
// filesystem refuses links): the fast start of a release whose files are links, made while the base's
// manifest is read and the scan finishes. TrimCloneCommand then cuts it down to the manifest. An empty base
// makes an empty release directory.
//
// A base in which commands of the app's ran (it has a build record, see Layout.ReleaseBuilds) may hold files
// they changed in place: the command then makes nothing and prints ranInBase, and the caller copies instead.
func CloneReleaseCommand(l Layout, base, id string) remote.Command {
	var b shipScript
	b.line("set -e")
	b.line("umask 022")
	if base != "" {
		b.line("if [ -e %s ]; then echo %s; exit 0; fi", remote.Quote(l.ReleaseBuilds(base)), ranInBase)
	}
	b.linkClone(l, base, id)
	return shellScript(b.Bytes())
}

// ranInBase is what CloneReleaseCommand prints when it leaves the base to be copied.
const ranInBase = "skiff:commands-ran-in-base"

// TrimCloneCommand makes a release cloned from base (CloneReleaseCommand) hold exactly what base's manifest
// lists: everything else (what base's hooks made, files added by hand, the shared links) is deleted, on the
// target, by comparing NUL-separated sorted name lists, so nothing is read back; the manifest's symlinks are
// made again and its directories given their manifest modes. An entry of the manifest that base lacks fails
// the command, naming it. token names the temporary lists.
func TrimCloneCommand(l Layout, baseManifest *Manifest, id, token string) remote.Command {
	var b shipScript
	b.line("set -e")
	b.trim(l, baseManifest, id, token)
	return shellScript(b.Bytes())
}

// CopyReleaseCommand creates release id from the entries of base's manifest, and nothing else: its
// directories are made, its symlinks made again and its files copied with `cp --reflink=auto`
// (copy-on-write where the filesystem has it), then given their manifest modes and hashed (sha256sum lines
// on stdout, see cloneBase): a hook of base's may have rewritten or chmod-ed its own copy.
func CopyReleaseCommand(l Layout, base string, baseManifest *Manifest, id string) remote.Command {
	var b shipScript
	b.line("set -e")
	b.line("umask 022")
	b.copyClone(l, base, baseManifest, id)
	b.line("%s", hashScript)
	return shellScript(b.Bytes())
}

// clone writes the lines that create release id from base (or empty): copies of its manifest's entries with
// copyFiles, else hard links cut down to its manifest.
func (s *shipScript) clone(l Layout, base string, old *Manifest, id, token string, copyFiles bool) {
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
}

// linkClone writes the lines that create release id as hard links to all of base (or empty), and the
// directories it lives in.
func (s *shipScript) linkClone(l Layout, base, id string) {
	s.line("mkdir -p -- %s %s", remote.Quote(l.Releases()), remote.Quote(l.Manifests()))
	s.line("cd %s", remote.Quote(l.Releases()))
	s.line("mkdir -- %s", remote.Quote(id))
	if base != "" {
		src, dst, rel := remote.Quote(base+"/."), remote.Quote(id+"/"), remote.Quote(id)
		s.line("cp -al %s %s 2>/dev/null || { rm -rf -- %s; mkdir -- %s; cp -a %s %s; }", src, dst, rel, rel, src, dst)
	}
}

// trim writes the lines of TrimCloneCommand.
func (s *shipScript) trim(l Layout, old *Manifest, id, token string) {
	s.line("cd %s", remote.Quote(l.Release(id)))
	s.line("want=%s", remote.Quote(path.Join(l.Releases(), ".skiff-want-"+token)))
	s.line("found=%s", remote.Quote(path.Join(l.Releases(), ".skiff-found-"+token)))
	s.line(`trap 'rm -f -- "$want" "$found"' EXIT`)
	var names []string
	var links []string
	for _, e := range old.Entries {
		names = append(names, e.Path)
		if e.Type == TypeSymlink {
			links = append(links, e.Path)
		}
	}
	s.line("{")
	s.batch(`printf '%s\0'`, names)
	s.line(`} | LC_ALL=C sort -z > "$want"`)
	s.line(`find . -mindepth 1 -print0 | LC_ALL=C sort -z > "$found"`)
	s.line(`LC_ALL=C comm -z -23 "$found" "$want" | xargs -0 -r rm -rf --`)
	s.line(`missing=$(LC_ALL=C comm -z -13 "$found" "$want" | head -z -n 3 | tr '\0' ' ')`)
	s.line(`[ -z "$missing" ] || { echo "the base release lacks entries of its manifest: $missing" >&2; exit 1; }`)
	s.batch("rm -f --", links)
	s.symlinks(old)
	s.modes(old, TypeDir)
}

// copyClone writes the lines of CopyReleaseCommand but the hashing.
func (s *shipScript) copyClone(l Layout, base string, old *Manifest, id string) {
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
