package deploy

import (
	"context"
	"errors"
	"fmt"
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

// cloneBase reads the manifest of the live release prev and makes release id from it (CloneReleaseCommand).
// Copies are hashed on the target as they are made; a file whose copy is not what the manifest says (a hook
// or a hand edit changed it in prev) is deleted from the new release and left out of the base, so that Ship
// sends it again.
func (r *hostRun) cloneBase(ctx context.Context, prev, id string, copyFiles bool) cloneResult {
	if prev == "" {
		return cloneResult{}
	}
	base, err := ReadManifest(ctx, r.c, r.l, prev)
	if errors.Is(err, ErrNoManifest) {
		// The live release has no manifest (an older tool's): every file is sent, into an empty release.
		return cloneResult{}
	}
	if err != nil || r.opts.DryRun {
		return cloneResult{base: base, err: err}
	}
	cmd := CloneReleaseCommand(r.l, prev, base, id, copyFiles)
	sums := newBoundedLines(base.fileCount() + 1)
	if copyFiles {
		cmd.Stdout = sums.add
	}
	if _, err := r.c.Run(ctx, cmd); err != nil {
		if ctx.Err() != nil {
			return cloneResult{err: fmt.Errorf("clone %s: %w", prev, err)}
		}
		return cloneResult{base: base, cloneErr: err}
	}
	if !copyFiles {
		return cloneResult{base: base}
	}
	changed, err := sums.changedFiles(base)
	if err != nil {
		return cloneResult{base: base, cloneErr: err}
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
