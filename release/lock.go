package release

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pkg/sftp"
	"github.com/skiffdeploy/skiff/remote"
)

// runner runs one command on a target; every flow step needs only this much of a connection.
type runner interface {
	Run(ctx context.Context, cmd remote.Command) (*remote.Result, error)
}

// LockOwner is written to <path>/.skiff/lock/owner.json so that whoever finds the lock held knows who holds it.
type LockOwner struct {
	Operator string    `json:"operator"`
	Machine  string    `json:"machine"`
	PID      int       `json:"pid"`
	Origin   string    `json:"origin"`
	Op       string    `json:"op"`
	App      string    `json:"app"`
	Since    time.Time `json:"since"`
	Token    string    `json:"token"`
}

// LockedError says that another run holds the lock of an app on a host. The CLI maps it to exit code 3.
type LockedError struct {
	Dir   string
	Owner *LockOwner // nil when owner.json was missing or unreadable
	Stale bool       // older than the app's timeout: probably a crashed run
	token string     // the holder's token, which ReleaseInspected checks; never shown
}

// LockHeld marks the error for exit-code classification.
func (e *LockedError) LockHeld() bool { return true }

func (e *LockedError) Error() string {
	if e.Owner == nil {
		return fmt.Sprintf("lock %s is held (owner unknown); if no run is active, remove it with `skiff lock release`", e.Dir)
	}
	o := e.Owner
	msg := fmt.Sprintf("lock %s is held by %s@%s (pid %d, %s %s, origin %s) since %s",
		e.Dir, o.Operator, o.Machine, o.PID, o.Op, o.App, o.Origin, o.Since.UTC().Format(time.RFC3339))
	if e.Stale {
		msg += "; it is STALE (older than the app's timeout): if that run is gone, remove it with `skiff lock release " + o.App + "`"
	}
	return msg
}

const acquireScript = `set -e
[ -d "$1" ] || mkdir -p "$1"
if mkdir "$2" 2>/dev/null; then
  printf '%s\n' "$3" > "$2/owner.json.tmp" && mv -f "$2/owner.json.tmp" "$2/owner.json"
  exit 0
fi
cat "$2/owner.json" 2>/dev/null || true
exit 3`

// releaseScript removes the lock $1 only when it still carries the token $2, checked in the same command, so
// that no run or operator frees a lock another run took since; otherwise it exits 4. Without a token (a lock
// whose owner could not be read, removed with --force) it removes the lock as it is. owner.json is one line
// (acquireScript), read with the shell's own read: a deploy's last command starts no process it can spare.
const releaseScript = `[ -d "$1" ] || exit 0
if [ -n "$2" ]; then
  o=; { IFS= read -r o || :; } 2>/dev/null < "$1/owner.json"
  case $o in *"\"token\":\"$2\""*) ;; *) exit 4 ;; esac
fi
rm -rf "$1"`

// maxOwnerBytes bounds owner.json as read back from a target.
const maxOwnerBytes = 64 << 10

// Lock is a held lock; Release frees it.
type Lock struct {
	c     runner
	sc    Conn // set when the lock was taken over SFTP (AcquireLockSFTP), which then frees it too
	dir   string
	owner LockOwner
}

// AcquireLock takes the app's lock on a target with mkdir, which is atomic. When the lock is held it returns
// a *LockedError naming the holder; a lock older than staleAfter is reported as stale but never broken here.
// It is the remote-command form of the lock, which earlier versions of skiff take: runs take the same lock,
// in the same files, with AcquireLockSFTP, and the tests hold the two to excluding each other.
func AcquireLock(ctx context.Context, c runner, l Layout, owner LockOwner, staleAfter time.Duration) (*Lock, error) {
	a, err := NewLockAttempt(c, l, owner)
	if err != nil {
		return nil, err
	}
	res, err := c.Run(ctx, a.Step.Command)
	var ee *remote.ExitError
	switch {
	case errors.As(err, &ee):
		return a.Outcome(ee.Status, res.Stdout, staleAfter)
	case err != nil:
		return nil, fmt.Errorf("lock: %w", err)
	}
	return a.Outcome(0, nil, staleAfter)
}

// LockAttempt is the lock about to be taken: the step that takes it, run alone (AcquireLock) or as the first
// step of a remote.Sequence that must run only under the lock, and what its outcome makes of it.
type LockAttempt struct {
	Step  remote.Step
	c     runner
	l     Layout
	owner LockOwner
}

// NewLockAttempt gives owner a fresh token and the time, and makes the step that takes the lock for it.
func NewLockAttempt(c runner, l Layout, owner LockOwner) (*LockAttempt, error) {
	tok := make([]byte, 12)
	if _, err := rand.Read(tok); err != nil {
		return nil, err
	}
	owner.Token = hex.EncodeToString(tok)
	if owner.Since.IsZero() {
		owner.Since = time.Now().UTC()
	}
	data, err := json.Marshal(owner)
	if err != nil {
		return nil, err
	}
	return &LockAttempt{Step: remote.Step{Command: remote.Script(acquireScript, l.SkiffDir(), l.LockDir(), string(data))},
		c: c, l: l, owner: owner}, nil
}

// Outcome is the lock the step took (status 0), the *LockedError of a held lock (status 3, its stdout the
// holder's owner.json), or an error for any other status.
func (a *LockAttempt) Outcome(status int, stdout []byte, staleAfter time.Duration) (*Lock, error) {
	switch status {
	case 0:
		return &Lock{c: a.c, dir: a.l.LockDir(), owner: a.owner}, nil
	case 3:
		return nil, lockedError(a.l, stdout, staleAfter)
	}
	return nil, fmt.Errorf("lock: taking %s failed with exit status %d", a.l.LockDir(), status)
}

func lockedError(l Layout, ownerJSON []byte, staleAfter time.Duration) *LockedError {
	le := &LockedError{Dir: l.LockDir()}
	if o, err := ParseLockOwner(ownerJSON); err == nil {
		le.token, o.Token = o.Token, ""
		le.Owner = o
		le.Stale = staleAfter > 0 && time.Since(o.Since) > staleAfter
	}
	return le
}

// tokenPattern is what AcquireLock writes as a token.
var tokenPattern = regexp.MustCompile(`^[0-9a-f]{24}$`)

// ParseLockOwner decodes and validates owner.json as read back from a target.
func ParseLockOwner(data []byte) (*LockOwner, error) {
	if len(data) > maxOwnerBytes {
		return nil, fmt.Errorf("owner.json is larger than %d bytes", maxOwnerBytes)
	}
	var o LockOwner
	if err := json.Unmarshal(bytes.TrimSpace(data), &o); err != nil {
		return nil, fmt.Errorf("owner.json: %w", err)
	}
	switch {
	case o.Op == "":
		return nil, errors.New("owner.json: no op")
	case o.Token != "" && !tokenPattern.MatchString(o.Token):
		return nil, errors.New("owner.json: invalid token")
	}
	return &o, nil
}

// Release frees the lock. It uses a fresh context when ctx is already cancelled, because a lock left behind
// after Ctrl-C blocks the next run.
func (k *Lock) Release(ctx context.Context) error {
	_, err := k.ReleaseAfter(ctx)
	return err
}

// ReleaseAfter runs steps and then frees the lock, in one remote command (remote.Sequence): what ends a run
// under the lock (its history line, retention) costs no session of its own. The lock is freed whatever the
// steps did. stepErrs has one error per step (nil when it succeeded); err is the unlock's or the
// connection's.
func (k *Lock) ReleaseAfter(ctx context.Context, steps ...remote.Step) (stepErrs []error, err error) {
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
	}
	if k.sc != nil {
		return k.releaseAfterSFTP(ctx, steps)
	}
	unlock := remote.Step{Command: remote.Script(releaseScript, k.dir, k.owner.Token), Always: true}
	if len(steps) == 0 {
		if _, err := k.c.Run(ctx, unlock.Command); err != nil {
			return nil, fmt.Errorf("release lock %s: %w", k.dir, lockChanged(err))
		}
		return nil, nil
	}
	cmd, err := remote.Sequence(append(steps, unlock)...)
	if err != nil {
		return nil, err
	}
	res, err := k.c.Run(ctx, cmd)
	var ee *remote.ExitError
	if err != nil && !errors.As(err, &ee) {
		err = fmt.Errorf("release lock %s: %w", k.dir, err)
		return slices.Repeat([]error{err}, len(steps)), err
	}
	errs := remote.SequenceErrors(res.Stdout, len(steps)+1, ee)
	if uerr := errs[len(steps)]; uerr != nil {
		return errs[:len(steps)], fmt.Errorf("release lock %s: %w", k.dir, lockChanged(uerr))
	}
	return errs[:len(steps)], nil
}

// lockChanged explains releaseScript's exit status 4.
func lockChanged(err error) error {
	var ee *remote.ExitError
	if errors.As(err, &ee) && ee.Status == 4 {
		return errLockChanged
	}
	return err
}

// LockStatus reads who holds the app's lock, or nil when it is free.
func LockStatus(ctx context.Context, c runner, l Layout, staleAfter time.Duration) (*LockedError, error) {
	cmd := remote.Script(`[ -d "$1" ] || exit 0; head -c "$2" "$1/owner.json" 2>/dev/null; echo; echo held`, l.LockDir(), strconv.Itoa(maxOwnerBytes+1))
	cmd.MaxOutput, cmd.ReadOnly = maxOwnerBytes+16, true
	res, err := c.Run(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("lock status: %w", err)
	}
	out := strings.TrimSpace(string(res.Stdout))
	if !strings.HasSuffix(out, "held") {
		return nil, nil
	}
	return lockedError(l, []byte(strings.TrimSuffix(out, "held")), staleAfter), nil
}

// ReleaseInspected removes the lock that LockStatus returned as held, and only that one: the remote command
// checks that the lock still carries the token that was read. A lock younger than minAge (the app's timeout)
// may belong to a run still going, and one without an owner to a run taking it right now: both are refused
// unless force.
func ReleaseInspected(ctx context.Context, c runner, held *LockedError, minAge time.Duration, force bool) error {
	if !force {
		switch {
		case held.Owner == nil:
			return fmt.Errorf("%w; not removed, since its run cannot be told apart from one taking it now: use --force", held)
		case time.Since(held.Owner.Since) < minAge:
			return fmt.Errorf("%w; not removed, since it is younger than the app's timeout (%s) and its run may still be going: use --force", held, minAge)
		}
	}
	if _, err := c.Run(ctx, remote.Script(releaseScript, held.Dir, held.token)); err != nil {
		return fmt.Errorf("release lock %s: %w", held.Dir, lockChanged(err))
	}
	return nil
}

// Conn is what reading and changing an app's state on a target takes from the one connection to the host:
// commands, and SFTP for reads that a shell would only slow down.
type Conn interface {
	runner
	SFTP(ctx context.Context) (*sftp.Client, error)
}
