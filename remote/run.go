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
	// DefaultMaxOutput bounds what Run collects of one output stream that has
	// no line callback, when Command.MaxOutput is zero.
	DefaultMaxOutput = 16 << 20
)

// OutputTooLargeError says that a command wrote more to a collected stream
// than its bound allows; the command was stopped.
type OutputTooLargeError struct {
	Host, Command, Stream string
	Limit                 int64
}

func (e *OutputTooLargeError) Error() string {
	return fmt.Sprintf("host %s: %s: %s larger than %d bytes, the most skiff reads of it", e.Host, e.Command, e.Stream, e.Limit)
}

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
	c.counts.commands.Add(1)
	var sess *ssh.Session
	err = c.openRetry(ctx, func() (err error) {
		sess, err = c.newSession(ctx)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("host %s: opening session: %w", c.target.Name, ctx.Err())
		}
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
	if err := c.await(ctx, func() error { return sess.Start(line) }, func() { sess.Close() }); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("host %s: starting %s: %w", c.target.Name, shorten(line), ctx.Err())
		}
		return nil, c.wrapErr(fmt.Errorf("starting command: %w", err))
	}
	res := &Result{}
	tail := &tailLines{max: stderrTailLines}
	limit := cmd.MaxOutput
	if limit <= 0 {
		limit = DefaultMaxOutput
	}
	var outBuf, errBuf bytes.Buffer
	overflow := make(chan string, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if !pump(stdout, cmd.Stdout, &outBuf, nil, limit) {
			overflow <- "standard output"
			_, _ = io.Copy(io.Discard, stdout) // until the stopped command's channel closes
		}
	}()
	go func() {
		defer wg.Done()
		if !pump(stderr, cmd.Stderr, &errBuf, tail, limit) {
			overflow <- "standard error"
			_, _ = io.Copy(io.Discard, stderr) // until the stopped command's channel closes
		}
	}()
	waited := make(chan error, 1)
	go func() {
		wg.Wait()
		waited <- sess.Wait()
	}()

	select {
	case err = <-waited:
	case stream := <-overflow:
		c.stop(sess, waited)
		return nil, &OutputTooLargeError{Host: c.target.Name, Command: shorten(line), Stream: stream, Limit: limit}
	case <-ctx.Done():
		c.stop(sess, waited)
		return nil, fmt.Errorf("host %s: %s: %w", c.target.Name, shorten(line), ctx.Err())
	}
	select {
	case stream := <-overflow:
		return nil, &OutputTooLargeError{Host: c.target.Name, Command: shorten(line), Stream: stream, Limit: limit}
	default:
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

// newSession opens a session, giving up when ctx ends: x/crypto/ssh waits for the peer's answer without a
// deadline, which on a host whose link went down is until keepalive gives up on it.
func (c *Conn) newSession(ctx context.Context) (*ssh.Session, error) {
	var sess *ssh.Session
	err := c.await(ctx, func() (err error) {
		sess, err = c.client.NewSession()
		return err
	}, func() {
		if sess != nil {
			sess.Close()
		}
	})
	return sess, err
}

// await runs fn, a request to the peer that takes no context, and returns its error, or ctx's when ctx ends
// first; abandon then runs once fn has returned, to undo what it did.
func (c *Conn) await(ctx context.Context, fn func() error, abandon func()) error {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		go func() {
			<-done
			abandon()
		}()
		return ctx.Err()
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
// the last ones in tail, when given); without one it collects r in buf, up to
// limit bytes: it returns false, having stopped reading, when r holds more.
func pump(r io.Reader, cb func(string), buf *bytes.Buffer, tail *tailLines, limit int64) bool {
	if cb == nil {
		_, _ = io.Copy(buf, io.LimitReader(r, limit+1))
		return int64(buf.Len()) <= limit
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
			return true
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
