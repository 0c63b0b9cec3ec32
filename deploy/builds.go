package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/ship"
)

const (
	// buildKeyLen is how many hex digits of the sha256 a build key keeps (80 bits).
	buildKeyLen = 20
)

// buildRefPattern is a build directory's name, "<name>-<key>": names read back from a target are checked
// against it before they reach a path or a command.
var buildRefPattern = regexp.MustCompile(`^[a-z0-9-]{1,64}-[0-9a-f]{20}$`)

// ValidBuildRef reports whether s is a build directory's name as skiff makes them.
func ValidBuildRef(s string) bool { return buildRefPattern.MatchString(s) }

// PlannedBuild is one build of the release being deployed, keyed by its run and its inputs' content.
type PlannedBuild struct {
	inventory.Build
	Key string
}

// Ref is the name of the build's directory under <path>/builds.
func (b PlannedBuild) Ref() string { return b.Name + "-" + b.Key }

// PlanBuilds checks the app's builds against the scanned tree m of localRoot and computes their keys: every
// input must be a shipped regular file, and a build's path must be neither shipped nor inside a shipped file
// or symlink. It runs before anything is sent, so a bad build changes nothing on a target.
func PlanBuilds(app *inventory.App, m *ship.Manifest, localRoot string) ([]PlannedBuild, error) {
	out := make([]PlannedBuild, 0, len(app.Builds))
	for _, b := range app.Builds {
		if err := buildPathFree(b, m); err != nil {
			return nil, fmt.Errorf("build %q: %w", b.Name, err)
		}
		h := sha256.New()
		fmt.Fprintf(h, "skiff-build-v1\x00%s\x00", b.Run)
		for _, in := range b.Inputs {
			e, ok := m.Lookup(in)
			if !ok || e.Type != ship.TypeFile {
				return nil, fmt.Errorf("build %q: input %q is not a file of the source tree (missing, excluded or not a regular file)", b.Name, in)
			}
			sum, err := inputSum(localRoot, e)
			if err != nil {
				return nil, fmt.Errorf("build %q: input %q: %w", b.Name, in, err)
			}
			fmt.Fprintf(h, "%s\x00%s\x00", in, sum)
		}
		out = append(out, PlannedBuild{Build: b, Key: hex.EncodeToString(h.Sum(nil))[:buildKeyLen]})
	}
	return out, nil
}

// buildPathFree reports a build path that the tree ships, or that lies under a shipped file or symlink.
func buildPathFree(b inventory.Build, m *ship.Manifest) error {
	for d := b.Path; d != "."; d = path.Dir(d) {
		e, ok := m.Lookup(d)
		switch {
		case ok && d == b.Path:
			return fmt.Errorf("path %q is also in the source tree; exclude it (exclude = [%q]) or build elsewhere", b.Path, b.Path)
		case ok && e.Type != ship.TypeDir:
			return fmt.Errorf("path %q lies under %q, which the source tree ships as a %s", b.Path, d, e.Type)
		}
	}
	return nil
}

// inputSum is the sha256 of an input: the scan's, or, for a file whose hash a ScanDeferred manifest left for
// later, hashed here (inputs are small: lock files).
func inputSum(localRoot string, e ship.Entry) (string, error) {
	if e.SHA256 != "" {
		return e.SHA256, nil
	}
	f, err := os.Open(filepath.Join(localRoot, filepath.FromSlash(e.Path)))
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if n, err := io.Copy(h, f); err != nil {
		return "", err
	} else if n != e.Size {
		return "", ship.ChangedSinceScan(e.Path)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ReleaseBuild is a build a release links, as recorded next to its manifest.
type ReleaseBuild struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// Ref is the name of the build's directory under <path>/builds.
func (b ReleaseBuild) Ref() string { return b.Name + "-" + b.Key }

// encodeReleaseBuilds renders a release's build record: one "name key" line per build.
func encodeReleaseBuilds(builds []PlannedBuild) string {
	var b strings.Builder
	for _, bd := range builds {
		b.WriteString(bd.Name + " " + bd.Key + "\n")
	}
	return b.String()
}

// maxReleaseBuilds bounds a build record read back from a target.
const maxReleaseBuilds = 64 << 10

// parseReleaseBuilds decodes a build record read back from a target; every line must be "name key" with a
// valid name and key.
func parseReleaseBuilds(data []byte) ([]ReleaseBuild, error) {
	if len(data) > maxReleaseBuilds {
		return nil, fmt.Errorf("build record is larger than %d bytes", maxReleaseBuilds)
	}
	var out []ReleaseBuild
	for n, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line == "" && n == 0 {
			continue
		}
		name, key, _ := strings.Cut(line, " ")
		b := ReleaseBuild{Name: name, Key: key}
		if !ValidBuildRef(b.Ref()) {
			return nil, fmt.Errorf("build record line %d: %q is not \"name key\"", n+1, line)
		}
		out = append(out, b)
	}
	return out, nil
}
