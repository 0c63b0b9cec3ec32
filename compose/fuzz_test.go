package compose

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseDockerOutput feeds what a target's docker could print to every parser of docker output: none may
// panic, and what they accept must be valid.
func FuzzParseDockerOutput(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*"))
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"id":"sha256:` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `","repo_digests":["r/a@sha256:x"]}`))
	f.Fuzz(func(t *testing.T, out []byte) {
		if d := ParsePullDigest(out); d != "" && !ValidDigest(d) {
			t.Fatalf("pull digest %q is not a digest", d)
		}
		if img, err := ParseImage(out); err == nil && !ValidDigest(img.ID) {
			t.Fatalf("image id %q accepted", img.ID)
		}
		_, _ = ParseContainers(out)
		if ids, err := ParseIDs(out); err == nil {
			for _, id := range ids {
				if !validContainerID(id) {
					t.Fatalf("container id %q accepted", id)
				}
			}
		}
		_, _ = ParseImageList(out)
		_, _ = ParseContainerImages(out)
	})
}
