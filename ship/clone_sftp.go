package ship

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/pkg/sftp"
	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
	"golang.org/x/sync/errgroup"
)

// ErrRanInBase says that commands of the app's ran in the base release (its builds record exists), so that
// its files may have been written through: the new release is made from copies instead (CopyReleaseCommand).
var ErrRanInBase = errors.New("commands of the app ran in the base release")

// maxCloneSFTP bounds the entries of a base that CloneSFTP clones, one request each, pipelined: up to about
// this many they cost the target less than cloneScript's shell and its cp, find, sort and cmp.
const maxCloneSFTP = 2048

// CloneBySFTP reports whether a release can be cloned from the base whose manifest is m over SFTP: m has few
// enough entries, and every directory keeps its owner's rwx, so that no request can lock another out.
func CloneBySFTP(m *Manifest) bool {
	if len(m.Entries) > maxCloneSFTP {
		return false
	}
	for _, e := range m.Entries {
		if e.Type == TypeDir && e.Mode.Perm()&0o700 != 0o700 {
			return false
		}
	}
	return true
}

// CloneSFTP makes release id from base's manifest m over the SFTP session: its directories made anew with their
// manifest modes, its symlinks made anew, its files hard links to base's (hardlink@openssh.com, which is
// link(2)). The release holds exactly what m lists, so Ship is given ShipOptions.ClonedExact and makes nothing
// of base again. It returns ErrRanInBase, having made nothing, when commands of the app's ran in base; any
// other error leaves a partial release for the caller to remove (a file of m missing from base among them).
func CloneSFTP(ctx context.Context, c release.Conn, l release.Layout, base, id string, m *Manifest, concurrency int) error {
	client, err := c.SFTP(ctx)
	if err != nil {
		return fmt.Errorf("clone %s: %w", base, err)
	}
	return remote.SFTPCall(ctx, func() error { return cloneSFTP(ctx, client, l, base, id, m, concurrency) })
}

// cloneSFTP is CloneSFTP's requests.
func cloneSFTP(ctx context.Context, client *sftp.Client, l release.Layout, base, id string, m *Manifest, concurrency int) error {
	if _, err := client.Lstat(l.ReleaseBuilds(base)); err == nil {
		return ErrRanInBase
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("clone %s: %s: %w", base, l.ReleaseBuilds(base), err)
	}
	rel, from := l.Release(id), l.Release(base)
	if err := makeReleaseDir(client, rel); err != nil {
		return fmt.Errorf("clone %s: %w", base, err)
	}
	if concurrency <= 0 {
		concurrency = DefaultConcurrency
	}
	each := func(pick func(Entry) bool, do func(client *sftp.Client, e Entry, p string) error) error {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(concurrency)
		for _, e := range m.Entries {
			if gctx.Err() != nil {
				break
			}
			if pick(e) {
				g.Go(func() error { return do(client, e, path.Join(rel, e.Path)) })
			}
		}
		if err := g.Wait(); err != nil {
			return fmt.Errorf("clone %s: %w", base, err)
		}
		return ctx.Err()
	}
	for depth := 1; depth <= maxDirDepth(m); depth++ {
		err := each(func(e Entry) bool { return e.Type == TypeDir && e.Path != "." && dirDepth(e) == depth },
			func(client *sftp.Client, e Entry, p string) error { return wrapPath("mkdir", p, client.Mkdir(p)) })
		if err != nil {
			return err
		}
	}
	err := each(func(e Entry) bool { return e.Type != TypeDir }, func(client *sftp.Client, e Entry, p string) error {
		if e.Type == TypeSymlink {
			return wrapPath("symlink", p, client.Symlink(e.Link, p))
		}
		src := path.Join(from, e.Path)
		if err := client.Link(src, p); err != nil {
			if _, serr := client.Lstat(src); errors.Is(serr, fs.ErrNotExist) {
				return fmt.Errorf("the base release lacks entries of its manifest: %s", e.Path)
			}
			return wrapPath("link", p, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return each(func(e Entry) bool { return e.Type == TypeDir }, func(client *sftp.Client, e Entry, p string) error {
		return wrapPath(fmt.Sprintf("chmod %04o", uint32(e.Mode.Perm())), p, client.Chmod(p, e.Mode.Perm()))
	})
}

// maxDirDepth is the depth of m's deepest directory (see dirDepth).
func maxDirDepth(m *Manifest) int {
	d := 0
	for _, e := range m.Entries {
		if e.Type == TypeDir && e.Path != "." {
			d = max(d, dirDepth(e))
		}
	}
	return d
}

// dirDepth is 1 for an entry at the top of the release, 2 for one in a directory there, and so on.
func dirDepth(e Entry) int { return strings.Count(e.Path, "/") + 1 }

// wrapPath names the operation and path of an SFTP request that failed.
func wrapPath(op, p string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s %s: %w", op, p, err)
}
