package ship

import (
	"context"
	"fmt"
	"path"
)

// maxFreshSFTP bounds the directories and symlinks of a release without a base that are made over SFTP rather
// than by the prepare script (see makeFreshSFTP): two requests each, one after the other, which costs less
// than a remote shell and its mkdir processes up to about this many.
const maxFreshSFTP = 64

// freshBySFTP reports whether the release is made from nothing (no base) with few enough directories and
// symlinks for makeFreshSFTP.
func (p *shipPlan) freshBySFTP() bool {
	return p.base == "" && len(p.remove) == 0 && len(p.modeCopy) == 0 && len(p.open) == 0 &&
		len(p.mkdirs)+len(p.links) <= maxFreshSFTP
}

// makeFreshSFTP does over the SFTP session what the prepare script does for a release without a base: it
// creates releases/ and the manifests directory where missing, the release directory, which must not exist,
// and the release's directories, each given mode 0755 (the script's umask 022; other modes are set once the
// files are in, see finishScript) whatever the SFTP server's umask, parents first; then its symlinks. The
// files then go in one tar stream extracted in the release directory (sendTar), with no remote shell.
func (s *shipper) makeFreshSFTP(ctx context.Context, p *shipPlan) error {
	client, err := s.c.SFTP(ctx)
	if err != nil {
		return fmt.Errorf("prepare release: %w", err)
	}
	for _, d := range []string{s.layout.Releases(), s.layout.Manifests()} {
		if err := client.MkdirAll(d); err != nil {
			return fmt.Errorf("prepare release: create %s: %w", d, err)
		}
	}
	rel := s.layout.Release(s.id)
	dirs := append([]string{rel}, make([]string, 0, len(p.mkdirs))...)
	for _, d := range p.mkdirs {
		dirs = append(dirs, path.Join(rel, d))
	}
	for _, d := range dirs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := client.Mkdir(d); err != nil {
			if _, serr := client.Lstat(d); serr == nil {
				err = fmt.Errorf("%w (File exists)", err) // SFTP says only "failure"
			}
			return fmt.Errorf("prepare release: create %s: %w", d, err)
		}
		if err := client.Chmod(d, defaultDirMode); err != nil {
			return fmt.Errorf("prepare release: chmod %s: %w", d, err)
		}
	}
	for _, e := range p.links {
		if err := client.Symlink(e.Link, path.Join(rel, e.Path)); err != nil {
			return fmt.Errorf("prepare release: symlink %s: %w", path.Join(rel, e.Path), err)
		}
	}
	return nil
}
