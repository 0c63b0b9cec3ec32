package release

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/skiffdeploy/skiff/remote"
)

// RetireReleasesSFTP is the first half of retireScript over the SFTP session: releases ids are renamed into a
// trash directory of this run (token, hex) and their manifests and build records removed. EmptyTrashCommand
// then frees their space in the background. ids must be valid release ids.
func RetireReleasesSFTP(ctx context.Context, c Conn, l Layout, ids []string, token string) error {
	client, err := c.SFTP(ctx)
	if err != nil {
		return err
	}
	trash := path.Join(l.Releases(), trashPrefix+token)
	return remote.SFTPCall(ctx, func() error {
		if err := client.Mkdir(trash); err != nil {
			return fmt.Errorf("create %s: %w", trash, err)
		}
		for _, id := range ids {
			if err := client.PosixRename(l.Release(id), path.Join(trash, id)); err != nil {
				return fmt.Errorf("move %s into %s: %w", l.Release(id), trash, err)
			}
			for _, p := range []string{l.Manifest(id), l.ReleaseBuilds(id)} {
				if err := client.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("remove %s: %w", p, err)
				}
			}
		}
		return nil
	})
}

// EmptyTrashCommand deletes every trash directory under releases/ in a detached process (emptyTrashScript),
// so that the SSH session does not wait for it.
func EmptyTrashCommand(l Layout) remote.Command {
	return remote.Script(`rel="$1"; `+emptyTrashScript, l.Releases())
}
