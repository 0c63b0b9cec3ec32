package remote

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

const (
	// killGrace is how long a cancelled command gets between SIGTERM and SIGKILL.
	killGrace = 2 * time.Second
	// stderrTailLines is how many stderr lines an ExitError keeps.
	stderrTailLines = 10
	// maxLine caps the length of one line handed to a callback; longer lines
	// are split, so that a remote command cannot exhaust memory.
	maxLine = 1 << 20
)

// Run runs cmd on the target and waits for it. Output streams to the
// command's line callbacks, or is collected in the Result. A non-zero exit
// returns the Result together with an *ExitError. When ctx ends first the
// remote process group gets SIGTERM, then SIGKILL after a short grace, and the
// session is closed.
func (c *Conn) Run(ctx context.Context, cmd Command) (*Result, error) {
	if err := cmd.Validate(); err != nil {
		return nil, fmt.Errorf("host %s: %w", c.target.Name, err)
	}
	line := cmd.String()
	release, err := c.acquireSession(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	var sess *ssh.Session
	err = c.openRetry(ctx, func() (err error) {
		sess, err = c.client.NewSession()
		return err
	})
	if err != nil {
		return nil, c.wrapErr(fmt.Errorf("opening session: %w", err))
	}
	defer sess.Close()
	stdout, err := sess.StdoutPipe()
	if err != nil {
		return nil, c.wrapErr(err)
	}
	stderr, err := sess.StderrPipe()
	if err != nil {
		return nil, c.wrapErr(err)
	}
	sess.Stdin = cmd.Stdin

	c.logf("host %s: run: %s", c.target.Name, line)
	start := time.Now()
	if err := sess.Start(line); err != nil {
		return nil, c.wrapErr(fmt.Errorf("starting command: %w", err))
	}
	res := &Result{}
	tail := &tailLines{max: stderrTailLines}
	var outBuf, errBuf bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); pump(stdout, cmd.Stdout, &outBuf, nil) }()
	go func() { defer wg.Done(); pump(stderr, cmd.Stderr, &errBuf, tail) }()
	waited := make(chan error, 1)
	go func() {
		wg.Wait()
		waited <- sess.Wait()
	}()

	select {
	case err = <-waited:
	case <-ctx.Done():
		c.stop(sess, waited)
		return nil, fmt.Errorf("host %s: %s: %w", c.target.Name, shorten(line), ctx.Err())
	}
	res.Duration = time.Since(start)
	res.Stdout, res.Stderr = outBuf.Bytes(), errBuf.Bytes()
	if cmd.Stderr == nil {
		for _, l := range strings.Split(strings.TrimRight(errBuf.String(), "\n"), "\n") {
			tail.add(l)
		}
	}

	var exitErr *ssh.ExitError
	switch {
	case err == nil:
		return res, nil
	case errors.As(err, &exitErr):
		res.Status = exitErr.ExitStatus()
		return res, &ExitError{Status: res.Status, Signal: exitErr.Signal(), Stderr: tail.String()}
	default:
		return nil, c.wrapErr(fmt.Errorf("%s: %w", shorten(line), err))
	}
}

// stop ends a cancelled command: SIGTERM to its process group, SIGKILL if it
// is still there after killGrace, then the session is closed (which also ends
// its pipes, so a command that ignores signals gets SIGPIPE on its next write).
func (c *Conn) stop(sess *ssh.Session, waited <-chan error) {
	if err := sess.Signal(ssh.SIGTERM); err != nil {
		c.logf("host %s: sending SIGTERM: %v", c.target.Name, err)
	}
	t := time.NewTimer(killGrace)
	defer t.Stop()
	select {
	case <-waited:
	case <-c.done:
	case <-t.C:
		c.logf("host %s: command still running %s after SIGTERM, sending SIGKILL", c.target.Name, killGrace)
		_ = sess.Signal(ssh.SIGKILL)
	}
	sess.Close()
}

// pump drains r. With a callback it hands over one line at a time (keeping
// the last ones in tail, when given); without one it collects r in buf.
func pump(r io.Reader, cb func(string), buf *bytes.Buffer, tail *tailLines) {
	if cb == nil {
		_, _ = io.Copy(buf, r)
		return
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var partial []byte
	for {
		chunk, err := br.ReadSlice('\n')
		partial = append(partial, chunk...)
		complete := err == nil
		if complete || len(partial) >= maxLine || (err != nil && err != bufio.ErrBufferFull && len(partial) > 0) {
			l := strings.TrimSuffix(string(partial), "\n")
			cb(l)
			if tail != nil {
				tail.add(l)
			}
			partial = partial[:0]
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

// shorten trims a command line for error messages.
func shorten(line string) string {
	const max = 80
	if len(line) <= max {
		return line
	}
	return line[:max] + "…"
}
