package ship

import (
	"context"
	"fmt"
	"path"

	"golang.org/x/sync/errgroup"
)

// maxRelinkSFTP bounds how many of a base's directories and symlinks are made again over SFTP rather than by
// the prepare script: each is one request (two for a symlink), pipelined, and cheaper on the target than a
// remote shell and its processes, up to about this many.
const maxRelinkSFTP = 256

// relinkBySFTP reports whether the base's symlinks and directory modes, in a release cloned from it, can be
// made again over SFTP (see relinkSFTP): there are few of them, and every directory of the base keeps its
// owner's rwx, so that the order of the requests cannot lock one out of another.
func (p *shipPlan) relinkBySFTP() bool {
	if p.base == "" || p.old == nil || len(p.open) > 0 {
		return false
	}
	n := 0
	for _, e := range p.old.Entries {
		if e.Type == TypeDir || e.Type == TypeSymlink {
			n++
		}
	}
	return n <= maxRelinkSFTP
}

// relinkSFTP is the prepare script's relink over the SFTP session: in the release directory cloned from the
// base, the base's symlinks are made again and its directories given their manifest modes, since either may
// have been changed on the target since the base was shipped.
func (s *shipper) relinkSFTP(ctx context.Context, old *Manifest) error {
	client, err := s.c.SFTP(ctx)
	if err != nil {
		return fmt.Errorf("prepare release: %w", err)
	}
	rel := s.layout.Release(s.id)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.concurrency)
	for _, e := range old.Entries {
		if gctx.Err() != nil {
			break
		}
		p := path.Join(rel, e.Path)
		switch e.Type {
		case TypeDir:
			g.Go(func() error {
				if err := client.Chmod(p, e.Mode.Perm()); err != nil {
					return fmt.Errorf("prepare release: chmod %04o %s: %w", uint32(e.Mode.Perm()), p, err)
				}
				return nil
			})
		case TypeSymlink:
			g.Go(func() error {
				if err := client.Remove(p); err != nil {
					return fmt.Errorf("prepare release: remove %s: %w", p, err)
				}
				if err := client.Symlink(e.Link, p); err != nil {
					return fmt.Errorf("prepare release: symlink %s: %w", p, err)
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}
