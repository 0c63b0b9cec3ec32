package ship

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/pkg/sftp"

	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
)

// maxVerifyProblems bounds how many differences Verify lists in its error.
const maxVerifyProblems = 20

// hashScript prints the sha256 of every regular file under the current directory. find and xargs pass the
// names NUL-separated, so no name can be mistaken for another.
const hashScript = "find . -type f -print0 | xargs -0 -r sha256sum --"

// Verify checks that release id on the target is exactly what m describes: the content of every file (one
// sha256sum run over the whole release), and the type, mode and link target of every entry (read over SFTP).
// Regular files or directories that m does not list are differences too; extra symlinks are not, since that is
// how shared entries are linked into a release. The error lists the first differences found.
func Verify(ctx context.Context, c release.Conn, layout release.Layout, id string, m *Manifest) error {
	if err := layout.Validate(); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if !release.ValidReleaseID(id) {
		return fmt.Errorf("verify: invalid release id %q", id)
	}
	dir := layout.Release(id)
	res, err := c.Run(ctx, remote.Command{Script: hashScript, Dir: dir})
	if err != nil {
		return fmt.Errorf("verify %s: hash files: %w", id, err)
	}
	sums, err := ParseSHA256Sums(res.Stdout)
	if err != nil {
		return fmt.Errorf("verify %s: %w", id, err)
	}
	client, err := c.SFTP(ctx)
	if err != nil {
		return fmt.Errorf("verify %s: %w", id, err)
	}
	found := make(map[string]fs.FileInfo)
	if err := walkRelease(ctx, client, dir, "", found); err != nil {
		return fmt.Errorf("verify %s: %w", id, err)
	}

	var problems []string
	note := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for _, e := range m.Entries {
		fi, ok := found[e.Path]
		if !ok {
			note("%q: missing", e.Path)
			continue
		}
		delete(found, e.Path)
		if got := entryTypeOf(fi); got != e.Type {
			note("%q: is a %s, want a %s", e.Path, got, e.Type)
			continue
		}
		switch e.Type {
		case TypeFile:
			if fi.Mode().Perm() != e.Mode {
				note("%q: mode %04o, want %04o", e.Path, uint32(fi.Mode().Perm()), uint32(e.Mode))
			}
			if sums[e.Path] != e.SHA256 {
				note("%q: sha256 %s, want %s", e.Path, sums[e.Path], e.SHA256)
			}
		case TypeDir:
			if fi.Mode().Perm() != e.Mode {
				note("%q: mode %04o, want %04o", e.Path, uint32(fi.Mode().Perm()), uint32(e.Mode))
			}
		case TypeSymlink:
			target, err := client.ReadLink(path.Join(dir, e.Path))
			if err != nil {
				note("%q: %v", e.Path, err)
			} else if target != e.Link {
				note("%q: links to %q, want %q", e.Path, target, e.Link)
			}
		}
	}
	extra := make([]string, 0, len(found))
	for p, fi := range found {
		if entryTypeOf(fi) != TypeSymlink {
			extra = append(extra, p)
		}
	}
	sort.Strings(extra)
	for _, p := range extra {
		note("%q: not in the manifest", p)
	}
	if len(problems) == 0 {
		return nil
	}
	if len(problems) > maxVerifyProblems {
		problems = append(problems[:maxVerifyProblems], fmt.Sprintf("and %d more", len(problems)-maxVerifyProblems))
	}
	return fmt.Errorf("verify %s: release differs from its manifest: %s", id, strings.Join(problems, "; "))
}

func entryTypeOf(fi fs.FileInfo) EntryType {
	switch {
	case fi.Mode().IsRegular():
		return TypeFile
	case fi.IsDir():
		return TypeDir
	case fi.Mode()&fs.ModeSymlink != 0:
		return TypeSymlink
	}
	return EntryType(fi.Mode().Type().String())
}

// walkRelease records every entry under dir/rel without following symlinks (SFTP directory listings carry
// lstat attributes).
func walkRelease(ctx context.Context, client *sftp.Client, dir, rel string, found map[string]fs.FileInfo) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	list, err := client.ReadDirContext(ctx, path.Join(dir, rel))
	if err != nil {
		return fmt.Errorf("list %s: %w", path.Join(dir, rel), err)
	}
	for _, fi := range list {
		p := path.Join(rel, fi.Name())
		found[p] = fi
		if fi.IsDir() {
			if err := walkRelease(ctx, client, dir, p, found); err != nil {
				return err
			}
		}
	}
	return nil
}

// ParseSHA256Sums reads sha256sum output for "./"-prefixed names. GNU sha256sum escapes names holding a
// backslash, CR or newline and then starts the line with a backslash.
func ParseSHA256Sums(out []byte) (map[string]string, error) {
	sums := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), maxManifestLine)
	for sc.Scan() {
		line := sc.Text()
		escaped := strings.HasPrefix(line, `\`)
		if escaped {
			line = line[1:]
		}
		if len(line) < 64+2+2 || !isSHA256Hex(line[:64]) || line[64] != ' ' || line[66:68] != "./" {
			return nil, fmt.Errorf("unexpected sha256sum output %q", line)
		}
		name := line[68:]
		if escaped {
			var err error
			if name, err = unescapeSum(name); err != nil {
				return nil, err
			}
		}
		sums[name] = line[:64]
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return sums, nil
}

func unescapeSum(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i++; i == len(s) {
			return "", errors.New("sha256sum output ends in a lone backslash")
		}
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		default:
			return "", fmt.Errorf("unknown escape \\%c in sha256sum output", s[i])
		}
	}
	return b.String(), nil
}
