package release

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/skiffdeploy/skiff/remote"
)

// ReadCurrent returns the id of the live release, or "" when the app has never been deployed. The link is
// read back from the target, so it is validated before it is used anywhere. A current that exists and is not
// a symlink (a directory left by another tool) is an error: skiff never switches over it.
func ReadCurrent(ctx context.Context, c runner, l Layout) (string, error) {
	cmd := remote.Script(readCurrentScript, l.Current())
	cmd.ReadOnly = true
	res, err := c.Run(ctx, cmd)
	if err != nil {
		return "", fmt.Errorf("read current: %w", err)
	}
	id, err := ParseCurrent(l, res.Stdout)
	if err != nil {
		return "", fmt.Errorf("read current: %w", err)
	}
	return id, nil
}

// readCurrentScript prints where the symlink $1 points, notALink when it is something else, and nothing when
// it does not exist.
const readCurrentScript = `if [ -L "$1" ]; then readlink "$1"; elif [ -e "$1" ]; then echo ` + notALink + `; fi; exit 0`

// ParseCurrent validates what readCurrentScript printed and returns the release id current names.
func ParseCurrent(l Layout, out []byte) (string, error) {
	if len(out) > maxCurrentLink {
		return "", fmt.Errorf("%s: the target answered %d bytes for one link", l.Current(), len(out))
	}
	target := strings.TrimSpace(string(out))
	switch target {
	case "":
		return "", nil
	case notALink:
		return "", fmt.Errorf("%s is not a symlink (a directory or file left by another tool?); skiff will not replace it: move it away", l.Current())
	}
	id := path.Base(target)
	if !ValidReleaseID(id) || (target != l.ReleaseLink(id) && target != l.Release(id)) {
		return "", fmt.Errorf("%s points to %q, which is not a skiff release", l.Current(), target)
	}
	return id, nil
}

// notALink is what ReadCurrent's script prints for a current that is not a symlink; no link target is a
// single word without a slash that is also a release id, so it cannot be mistaken for one.
const notALink = "skiff:not-a-symlink"

// maxCurrentLink bounds what ReadCurrent accepts back for the link's target.
const maxCurrentLink = 4096

// listScript prints the names of the regular files or directories ($2 = -f or -d) in directory $1 that end
// in $3, without that suffix; a missing directory lists nothing.
const listScript = `[ -d "$1" ] || exit 0
cd "$1" || exit 1
for e in *"$3"; do [ "$2" "$e" ] && printf '%s\n' "${e%"$3"}"; done
exit 0`

// ListIDs lists what listScript finds in dir, keeping only valid release ids: names read back from a target
// reach paths and commands only after that check.
func ListIDs(ctx context.Context, c runner, dir, test, suffix string) (map[string]bool, error) {
	cmd := remote.Script(listScript, dir, test, suffix)
	cmd.ReadOnly = true
	res, err := c.Run(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	ids := map[string]bool{}
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		if ValidReleaseID(line) {
			ids[line] = true
		}
	}
	return ids, nil
}

// ListReleases returns the release directories present on the target, oldest first, complete or not.
func ListReleases(ctx context.Context, c runner, l Layout) ([]string, error) {
	set, err := ListIDs(ctx, c, l.Releases(), "-d", "")
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

// CompleteReleases returns the releases whose manifest is stored. Ship writes the manifest last, so a release
// directory without one is the remains of a killed deploy: it is never rolled back to, and retention removes it.
func CompleteReleases(ctx context.Context, c runner, l Layout) (map[string]bool, error) {
	return ListIDs(ctx, c, l.Manifests(), "-f", "")
}

// OnlyComplete keeps the ids that are complete, in order.
func OnlyComplete(ids []string, complete map[string]bool) []string {
	var out []string
	for _, id := range ids {
		if complete[id] {
			out = append(out, id)
		}
	}
	return out
}

// sharedScript links every shared entry into the release. An entry missing from shared/ is seeded from the
// release when the release has it (so the first .env shipped becomes the persistent one), else created as an
// empty directory. Entries are inventory values, validated there, and reach the script only as parameters.
const sharedScript = `set -e
shared="$1"; rel="$2"; shift 2
for e in "$@"; do
  if [ ! -e "$shared/$e" ] && [ ! -L "$shared/$e" ]; then
    mkdir -p "$(dirname "$shared/$e")"
    if [ -e "$rel/$e" ]; then cp -a "$rel/$e" "$shared/$e"; else mkdir -p "$shared/$e"; fi
  fi
  mkdir -p "$(dirname "$rel/$e")"
  rm -rf "$rel/$e"
  ln -s "$shared/$e" "$rel/$e"
done`

// SharedCommand links the shared entries into release id.
func SharedCommand(l Layout, id string, shared []string) remote.Command {
	return remote.Script(sharedScript, append([]string{l.Shared(), l.Release(id)}, shared...)...)
}

// RemoveReleasesCommand deletes releases, their manifests and their build records; ids must be valid release
// ids.
func RemoveReleasesCommand(l Layout, ids []string) remote.Command {
	return remote.Script(`set -e; rel="$1"; man="$2"; shift 2; for id in "$@"; do rm -rf "$rel/$id" "$man/$id" "$man/$id`+ReleaseBuildsSuffix+`"; done`,
		append([]string{l.Releases(), l.Manifests()}, ids...)...)
}

// trashPrefix starts the names of the directories under releases/ that retired releases are moved into. It
// is not a release id, so nothing that lists releases sees them.
const trashPrefix = ".skiff-trash-"

// retireScript takes releases out of the way at once and deletes them in the background: each release is
// renamed into a trash directory of this run (one rename, whatever its size, in the same directory, so on the
// same filesystem) and its manifest removed; then a detached process empties every trash directory, with
// those earlier runs left behind, making read-only directories writable when a first try fails on them. Its output goes nowhere, so
// the SSH session does not wait for it. $1 is releases/, $2 the manifests, $3 the run's token.
const retireScript = `set -e
rel="$1"; man="$2"; trash="$1/` + trashPrefix + `$3"; shift 3
mkdir "$trash"
for id in "$@"; do mv "$rel/$id" "$trash/$id"; rm -rf "$man/$id" "$man/$id` + ReleaseBuildsSuffix + `"; done
` + emptyTrashScript

// emptyTrashScript deletes, in a detached process, every trash directory under releases/ ($rel).
const emptyTrashScript = `{ rm -rf "$rel"/` + trashPrefix + `* || { find "$rel"/` + trashPrefix + `* -type d ! -perm -700 -exec chmod u+rwx {} + ; rm -rf "$rel"/` + trashPrefix + `*; }; } </dev/null >/dev/null 2>&1 &`

// RetireReleasesCommand removes releases and their manifests from the layout at once and frees their space in
// the background (see retireScript), so that a deploy does not wait for tens of thousands of unlinks; token
// (hex) names this run's trash. ids must be valid release ids.
func RetireReleasesCommand(l Layout, ids []string, token string) remote.Command {
	return remote.Script(retireScript, append([]string{l.Releases(), l.Manifests(), token}, ids...)...)
}

// Retain chooses the releases to delete: it keeps the current and the previous release whatever happens, and
// the newest keep releases that did not fail; failed releases never count toward the kept ones.
func Retain(ids []string, current, previous string, failed map[string]bool, keep int) (remove []string) {
	kept := 0
	for i := len(ids) - 1; i >= 0; i-- {
		id := ids[i]
		switch {
		case id == current || id == previous:
			if !failed[id] {
				kept++
			}
		case failed[id]:
			remove = append(remove, id)
		case kept < keep:
			kept++
		default:
			remove = append(remove, id)
		}
	}
	sort.Strings(remove)
	return remove
}
