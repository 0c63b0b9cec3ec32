package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"time"
)

// TestUserName is the unprivileged account that test hosts accept logins for
// when the tests run as root. It is created once per machine and kept.
const TestUserName = "skiff-test"

// loginUser is the account every test host lets the user key log in as.
type loginUser struct {
	name string
	uid  int
	gid  int
	home string
}

// resolveUser returns the account to log in as: the unprivileged
// TestUserName when running as root (creating it if needed), the current
// user otherwise, because an unprivileged sshd can only log in as itself.
func resolveUser(ctx context.Context) (loginUser, error) {
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return loginUser{}, fmt.Errorf("testenv: current user: %w", err)
		}
		return toLoginUser(u)
	}
	return ensureTestUser(ctx)
}

// ensureTestUser creates TestUserName if it is missing and makes sure its
// account is not locked (sshd refuses locked accounts when UsePAM is off).
// Several test binaries may do this at once, so every step is retried while
// the password database is locked by another one.
func ensureTestUser(ctx context.Context) (loginUser, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var lastErr error
	for {
		u, err := user.Lookup(TestUserName)
		if err == nil {
			locked, lerr := shadowLocked(TestUserName)
			if lerr != nil {
				return loginUser{}, lerr
			}
			if !locked {
				return toLoginUser(u)
			}
			lastErr = runAdmin(ctx, "usermod", "--password", "*", TestUserName)
		} else {
			var unknown user.UnknownUserError
			if !errors.As(err, &unknown) {
				return loginUser{}, fmt.Errorf("testenv: look up user %s: %w", TestUserName, err)
			}
			lastErr = runAdmin(ctx, "useradd", "--create-home", "--shell", "/bin/sh",
				"--password", "*", TestUserName)
		}
		if lastErr == nil {
			continue
		}
		if errors.Is(lastErr, ErrMissingTool) {
			return loginUser{}, lastErr
		}
		select {
		case <-ctx.Done():
			return loginUser{}, fmt.Errorf("testenv: prepare user %s: %w", TestUserName, lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// runAdmin runs a user-administration command and folds its output into the
// error.
func runAdmin(ctx context.Context, name string, args ...string) error {
	path, err := exec.LookPath(name)
	if err != nil {
		path = "/usr/sbin/" + name
		if _, serr := os.Stat(path); serr != nil {
			return fmt.Errorf("testenv: %s: %w (%w)", name, ErrMissingTool, err)
		}
	}
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("testenv: %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// shadowLocked reports whether the account's password field in /etc/shadow
// starts with "!", which OpenSSH treats as a locked account.
func shadowLocked(name string) (bool, error) {
	f, err := os.Open("/etc/shadow")
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("testenv: read shadow: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.SplitN(sc.Text(), ":", 3)
		if len(fields) >= 2 && fields[0] == name {
			return strings.HasPrefix(fields[1], "!"), nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("testenv: read shadow: %w", err)
	}
	return false, nil
}

func toLoginUser(u *user.User) (loginUser, error) {
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return loginUser{}, fmt.Errorf("testenv: uid of %s: %w", u.Username, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return loginUser{}, fmt.Errorf("testenv: gid of %s: %w", u.Username, err)
	}
	return loginUser{name: u.Username, uid: uid, gid: gid, home: u.HomeDir}, nil
}
