package release

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"time"

	"github.com/pkg/sftp"
	"github.com/skiffdeploy/skiff/remote"
)

// The lock and the history are also kept over the host's SFTP session, which a run opens anyway, rather than
// by a remote shell each: a shell is a session, a fork in sshd and two execs of sh on the target before the
// mkdir, mv, tail or rm it runs, and a fleet pays for each on every host. SFTP's mkdir is mkdir(2), as atomic
// as the shell's; its posix-rename is rename(2); an append is one write(2) on a file opened with O_APPEND.

// AcquireLockSFTP takes the app's lock as AcquireLock does, over the SFTP session: mkdir of the lock
// directory, then owner.json written aside and renamed into it. The Lock it returns frees itself over SFTP too.
func AcquireLockSFTP(ctx context.Context, c Conn, l Layout, owner LockOwner, staleAfter time.Duration) (*Lock, error) {
	a, err := NewLockAttempt(c, l, owner)
	if err != nil {
		return nil, err
	}
	client, err := c.SFTP(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	type taken struct {
		held *LockedError
		err  error
	}
	ch := make(chan taken, 1)
	go func() {
		held, err := takeLockSFTP(client, l, a.owner, staleAfter)
		ch <- taken{held, err}
	}()
	k, _ := a.Outcome(0, nil, staleAfter)
	k.sc = c
	select {
	case t := <-ch:
		switch {
		case t.err != nil:
			return nil, t.err
		case t.held != nil:
			return nil, t.held
		}
		return k, nil
	case <-ctx.Done():
		go func() { // a lock taken after the run gave up on it is freed, as far as this process lives
			if t := <-ch; t.err == nil && t.held == nil {
				uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lateUnlockTimeout)
				defer cancel()
				_ = k.releaseSFTP(uctx)
			}
		}()
		return nil, fmt.Errorf("lock: %w", ctx.Err())
	}
}

// lateUnlockTimeout bounds freeing a lock whose taking ended after the run gave up waiting for it.
const lateUnlockTimeout = 10 * time.Second

// takeLockSFTP makes the lock directory and writes owner.json into it; a lock held already is returned as a
// *LockedError, with a nil error.
func takeLockSFTP(client *sftp.Client, l Layout, owner LockOwner, staleAfter time.Duration) (*LockedError, error) {
	dir := l.LockDir()
	err := client.Mkdir(dir)
	if err != nil && errors.Is(err, fs.ErrNotExist) {
		if err = client.MkdirAll(l.SkiffDir()); err != nil {
			return nil, fmt.Errorf("lock: create %s: %w", l.SkiffDir(), err)
		}
		err = client.Mkdir(dir)
	}
	if err != nil {
		if _, serr := client.Lstat(dir); serr != nil {
			return nil, fmt.Errorf("lock: create %s: %w", dir, err)
		}
		data, rerr := readSmallSFTP(client, path.Join(dir, "owner.json"), maxOwnerBytes)
		if rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return nil, fmt.Errorf("lock: read %s/owner.json: %w", dir, rerr)
		}
		return lockedError(l, data, staleAfter), nil
	}
	data, err := json.Marshal(owner)
	if err == nil {
		err = writeFileSFTP(client, path.Join(dir, "owner.json"), append(data, '\n'))
	}
	if err != nil {
		if rerr := client.RemoveDirectory(dir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("the lock is left held: %w", rerr))
		}
		return nil, fmt.Errorf("lock: write %s/owner.json: %w", dir, err)
	}
	return nil, nil
}

// OverSFTP reports whether the lock was taken over SFTP, and so whether the run's history goes that way too.
func (k *Lock) OverSFTP() bool { return k.sc != nil }

// releaseSFTP frees a lock taken by AcquireLockSFTP when it still carries this run's token: owner.json is
// read and checked, then removed with the directory. A lock directory holding more (what a run killed while
// writing owner.json left) is removed by the remote command instead.
func (k *Lock) releaseSFTP(ctx context.Context) error {
	client, err := k.sc.SFTP(ctx)
	if err != nil {
		return err
	}
	var more bool
	err = remote.SFTPCall(ctx, func() error {
		var err error
		more, err = unlockSFTP(client, k.dir, k.owner.Token)
		return err
	})
	if err != nil || !more {
		return err
	}
	_, err = k.c.Run(ctx, remote.Script(releaseScript, k.dir, ""))
	return err
}

// unlockSFTP removes the lock directory dir when its owner.json carries token; more says that the directory
// holds more than owner.json, which was removed, and is left for releaseScript.
func unlockSFTP(client *sftp.Client, dir, token string) (more bool, err error) {
	owner := path.Join(dir, "owner.json")
	data, err := readSmallSFTP(client, owner, maxOwnerBytes)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, serr := client.Lstat(dir); serr != nil && errors.Is(serr, fs.ErrNotExist) {
			return false, nil // freed already (skiff lock release --force)
		}
		return false, errLockChanged
	case err != nil:
		return false, err
	}
	if o, perr := ParseLockOwner(data); perr != nil || o.Token != token {
		return false, errLockChanged
	}
	if err := client.Remove(owner); err != nil {
		return false, fmt.Errorf("remove %s: %w", owner, err)
	}
	return client.RemoveDirectory(dir) != nil, nil
}

// errLockChanged is what releaseScript's exit status 4 says (see lockChanged).
var errLockChanged = errors.New("the lock is no longer the one inspected: another run holds it now, left as it is")

// AppendHistorySFTP adds one line to the app's history as AppendHistory does, over the SFTP session: one
// write with O_APPEND, starting with a newline when the file does not end in one.
func AppendHistorySFTP(ctx context.Context, c Conn, l Layout, e HistoryEntry) error {
	line, err := historyLine(e)
	if err != nil {
		return err
	}
	client, err := c.SFTP(ctx)
	if err != nil {
		return fmt.Errorf("append history: %w", err)
	}
	err = remote.SFTPCall(ctx, func() error {
		const flags = os.O_RDWR | os.O_APPEND | os.O_CREATE
		f, err := client.OpenFile(l.History(), flags)
		if errors.Is(err, fs.ErrNotExist) {
			if err = client.MkdirAll(l.SkiffDir()); err == nil {
				f, err = client.OpenFile(l.History(), flags)
			}
		}
		if err != nil {
			return err
		}
		err = appendLine(f, line)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("append history: %s: %w", l.History(), err)
	}
	return nil
}

// appendLine writes line to f, opened for reading and appending, in one request: after a newline when the
// file does not end in one.
func appendLine(f *sftp.File, line []byte) error {
	if len(line)+1 > maxSFTPWrite {
		return fmt.Errorf("a history line of %d bytes is more than one write", len(line))
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, fi.Size()-1); err != nil && err != io.EOF {
			return err
		}
		if last[0] != '\n' {
			line = append([]byte{'\n'}, line...)
		}
	}
	_, err = f.Write(line)
	return err
}

// maxSFTPWrite is the largest write pkg/sftp sends in one request, so in one write(2) on the target.
const maxSFTPWrite = 32 << 10

// historyLine is the line AppendHistory writes for e, its newline included.
func historyLine(e HistoryEntry) ([]byte, error) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	data, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// readSmallSFTP reads a file of at most max bytes; a larger one is an error.
func readSmallSFTP(client *sftp.Client, name string, max int64) ([]byte, error) {
	f, err := client.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, max+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, max)
	}
	return buf.Bytes(), nil
}

// writeFileSFTP writes data to name through a temporary file renamed over it, so that a reader sees the old
// content or the new, whole.
func writeFileSFTP(client *sftp.Client, name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := client.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = client.PosixRename(tmp, name)
	}
	return err
}

// releaseAfterSFTP is ReleaseAfter for a lock taken over SFTP: the steps run in one remote command when there
// are any, and the lock is freed over SFTP whatever they did.
func (k *Lock) releaseAfterSFTP(ctx context.Context, steps []remote.Step) (stepErrs []error, err error) {
	if len(steps) > 0 {
		cmd, serr := remote.Sequence(steps...)
		if serr != nil {
			return nil, serr
		}
		res, rerr := k.c.Run(ctx, cmd)
		var ee *remote.ExitError
		if rerr != nil && !errors.As(rerr, &ee) {
			stepErrs = slices.Repeat([]error{rerr}, len(steps))
		} else {
			stepErrs = remote.SequenceErrors(res.Stdout, len(steps), ee)
		}
	}
	if err := k.releaseSFTP(ctx); err != nil {
		return stepErrs, fmt.Errorf("release lock %s: %w", k.dir, err)
	}
	return stepErrs, nil
}
