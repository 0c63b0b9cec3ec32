package ship

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
)

// tarMarker is what the prepare script, and TarProbeCommand, print when the target's tar is GNU tar.
const tarMarker = "skiff-tar=gnu"

// tarProbe prints tarMarker when the target's tar is GNU tar.
const tarProbe = `case "$(tar --version 2>/dev/null)" in *"GNU tar"*) echo ` + tarMarker + ` ;; esac`

// TarProbeCommand asks whether the target's tar is GNU tar: Ship asks it when an extraction that took it to be
// one failed (see sendFresh), and a caller that knows the answer (IsGNUTar) can pass it as ShipOptions.GNUTar.
func TarProbeCommand() remote.Command {
	cmd := remote.Script(tarProbe)
	cmd.ReadOnly = true
	return cmd
}

// IsGNUTar reads TarProbeCommand's output.
func IsGNUTar(out []byte) bool { return bytes.Equal(out, []byte(tarMarker+"\n")) }

// defaultDirMode is what `mkdir` gives under the prepare script's umask 022; other modes are set at the end.
const defaultDirMode fs.FileMode = 0o755

// shipPlan is everything Ship does on the target, worked out from the two manifests before anything is sent.
type shipPlan struct {
	base      string    // release the new one starts from, or ""
	old       *Manifest // its manifest, nil without a base
	open      []string  // base dirs lacking u+rwx, made accessible before work inside them; parents first
	remove    []string  // paths of the base to delete, none under another
	modeCopy  []Entry   // files whose content is in the base and whose mode changes: copied, then chmod
	mkdirs    []string  // directories to create, parents first
	links     []Entry   // symlinks to create
	upload    []Entry   // files to send
	chmodDirs []Entry   // directories whose mode is set once everything is in place, deepest first
	reused    int64
	removed   int64
}

// newShipPlan compares the base's manifest (nil without a base) with the new release's.
func newShipPlan(old, m *Manifest, base string) *shipPlan {
	ch := Diff(old, m)
	p := &shipPlan{base: base, old: old, removed: int64(len(ch.Removed))}
	var removals []string
	chmods := make(map[string]Entry)
	add := func(e Entry) {
		switch e.Type {
		case TypeDir:
			p.mkdirs = append(p.mkdirs, e.Path)
			if e.Mode != defaultDirMode {
				chmods[e.Path] = e
			}
		case TypeSymlink:
			p.links = append(p.links, e)
		case TypeFile:
			p.upload = append(p.upload, e)
		}
	}
	for _, e := range ch.Added {
		add(e)
	}
	for _, e := range ch.Changed {
		o, _ := old.Lookup(e.Path)
		switch {
		case o.Type != e.Type:
			removals = append(removals, o.Path)
			add(e)
		case e.Type == TypeDir:
			// Directories are never hard-linked: the copy's mode can change without touching the base.
			chmods[e.Path] = e
		case e.Type == TypeSymlink:
			removals = append(removals, o.Path)
			p.links = append(p.links, e)
		case sameContent(o, e) && o.Mode&0o400 != 0:
			p.modeCopy = append(p.modeCopy, e)
		default:
			p.upload = append(p.upload, e)
		}
	}
	for _, e := range ch.Removed {
		removals = append(removals, e.Path)
	}
	p.remove = outermostPaths(removals)
	sort.Slice(p.upload, func(i, j int) bool { return p.upload[i].Path < p.upload[j].Path })
	sort.Slice(p.links, func(i, j int) bool { return p.links[i].Path < p.links[j].Path })
	sort.Strings(p.mkdirs)
	if old != nil {
		for _, o := range old.Entries {
			if o.Type != TypeDir || o.Mode&0o700 == 0o700 {
				continue
			}
			p.open = append(p.open, o.Path)
			if e, ok := m.Lookup(o.Path); ok && e.Type == TypeDir {
				chmods[e.Path] = e
			}
		}
	}
	for _, e := range chmods {
		p.chmodDirs = append(p.chmodDirs, e)
	}
	sortDeepestFirst(p.chmodDirs)
	var files int64
	for _, e := range m.Entries {
		if e.Type == TypeFile {
			files++
		}
	}
	p.reused = files - int64(len(p.upload))
	return p
}

// outermostPaths sorts paths and drops those inside another one of them: removing the outer one removes them.
func outermostPaths(paths []string) []string {
	sort.Strings(paths)
	kept := make(map[string]bool)
	var out []string
	for _, p := range paths {
		inside := false
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if kept[d] {
				inside = true
				break
			}
		}
		if !inside && !kept[p] {
			kept[p] = true
			out = append(out, p)
		}
	}
	return out
}

func (p *shipPlan) uploadTotals() (files, bytes int64) {
	for _, e := range p.upload {
		files++
		bytes += e.Size
	}
	return files, bytes
}

// report hands a dry run's operations to plan, in the order Ship would perform them.
func (p *shipPlan) report(l release.Layout, id string, plan func(op, path string)) {
	if plan == nil {
		return
	}
	if p.base != "" {
		plan(OpBase, l.Release(p.base))
	}
	for _, r := range p.remove {
		plan(OpRemove, r)
	}
	for _, e := range p.modeCopy {
		plan(OpChmod, e.Path)
	}
	for _, d := range p.mkdirs {
		plan(OpMkdir, d)
	}
	for _, e := range p.links {
		plan(OpSymlink, e.Path)
	}
	for _, e := range p.upload {
		plan(OpUpload, e.Path)
	}
	for _, e := range p.chmodDirs {
		plan(OpChmod, e.Path)
	}
	plan(OpManifest, l.Manifest(id))
}

// preparedExtract runs a prepare script ($1) and then, in the release directory it leaves the shell in, the
// extraction command that follows ($2…) with the tar stream on stdin: one remote session for both. A target
// whose tar is not GNU tar makes it exit noGNUTar before a byte is read, and the files go over SFTP. The
// script's own `set -e` ends the shell on its first failure, before preparedMarker is printed.
const preparedExtract = preparedEval + `case "$(tar --version 2>/dev/null)" in *"GNU tar"*) ;; *) exit 9 ;; esac
` + preparedExec

// preparedExtractKnown is preparedExtract for a target whose tar is known to be GNU tar (ShipOptions.GNUTar).
const preparedExtractKnown = preparedEval + preparedExec

const (
	preparedEval = `script=$1; shift
eval "$script"
`
	preparedExec = `echo ` + preparedMarker + `
exec "$@"`
)

// noGNUTar is preparedExtract's exit status on a target without GNU tar; preparedMarker what it prints once
// the release is prepared.
const (
	noGNUTar       = 9
	preparedMarker = "skiff:prepared"
)

// maxInlinePrepare bounds a prepare script passed as a command-line parameter (preparedExtract): the whole
// command line reaches the target's shell as one argument, which Linux limits to 128 KiB, and quoting grows it.
const maxInlinePrepare = 32 << 10

// prepareOpts says what prepareScript writes besides the plan's own changes.
type prepareOpts struct {
	detectTar bool // print tarMarker when the target's tar is GNU tar
	cloned    bool // the release directory already is made from the base (see cloneBase)
	copyFiles bool // the base's files are copied (copy mode), not hard-linked
	relinked  bool // the base's symlinks and directory modes are already made again (see relinkSFTP)
}

// prepareScript is the one shell script, sent on stdin to `sh -s` so that no list is bounded by the
// command-line limit, that creates the release directory, fills it from the base's manifest, and makes every
// change that needs no file content, and leaves the shell in the release directory. Every name goes through
// remote.Quote. work is false when the script does nothing but that: a release cloned from its base that only
// gets new file contents needs no remote shell before they are sent over SFTP.
func (p *shipPlan) prepareScript(l release.Layout, id, token string, o prepareOpts) (script []byte, work bool) {
	var b shipScript
	b.line("set -e")
	b.line("umask 022")
	if !o.cloned {
		b.clone(l, p.base, p.old, id, token, o.copyFiles)
	}
	b.line("cd %s", remote.Quote(l.Release(id)))
	prepared := b.Len()
	if p.base != "" && !o.copyFiles && !o.relinked {
		b.relink(p.old)
	}
	b.batch("chmod u+rwx --", p.open)
	b.batch("rm -rf --", p.remove)
	for _, e := range p.modeCopy {
		// Separate lines, not an && list: set -e ignores failures anywhere but at the end of such a list.
		dst := "./" + e.Path
		tmp := remote.Quote(shipTempName(dst, token))
		b.line("cp -p -- %s %s", remote.Quote(dst), tmp)
		b.line("chmod %04o -- %s", uint32(e.Mode), tmp)
		b.line("mv -f -- %s %s", tmp, remote.Quote(dst))
	}
	b.batch("mkdir -p --", p.mkdirs)
	for _, e := range p.links {
		b.line("ln -s -- %s %s", remote.Quote(e.Link), remote.Quote("./"+e.Path))
	}
	if o.detectTar {
		b.line("%s", tarProbe)
	}
	return b.Bytes(), !o.cloned || b.Len() > prepared
}

// finishScript sets the modes of directories once nothing more is created in them, deepest first so that a
// parent losing its owner's search permission does not lock its children out. It is nil when there is none.
func (p *shipPlan) finishScript(l release.Layout, id string) []byte {
	if len(p.chmodDirs) == 0 {
		return nil
	}
	var b shipScript
	b.line("set -e")
	b.line("cd %s", remote.Quote(l.Release(id)))
	b.chmods(p.chmodDirs)
	return b.Bytes()
}

// shipScript accumulates a shell script.
type shipScript struct{ bytes.Buffer }

func (s *shipScript) line(format string, args ...any) {
	fmt.Fprintf(&s.Buffer, format, args...)
	s.WriteByte('\n')
}

// maxScriptLine keeps each generated command well below the kernel's limit on arguments.
const maxScriptLine = 64 << 10

// batch writes cmd followed by the relative paths, "./"-prefixed and quoted, over as many lines as needed.
func (s *shipScript) batch(cmd string, paths []string) {
	var line strings.Builder
	for _, p := range paths {
		if line.Len() == 0 {
			line.WriteString(cmd)
		}
		line.WriteByte(' ')
		line.WriteString(remote.Quote("./" + p))
		if line.Len() > maxScriptLine {
			s.line("%s", line.String())
			line.Reset()
		}
	}
	if line.Len() > 0 {
		s.line("%s", line.String())
	}
}
