package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/pkg/sftp"
	"github.com/skiffdeploy/skiff/remote"
)

// The reads of a deploy's last steps go through the host's SFTP session, which the upload has already
// opened, instead of a remote shell each: every shell is a session, a fork in sshd, two or three execs on
// the target and a round trip. With LeftoverRelease, this took four of a deploy's eleven shells away, and a
// sixth of the targets' sshd CPU at fifty hosts (bench/, BenchmarkFleet). They list exactly what
// ListReleases, CompleteReleases and ReadHistory list.

// RetentionState is what retention decides on.
type RetentionState struct {
	IDs        []string        // release directories, oldest first, complete or not
	Complete   map[string]bool // releases with a stored manifest
	History    []HistoryEntry
	StaleTrash []string // trash directories (see retireScript) older than staleTrashAge, whose deletion failed
}

// staleTrashAge is how long after its deploy a trash directory must be gone: deleting even a large release
// takes seconds.
const staleTrashAge = 10 * time.Minute

// ReadRetention reads the release directories, the stored manifests and the history over SFTP.
func ReadRetention(ctx context.Context, c Conn, l Layout) (*RetentionState, error) {
	client, err := c.SFTP(ctx)
	if err != nil {
		return nil, err
	}
	var stale []string
	dirs, err := listIDsSFTP(client, l.Releases(), true, func(fi fs.FileInfo) {
		if strings.HasPrefix(fi.Name(), trashPrefix) && fi.IsDir() && time.Since(fi.ModTime()) > staleTrashAge {
			stale = append(stale, fi.Name())
		}
	})
	if err != nil {
		return nil, err
	}
	st := &RetentionState{IDs: make([]string, 0, len(dirs)), StaleTrash: stale}
	for id := range dirs {
		st.IDs = append(st.IDs, id)
	}
	sort.Strings(st.IDs)
	if st.Complete, err = listIDsSFTP(client, l.Manifests(), false, nil); err != nil {
		return nil, err
	}
	if st.History, err = readHistorySFTP(ctx, client, l); err != nil {
		return nil, err
	}
	return st, nil
}

// listIDsSFTP is listScript over SFTP: the valid release ids among the directories (dirs) or regular files
// of dir, following symlinks like test -d and -f do; a missing dir, or one that is not a directory, lists
// nothing. other, when not nil, is shown every entry whose name is not a release id.
func listIDsSFTP(client *sftp.Client, dir string, dirs bool, other func(fs.FileInfo)) (map[string]bool, error) {
	ids := map[string]bool{}
	entries, err := client.ReadDir(dir)
	if err != nil {
		if fi, serr := client.Stat(dir); errors.Is(serr, fs.ErrNotExist) || (serr == nil && !fi.IsDir()) {
			return ids, nil
		}
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	for _, fi := range entries {
		name := fi.Name()
		if !ValidReleaseID(name) {
			if other != nil {
				other(fi)
			}
			continue
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if fi, err = client.Stat(path.Join(dir, name)); err != nil {
				continue
			}
		}
		if (dirs && fi.IsDir()) || (!dirs && fi.Mode().IsRegular()) {
			ids[name] = true
		}
	}
	return ids, nil
}

// readHistorySFTP is ReadHistory over SFTP: a history that is missing or not a regular file is empty.
func readHistorySFTP(ctx context.Context, client *sftp.Client, l Layout) ([]HistoryEntry, error) {
	name := l.History()
	fi, err := client.Stat(name)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.Mode().IsRegular()) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	if fi.Size() > MaxHistoryBytes {
		return nil, HistoryTooLarge(l, fi.Size())
	}
	f, err := client.Open(name)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	defer f.Close()
	// One read of the whole file, which the SFTP client splits into concurrent requests, then one for EOF. The
	// file may have grown since the stat: the read stops past the bound whatever the target says.
	buf := bytes.NewBuffer(make([]byte, 0, fi.Size()+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(remote.ContextReader(ctx, f), MaxHistoryBytes+1)); err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	if buf.Len() > MaxHistoryBytes {
		return nil, HistoryTooLarge(l, -1)
	}
	return parseHistoryOf(ctx, l, buf.Bytes()), nil
}

// LeftoverRelease reports whether release id's directory, manifest or build record exists on the host, as the remains of
// a killed run would; only then does a deploy spend a remote shell on removing them. Anything but a clear
// "does not exist" counts as there.
func LeftoverRelease(ctx context.Context, c Conn, l Layout, id string) bool {
	client, err := c.SFTP(ctx)
	if err != nil {
		return true
	}
	for _, p := range []string{l.Release(id), l.Manifest(id), l.ReleaseBuilds(id)} {
		if _, err := client.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			return true
		}
	}
	return false
}

// CreateFinal creates name over SFTP with its final mode before a byte is written, so that a secret (a 0600
// .env) is never readable by others while it is on its way: the SFTP server creates files with its default
// mode, and a chmod after the write would come too late.
func CreateFinal(client *sftp.Client, name string, flags int, mode fs.FileMode) (*sftp.File, error) {
	f, err := client.OpenFile(name, flags|os.O_CREATE)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(mode.Perm()); err != nil {
		f.Close()
		_ = client.Remove(name)
		return nil, err
	}
	return f, nil
}

// WriteFile writes a file over SFTP so that no reader sees it partial or under a wider mode: fill writes the
// content into tmp, created with its final mode (see CreateFinal) and flags, which is then renamed over dst.
// tmp is removed when anything fails.
func WriteFile(client *sftp.Client, tmp, dst string, flags int, mode fs.FileMode, fill func(*sftp.File) error) error {
	f, err := CreateFinal(client, tmp, flags, mode)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	err = fill(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = client.PosixRename(tmp, dst)
	}
	if err != nil {
		_ = client.Remove(tmp)
	}
	return err
}

// ReadCurrentSFTP is ReadCurrent through the connection's SFTP session, which a deploy opens anyway: no
// remote shell is started for it. What the link names is validated by ParseCurrent as ReadCurrent's is.
func ReadCurrentSFTP(ctx context.Context, c Conn, l Layout) (string, error) {
	client, err := c.SFTP(ctx)
	if err != nil {
		return "", fmt.Errorf("read current: %w", err)
	}
	var out string
	fi, err := client.Lstat(l.Current())
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", fmt.Errorf("read current: %s: %w", l.Current(), err)
	case fi.Mode()&fs.ModeSymlink == 0:
		out = notALink
	default:
		if out, err = client.ReadLink(l.Current()); err != nil {
			return "", fmt.Errorf("read current: %s: %w", l.Current(), err)
		}
	}
	id, err := ParseCurrent(l, []byte(out))
	if err != nil {
		return "", fmt.Errorf("read current: %w", err)
	}
	return id, nil
}
