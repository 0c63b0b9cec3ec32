package compose

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The commands and parsers of this file serve image pruning: which images are dangling, how big the ones
// about to go are, and removing one image.

// DanglingImages lists the ids of the images Docker itself calls dangling: untagged, without a repository
// digest and without child images (so not a layer of another image), one per line (see ParseImageIDs).
func DanglingImages() []string {
	return []string{"docker", "image", "ls", "--filter", "dangling=true", "--quiet", "--no-trunc"}
}

// ParseImageIDs reads the image ids that DanglingImages prints, one per line.
func ParseImageIDs(out []byte) ([]string, error) {
	var ids []string
	for _, f := range strings.Fields(string(out)) {
		if !ValidDigest(f) {
			return nil, fmt.Errorf("invalid image id %q in docker image ls output", f)
		}
		ids = append(ids, f)
	}
	return ids, nil
}

// ImageSizes prints the id and size in bytes of each image, one per line (see ParseImageSizes). The size
// counts every layer of the image, including those it shares with other images.
func ImageSizes(ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, errors.New("no image to inspect")
	}
	for _, id := range ids {
		if !ValidDigest(id) {
			return nil, fmt.Errorf("invalid image id %q", id)
		}
	}
	return append([]string{"docker", "image", "inspect", "--format", "{{.Id}} {{.Size}}"}, ids...), nil
}

// ParseImageSizes decodes ImageSizes' output into image id -> size in bytes.
func ParseImageSizes(out []byte) (map[string]int64, error) {
	m := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 || !ValidDigest(f[0]) {
			return nil, fmt.Errorf("unexpected image size line %q", sc.Text())
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("unexpected image size line %q", sc.Text())
		}
		m[f[0]] = n
	}
	return m, sc.Err()
}

// RemoveImage removes one image by its id, without --force: Docker refuses an image that a container, even
// a stopped one, was created from, and one that is named in more than one repository.
func RemoveImage(id string) ([]string, error) {
	if !ValidDigest(id) {
		return nil, fmt.Errorf("invalid image id %q", id)
	}
	return []string{"docker", "image", "rm", id}, nil
}
