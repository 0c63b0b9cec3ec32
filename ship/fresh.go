package ship

import (
	"context"
	"errors"
	"fmt"

	"github.com/pkg/sftp"

	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
)

// maxFreshEntries bounds the directories and symlinks of a release without a base that go in the tar stream
// with its files (see makeFreshSFTP) rather than being made by the prepare script.
const maxFreshEntries = 4096

// freshInTar reports whether the release is made from nothing (no base) with few enough directories and
// symlinks to go in the tar stream.
func (p *shipPlan) freshInTar() bool {
	return p.base == "" && len(p.remove) == 0 && len(p.modeCopy) == 0 && len(p.open) == 0 &&
		len(p.mkdirs)+len(p.links) <= maxFreshEntries
}

// sendFresh makes a release without a base (makeFreshSFTP) and sends all of it in one tar stream. It takes the
// target's tar to be GNU tar, so that a first deploy starts one remote program, the extraction, and asks
// (TarProbeCommand) only when that fails: on a target with another tar, which rejects GNU tar's options before
// it reads the stream, the release directory is removed again and sent is false, and the caller makes the
// release without tar. Any other failure is returned as is.
func (s *shipper) sendFresh(ctx context.Context, m *Manifest) (sent bool, err error) {
	if err := s.makeFreshSFTP(ctx); err != nil {
		return false, err
	}
	mark := s.mark()
	err = s.sendTar(ctx, freshEntries(m))
	var exit *remote.ExitError
	if err == nil || s.gnuTar || !errors.As(err, &exit) {
		return err == nil, err
	}
	if res, perr := s.c.Run(ctx, TarProbeCommand()); perr != nil || IsGNUTar(res.Stdout) {
		return false, err
	}
	if _, rerr := s.c.Run(ctx, release.RemoveReleasesCommand(s.layout, []string{s.id})); rerr != nil {
		return false, fmt.Errorf("%w; the target's tar is not GNU tar, and removing the release again failed: %w", err, rerr)
	}
	s.rewind(mark)
	return false, nil
}

// makeFreshSFTP does over the SFTP session what the prepare script does first for a release without a base: it
// creates releases/ where missing and the release directory, which must not exist, with mode 0755 (the
// script's umask 022) whatever the SFTP server's umask. Its directories, symlinks and files then go in one tar
// stream (freshEntries) that GNU tar extracts in it with their manifest modes (-p sets a directory's once its
// content is in), so that no remote shell is started.
func (s *shipper) makeFreshSFTP(ctx context.Context) error {
	client, err := s.c.SFTP(ctx)
	if err != nil {
		return fmt.Errorf("prepare release: %w", err)
	}
	if err := client.MkdirAll(s.layout.Releases()); err != nil {
		return fmt.Errorf("prepare release: create %s: %w", s.layout.Releases(), err)
	}
	if err := makeReleaseDir(client, s.layout.Release(s.id)); err != nil {
		return fmt.Errorf("prepare release: %w", err)
	}
	return ctx.Err()
}

// makeReleaseDir creates the release directory rel, which must not exist, with mode 0755 whatever the SFTP
// server's umask.
func makeReleaseDir(client *sftp.Client, rel string) error {
	if err := client.Mkdir(rel); err != nil {
		if _, serr := client.Lstat(rel); serr == nil {
			err = fmt.Errorf("%w (File exists)", err) // SFTP says only "failure"
		}
		return fmt.Errorf("create %s: %w", rel, err)
	}
	if err := client.Chmod(rel, defaultDirMode); err != nil {
		return fmt.Errorf("chmod %s: %w", rel, err)
	}
	return nil
}

// freshEntries are the entries of m that a release without a base receives in its tar stream: all of them, in
// the manifest's order, which puts every directory before what it holds.
func freshEntries(m *Manifest) []Entry {
	out := make([]Entry, 0, len(m.Entries))
	for _, e := range m.Entries {
		if e.Path != "." && e.Path != "" {
			out = append(out, e)
		}
	}
	return out
}
