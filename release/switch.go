package release

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/pkg/sftp"
	"github.com/skiffdeploy/skiff/remote"
)

// Switch makes release id live through the connection's SFTP session, which a deploy opens anyway, so that
// no remote shell is started for it: a fresh symlink to the release is renamed over current with
// posix-rename@openssh.com, which is rename(2) and atomic, so every reader sees either the old or the new
// release, never a missing link. A current that is not a symlink is refused, never replaced. It returns what
// current names once renamed, read back as ReadCurrent reads it, so that the caller proves the switch with
// ParseCurrent (see hostRun.switchTo).
func Switch(ctx context.Context, c Conn, l Layout, id string) ([]byte, error) {
	client, err := c.SFTP(ctx)
	if err != nil {
		return nil, fmt.Errorf("switch: %w", err)
	}
	var out []byte
	err = remote.SFTPCall(ctx, func() error {
		var err error
		out, err = switchSFTP(client, l, id)
		return err
	})
	return out, err
}

// switchSFTP is Switch's requests.
func switchSFTP(client *sftp.Client, l Layout, id string) ([]byte, error) {
	cur := l.Current()
	switch fi, err := client.Lstat(cur); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("switch: %s: %w", cur, err)
	case fi.Mode()&fs.ModeSymlink == 0:
		return nil, fmt.Errorf("%s is not a symlink (a directory or file left by another tool?); skiff will not replace it: move it away", cur)
	}
	if fi, err := client.Stat(l.Release(id)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("switch: release %s is not there (%v)", id, orNotADir(err))
	}
	tmp := path.Join(l.Path, switchTemp)
	if err := client.Symlink(l.ReleaseLink(id), tmp); err != nil {
		// A switch killed between its two steps left the link; under the lock it is nobody's.
		if _, lerr := client.Lstat(tmp); lerr != nil {
			return nil, fmt.Errorf("switch: create %s: %w", tmp, err)
		}
		if err := client.Remove(tmp); err != nil {
			return nil, fmt.Errorf("switch: remove %s, left by a switch that was cut short: %w", tmp, err)
		}
		if err := client.Symlink(l.ReleaseLink(id), tmp); err != nil {
			return nil, fmt.Errorf("switch: create %s: %w", tmp, err)
		}
	}
	if err := client.PosixRename(tmp, cur); err != nil {
		_ = client.Remove(tmp)
		return nil, fmt.Errorf("switch: could not rename %s over %s: %w", tmp, cur, err)
	}
	out, err := client.ReadLink(cur)
	if err != nil {
		return nil, fmt.Errorf("switch: read %s back: %w", cur, err)
	}
	return []byte(out), nil
}

// switchTemp is the link Switch renames over current. Only the holder of the app's lock switches, so one name
// serves every run: a run killed in between leaves it, and the next switch replaces it. (Earlier versions of
// skiff gave each switch a name of its own, .current.skiff-tmp.<token>; such leftovers stay.)
const switchTemp = ".current.skiff-tmp"

func orNotADir(err error) error {
	if err != nil {
		return err
	}
	return errors.New("not a directory")
}
