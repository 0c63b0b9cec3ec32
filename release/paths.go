package release

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"
)

// releaseIDLayout is the time part of a release id: a UTC timestamp that sorts the same as a string and as a time.
const releaseIDLayout = "20060102T150405Z"

var (
	releaseIDPattern = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z(-[0-9a-f]{4,40})?$`)
	shortSHAPattern  = regexp.MustCompile(`^[0-9a-f]{4,40}$`)
)

// NewReleaseID names a release after the moment it was shipped, in UTC to the second, followed by
// "-<gitShortSHA>" when the source is a git checkout (`20261122T101500Z-abc1234`). A gitShortSHA that is
// not 4 to 40 hex digits is left out rather than allowed into a path on the target.
func NewReleaseID(now time.Time, gitShortSHA string) string {
	id := now.UTC().Format(releaseIDLayout)
	if sha := strings.ToLower(gitShortSHA); shortSHAPattern.MatchString(sha) {
		id += "-" + sha
	}
	return id
}

// ValidReleaseID reports whether s is exactly what NewReleaseID produces, with a real calendar time. Every id
// read back from a target (directory listings, history, the current symlink) must pass it before it is used
// in a path or a command, so that a tampered target cannot steer skiff outside its tree.
func ValidReleaseID(s string) bool {
	if !releaseIDPattern.MatchString(s) {
		return false
	}
	_, err := time.Parse(releaseIDLayout, s[:len(releaseIDLayout)])
	return err == nil
}

// Layout knows where everything lives under an app's path on a target (see "On the target" in DESIGN.md).
// Targets are POSIX hosts, so it joins with package path, never filepath, whatever skiff runs on.
type Layout struct {
	// Path is the app's absolute directory on the target, for example "/srv/api".
	Path string
}

// Validate reports an app path that skiff must not build paths under: relative, unclean or the root itself.
func (l Layout) Validate() error {
	switch {
	case !path.IsAbs(l.Path):
		return fmt.Errorf("target path %q is not absolute", l.Path)
	case path.Clean(l.Path) != l.Path:
		return fmt.Errorf("target path %q is not clean (want %q)", l.Path, path.Clean(l.Path))
	case l.Path == "/":
		return fmt.Errorf("target path must not be the root directory")
	case strings.ContainsAny(l.Path, "\n\x00"):
		return fmt.Errorf("target path %q contains a newline or NUL byte", l.Path)
	}
	return nil
}

// Releases is the directory that holds one subdirectory per release.
func (l Layout) Releases() string { return path.Join(l.Path, "releases") }

// Release is the directory of release id. The caller must have checked id with ValidReleaseID.
func (l Layout) Release(id string) string { return path.Join(l.Path, "releases", id) }

// ReleaseLink is what the current symlink points to for release id: relative, so that the app's directory
// can be moved or bind-mounted elsewhere without breaking it.
func (l Layout) ReleaseLink(id string) string { return path.Join("releases", id) }

// Current is the symlink that names the live release.
func (l Layout) Current() string { return path.Join(l.Path, "current") }

// Shared holds the entries that persist across releases and are linked into each one.
func (l Layout) Shared() string { return path.Join(l.Path, "shared") }

// SkiffDir holds skiff's own state on the target: lock, history and manifests.
func (l Layout) SkiffDir() string { return path.Join(l.Path, ".skiff") }

// LockDir exists while a deploy or rollback runs; creating it is the atomic lock operation.
func (l Layout) LockDir() string { return path.Join(l.Path, ".skiff", "lock") }

// History is the append-only JSON-lines log of deploys and rollbacks.
func (l Layout) History() string { return path.Join(l.Path, ".skiff", "history.jsonl") }

// Manifests is the directory holding one manifest per shipped release.
func (l Layout) Manifests() string { return path.Join(l.Path, ".skiff", "manifests") }

// Manifest is the manifest file of release id. The caller must have checked id with ValidReleaseID.
func (l Layout) Manifest(id string) string { return path.Join(l.Path, ".skiff", "manifests", id) }

// NewToken returns a random name part (12 hex digits) for temporary and trash names on a target, so that
// runs that overlap never pick the same one.
func NewToken() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

const (
	// BuildMarkerSuffix names the file, next to a build's directory, that says the build is complete.
	BuildMarkerSuffix = ".complete"
	// ReleaseBuildsSuffix names the file, next to a release's manifest, that lists the builds it links.
	ReleaseBuildsSuffix = ".builds"
)

// Builds holds the app's dependency builds, one directory per build name and key (see BuildDir).
func (l Layout) Builds() string { return path.Join(l.Path, "builds") }

// BuildDir is the directory of one build; ref must have passed ValidBuildRef.
func (l Layout) BuildDir(ref string) string { return path.Join(l.Path, "builds", ref) }

// BuildMarker exists once the build ref is complete: it is written only after its run succeeded, so a build
// without it is the remains of a failed or killed run, never linked.
func (l Layout) BuildMarker(ref string) string {
	return path.Join(l.Path, "builds", ref+BuildMarkerSuffix)
}

// ReleaseBuilds lists the builds release id links, one "name key" line each, next to its manifest.
func (l Layout) ReleaseBuilds(id string) string {
	return path.Join(l.Path, ".skiff", "manifests", id+ReleaseBuildsSuffix)
}
