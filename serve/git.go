package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// fetchTimeout bounds one fetch of a source app's commit.
const fetchTimeout = 10 * time.Minute

// fetchTree fetches commit sha (or, without one, the tip of ref) from repo into a bare cache repository of
// the app under cache, and writes that commit's tree to cache/trees/APP-SHA. It returns the tree's
// directory and the full commit id. The newest trees are kept for reuse; older ones are removed.
func fetchTree(ctx context.Context, cache, app, repo, ref, sha string, logf func(string, ...any)) (string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	bare := filepath.Join(cache, app+".git")
	if _, err := os.Stat(filepath.Join(bare, "HEAD")); err != nil {
		if err := os.MkdirAll(bare, 0o700); err != nil {
			return "", "", fmt.Errorf("fetch: %w", err)
		}
		if _, err := git(ctx, bare, "init", "--bare", "--quiet"); err != nil {
			return "", "", err
		}
	}
	want := sha
	if want == "" {
		want = ref
	}
	logf("fetching %s from %s", want, redactURL(repo))
	// A commit is fetched by its id (GitHub, GitLab and git's protocol v2 allow it); when the server refuses,
	// the ref is fetched and must contain it.
	if _, err := git(ctx, bare, "fetch", "--quiet", "--no-tags", "--depth=1", "--", repo, want); err != nil {
		if sha == "" || ref == "" {
			return "", "", redactErr(err, repo)
		}
		if _, err2 := git(ctx, bare, "fetch", "--quiet", "--no-tags", "--", repo, ref); err2 != nil {
			return "", "", redactErr(err, repo)
		}
	}
	target := "FETCH_HEAD"
	if sha != "" {
		target = sha
	}
	out, err := git(ctx, bare, "rev-parse", "--verify", "--quiet", target+"^{commit}")
	if err != nil {
		return "", "", fmt.Errorf("fetch: %s is not a commit of %s", want, redactURL(repo))
	}
	commit := strings.TrimSpace(string(out))
	dir := filepath.Join(cache, "trees", app+"-"+commit)
	if _, err := os.Stat(dir); err == nil {
		return dir, commit, nil
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return "", "", fmt.Errorf("fetch: %w", err)
	}
	archive := exec.CommandContext(ctx, "git", "-C", bare, "archive", "--format=tar", commit)
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", tmp)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return "", "", err
	}
	untar.Stdin = pipe
	var errBuf bytes.Buffer
	archive.Stderr, untar.Stderr = &errBuf, &errBuf
	if err := untar.Start(); err != nil {
		return "", "", fmt.Errorf("fetch: tar: %w", err)
	}
	aerr := archive.Run()
	if uerr := untar.Wait(); aerr == nil && uerr != nil {
		aerr = uerr
	}
	if aerr != nil {
		os.RemoveAll(tmp)
		return "", "", fmt.Errorf("fetch: write tree of %s: %v: %s", commit, aerr, strings.TrimSpace(errBuf.String()))
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", "", fmt.Errorf("fetch: %w", err)
	}
	pruneTrees(filepath.Join(cache, "trees"), app+"-", dir, 3)
	logf("fetched %s: commit %s", want, commit)
	return dir, commit, nil
}

// git runs git in dir with no prompt for credentials, bounded by ctx.
func git(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_SSH_COMMAND=ssh -o BatchMode=yes")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 500 {
			msg = msg[:500] + "…"
		}
		return nil, fmt.Errorf("git %s: %w: %s", args[0], err, msg)
	}
	return out, nil
}

// pruneTrees keeps the newest keep trees of an app (by modification time) besides current.
func pruneTrees(dir, prefix, current string, keep int) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type tree struct {
		path string
		mod  time.Time
	}
	var trees []tree
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if info, err := e.Info(); err == nil && p != current {
			trees = append(trees, tree{p, info.ModTime()})
		}
	}
	for len(trees) > keep-1 {
		oldest := 0
		for i, t := range trees {
			if t.mod.Before(trees[oldest].mod) {
				oldest = i
			}
		}
		os.RemoveAll(trees[oldest].path)
		trees = append(trees[:oldest], trees[oldest+1:]...)
	}
}

// redactErr rewrites an error of git so that a password in the repository URL does not show.
func redactErr(err error, repo string) error {
	if safe := redactURL(repo); safe != repo {
		return errors.New(strings.ReplaceAll(err.Error(), repo, safe))
	}
	return err
}

// redactURL hides the password of a URL with credentials in it.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok || !strings.Contains(userinfo, ":") {
		return u
	}
	user, _, _ := strings.Cut(userinfo, ":")
	return scheme + "://" + user + ":***@" + host
}
