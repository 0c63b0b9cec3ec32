package deploy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/ship"
)

// cloneResult is what cloneBase found: the base's manifest as far as the new release took it from the base
// (nil when there is no base, or it has none), an error that fails the deploy, or a clone that failed on the
// target (the deploy then sends every file).
type cloneResult struct {
	base          *ship.Manifest
	exact         bool // the release holds exactly base's entries (ship.CloneSFTP)
	err, cloneErr error
}

// cloneBase reads the manifest of the live release prev and makes release id from it. Without copyFiles,
// the release is made of the manifest's entries over SFTP, its files hard links to prev's (ship.CloneSFTP),
// or, for a large or locked-down base, starts as hard links to all of prev and is cut down to the manifest's
// names (CloneReleaseCommand); either way unless commands of the app's ran in prev. With copyFiles, or
// when they did, it gets copies of the manifest's files (CopyReleaseCommand), hashed as they are made: a file
// whose copy is not what the manifest says (a hook or a hand edit changed it in prev) is deleted from the new
// release and left out of the base, so that Ship sends it again.
func (r *hostRun) cloneBase(ctx context.Context, prev, id string, copyFiles bool) cloneResult {
	if prev == "" {
		return cloneResult{}
	}
	base, err := ship.ReadManifest(ctx, r.c, r.l, prev)
	switch {
	case errors.Is(err, ship.ErrNoManifest):
		return cloneResult{} // an older tool's release: every file is sent, into an empty release
	case err != nil:
		return cloneResult{err: err}
	case copyFiles:
		return r.copyBase(ctx, prev, id, base)
	case !isDry(r.c) && ship.CloneBySFTP(base): // a dry run shows the clone script instead
		return r.cloneSFTP(ctx, prev, id, base)
	}
	names, send := io.Pipe()
	go func() { send.CloseWithError(writeCloneNames(send, base)) }()
	cmd := ship.CloneReleaseCommand(r.l, prev, id, release.NewToken())
	cmd.Stdin = names
	res, err := r.c.Run(ctx, cmd)      // its stderr comes back in err
	names.CloseWithError(errCloneDone) // a clone that stopped early takes no list
	switch {
	case err != nil:
		return r.cloneFailed(ctx, base, prev, err)
	case string(res.Stdout) == ship.RanInBase+"\n":
		return r.copyBase(ctx, prev, id, base)
	}
	return cloneResult{base: base}
}

// cloneSFTP clones prev, whose manifest is base, into release id over the SFTP session (ship.CloneSFTP).
func (r *hostRun) cloneSFTP(ctx context.Context, prev, id string, base *ship.Manifest) cloneResult {
	err := ship.CloneSFTP(ctx, r.c, r.l, prev, id, base, 0)
	switch {
	case errors.Is(err, ship.ErrRanInBase):
		return r.copyBase(ctx, prev, id, base)
	case err != nil:
		return r.cloneFailed(ctx, base, prev, err)
	}
	return cloneResult{base: base, exact: true}
}

// errCloneDone ends the sending of a name list to a clone command that has finished.
var errCloneDone = errors.New("clone command finished")

// writeCloneNames writes the names CloneReleaseCommand keeps: ".", then "./" and every path of m,
// NUL-terminated.
func writeCloneNames(w io.Writer, m *ship.Manifest) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString(".\x00")
	for _, e := range m.Entries {
		bw.WriteString("./")
		bw.WriteString(e.Path)
		bw.WriteByte(0)
	}
	return bw.Flush()
}

// copyBase makes release id from copies of base's files (CopyReleaseCommand) and leaves out of base the
// files whose copy is not what the manifest says.
func (r *hostRun) copyBase(ctx context.Context, prev, id string, base *ship.Manifest) cloneResult {
	cmd := ship.CopyReleaseCommand(r.l, prev, base, id)
	sums := newBoundedLines(base.FileCount() + 1)
	cmd.Stdout = sums.add
	if _, err := r.c.Run(ctx, cmd); err != nil {
		return r.cloneFailed(ctx, base, prev, err)
	}
	var changed []string
	err := r.change("", "", func() (err error) { // a dry run made no copies to compare
		changed, err = sums.changedFiles(base)
		return err
	})
	if err != nil {
		return r.cloneFailed(ctx, base, prev, err)
	}
	if len(changed) == 0 {
		return cloneResult{base: base}
	}
	r.logf("%d file(s) of %s are no longer what its manifest says (changed on the target), sent again: %s", len(changed), prev, firstFew(changed, 5))
	if err := r.run(ctx, ship.RemoveFilesCommand(r.l.Release(id), changed)); err != nil {
		return cloneResult{err: fmt.Errorf("clone %s: %w", prev, err)}
	}
	kept, err := base.Without(changed)
	return cloneResult{base: kept, err: err}
}

// cloneFailed is the result of a clone that failed: an error when the run is over, else a clone to give up
// (the deploy then sends every file).
func (r *hostRun) cloneFailed(ctx context.Context, base *ship.Manifest, prev string, err error) cloneResult {
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
func (b *boundedLines) changedFiles(m *ship.Manifest) ([]string, error) {
	if b.over {
		return nil, fmt.Errorf("the copy holds more files than the manifest lists")
	}
	var out strings.Builder
	for _, l := range b.lines {
		out.WriteString(l)
		out.WriteByte('\n')
	}
	sums, err := ship.ParseSHA256Sums([]byte(out.String()))
	if err != nil {
		return nil, err
	}
	var changed []string
	for _, e := range m.Entries {
		if e.Type == ship.TypeFile && sums[e.Path] != e.SHA256 {
			changed = append(changed, e.Path)
		}
	}
	return changed, nil
}

func firstFew(list []string, n int) string {
	if len(list) <= n {
		return strings.Join(list, ", ")
	}
	return strings.Join(list[:n], ", ") + fmt.Sprintf(" and %d more", len(list)-n)
}
