package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"

	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
)

// buildScript makes one build: it empties the build's directory, runs the user's command ($4, run as
// sh -c) in the release directory with SKIFF_BUILD_DIR set to that directory, and writes the marker only
// once the command succeeded. The command runs in a session of its own while a watchdog reads the SSH
// channel's stdin, which skiff keeps open until the build ends: when skiff dies or gives up, the channel
// closes, the watchdog sees end of file and kills the whole build, so no orphan can finish a build later
// and mark it complete.
const buildScript = `set -e
dir="$1"; ok="$2"; rel="$3"; run="$4"; app="$5"; id="$6"; base="$7"
rm -f "$ok"
if [ -e "$dir" ]; then chmod -R u+rwx "$dir" 2>/dev/null || true; rm -rf "$dir"; fi
mkdir -p "$dir"
cd "$rel"
exec 3<&0
SKIFF_BUILD_DIR="$dir" SKIFF_APP="$app" SKIFF_RELEASE="$id" SKIFF_PATH="$base" setsid sh -c "$run" </dev/null 3<&- &
pid=$!
{ cat <&3; kill -TERM "-$pid"; sleep 2; kill -KILL "-$pid"; } >/dev/null 2>&1 &
watch=$!
exec 3<&-
st=0
wait "$pid" || st=$?
kill "$watch" 2>/dev/null || true
if [ "$st" -ne 0 ]; then echo "build command exited with status $st" >&2; exit "$st"; fi
: > "$ok"`

// linkBuildScript links a complete build into a release; with $5 = check it only prints "complete" when the
// build is complete and links nothing otherwise.
const linkBuildScript = `dir="$1"; ok="$2"; rel="$3"; link="$4"
if [ ! -f "$ok" ] || [ ! -d "$dir" ]; then
  [ "$5" = check ] && exit 0
  echo "build $dir is not complete" >&2; exit 1
fi
set -e
mkdir -p "$rel/$(dirname "$link")"
ln -s "$dir" "$rel/$link"
[ "$5" = check ] && echo complete
exit 0`

// BuildOutcome is what a deploy did about one build on one host.
type BuildOutcome struct {
	Name  string `json:"name"`
	Key   string `json:"key"`
	Built bool   `json:"built"` // false: a complete build of that key was there and was linked
}

// makeBuilds links every build of release id, running those whose key the host has not built yet. With
// record, it then writes the release's build record (see Layout.ReleaseBuilds), even an empty one: its
// presence says that commands of the app's ran in the release, so the next release is not hard-linked to it.
func (r *hostRun) makeBuilds(ctx context.Context, id string, builds []PlannedBuild, record bool) error {
	for _, b := range builds {
		// Even the check for a complete build links it: a dry run shows the build instead.
		plan := fmt.Sprintf("link build %s into %s, running it first unless the host has it", b.Ref(), b.Path)
		if err := r.change("build["+b.Name+"]", plan, func() error { return r.makeBuild(ctx, id, b) }); err != nil {
			return err
		}
	}
	if !record {
		return nil
	}
	return r.run(ctx, remote.Script(`set -e; printf '%s' "$2" > "$1.tmp"; mv -f "$1.tmp" "$1"`,
		r.l.ReleaseBuilds(id), encodeReleaseBuilds(builds)))
}

// makeBuild links one build, running it first when the host has no complete build of its key.
func (r *hostRun) makeBuild(ctx context.Context, id string, b PlannedBuild) error {
	dir, ok, rel := r.l.BuildDir(b.Ref()), r.l.BuildMarker(b.Ref()), r.l.Release(id)
	res, err := r.c.Run(ctx, remote.Script(linkBuildScript, dir, ok, rel, b.Path, "check"))
	if err != nil {
		return err
	}
	if string(res.Stdout) == "complete\n" {
		r.logf("build %s: reusing %s, built before", b.Name, b.Ref())
		r.out.Builds = append(r.out.Builds, BuildOutcome{Name: b.Name, Key: b.Key})
		return nil
	}
	r.logf("build %s: building %s", b.Name, b.Ref())
	done := make(chan struct{})
	defer close(done)
	cmd := remote.Script(buildScript, dir, ok, rel, b.Run, r.app.Name, id, r.l.Path)
	cmd.Stdin = untilDone{done}
	if err := r.run(ctx, cmd); err != nil {
		return err
	}
	r.out.Builds = append(r.out.Builds, BuildOutcome{Name: b.Name, Key: b.Key, Built: true})
	return r.run(ctx, remote.Script(linkBuildScript, dir, ok, rel, b.Path, "link"))
}

// untilDone is a stdin that sends nothing and ends when done closes: it keeps a build's channel open for the
// build's watchdog (see buildScript) exactly as long as skiff waits for the build.
type untilDone struct{ done <-chan struct{} }

func (u untilDone) Read([]byte) (int, error) {
	<-u.done
	return 0, io.EOF
}

// ReadReleaseBuilds returns the builds release id links, from the record next to its manifest; a release
// without a record (deployed without builds) links none. The record is bounded and validated.
func ReadReleaseBuilds(ctx context.Context, c release.Conn, l release.Layout, id string) ([]ReleaseBuild, error) {
	if !release.ValidReleaseID(id) {
		return nil, fmt.Errorf("read builds: invalid release id %q", id)
	}
	client, err := c.SFTP(ctx)
	if err != nil {
		return nil, fmt.Errorf("read builds of %s: %w", id, err)
	}
	f, err := client.Open(l.ReleaseBuilds(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read builds of %s: %w", id, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(remote.ContextReader(ctx, f), maxReleaseBuilds+1))
	if err != nil {
		return nil, fmt.Errorf("read builds of %s: %w", id, err)
	}
	builds, err := parseReleaseBuilds(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l.ReleaseBuilds(id), err)
	}
	return builds, nil
}

// maxBuildEntries bounds how many entries of <path>/builds skiff looks at.
const maxBuildEntries = 10000

// UnusedBuilds returns the builds on the target (complete or not) that none of the kept releases links: what
// retention and prune remove. Names under <path>/builds that skiff did not make are left alone.
func UnusedBuilds(ctx context.Context, c release.Conn, l release.Layout, kept []string) ([]string, error) {
	client, err := c.SFTP(ctx)
	if err != nil {
		return nil, fmt.Errorf("list builds: %w", err)
	}
	list, err := client.ReadDirContext(ctx, l.Builds())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", l.Builds(), err)
	}
	if len(list) > maxBuildEntries {
		return nil, fmt.Errorf("list %s: %d entries, more than the %d skiff looks at", l.Builds(), len(list), maxBuildEntries)
	}
	present := map[string]bool{}
	for _, fi := range list {
		if ref := strings.TrimSuffix(fi.Name(), release.BuildMarkerSuffix); ValidBuildRef(ref) {
			present[ref] = true
		}
	}
	if len(present) == 0 {
		return nil, nil
	}
	for _, id := range kept {
		builds, err := ReadReleaseBuilds(ctx, c, l, id)
		if err != nil {
			return nil, err
		}
		for _, b := range builds {
			delete(present, b.Ref())
		}
	}
	unused := make([]string, 0, len(present))
	for ref := range present {
		unused = append(unused, ref)
	}
	sort.Strings(unused)
	return unused, nil
}

// RemoveBuildsCommand deletes builds, marker first so that a half-deleted build is never taken as complete;
// refs must pass ValidBuildRef.
func RemoveBuildsCommand(l release.Layout, refs []string) remote.Command {
	return remote.Script(`set -e; cd "$1"; shift
for b in "$@"; do
  rm -f "$b`+release.BuildMarkerSuffix+`"
  if [ -e "$b" ]; then chmod -R u+rwx "$b" 2>/dev/null || true; rm -rf "$b"; fi
done`, append([]string{l.Builds()}, refs...)...)
}

// keptAfter returns ids without remove.
func keptAfter(ids, remove []string) []string {
	gone := setOf(remove)
	var kept []string
	for _, id := range ids {
		if !gone[id] {
			kept = append(kept, id)
		}
	}
	return kept
}
