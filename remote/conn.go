package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

const (
	// keepaliveMisses is how many keepalive intervals may pass without a
	// reply before the connection is declared lost.
	keepaliveMisses = 3
	// sessionRetryFor bounds how long a refused session open is retried.
	sessionRetryFor = 5 * time.Second
)

// Conn is an authenticated SSH connection to one target, shared by every
// caller of Pool.Get for that target. It is safe for concurrent use; sessions
// beyond Options.MaxSessions wait for a free slot.
type Conn struct {
	target      *Target
	client      *ssh.Client
	fingerprint string
	sessions    chan struct{}
	logf        func(format string, args ...any)

	done   chan struct{} // closed when the connection has ended
	lostMu sync.Mutex
	lost   error

	sftpMu sync.Mutex
	sftp   *sftp.Client

	counts *counters // see Counts
}

// newConn wraps an authenticated client and starts watching it; counts are those its connection was dialed
// with (nil for none).
func newConn(t *Target, client *ssh.Client, fingerprint string, opts Options, counts *counters) *Conn {
	if counts == nil {
		counts = &counters{}
	}
	c := &Conn{
		target:      t,
		client:      client,
		fingerprint: fingerprint,
		sessions:    make(chan struct{}, opts.MaxSessions),
		logf:        opts.Logf,
		done:        make(chan struct{}),
		counts:      counts,
	}
	go func() {
		err := client.Wait()
		c.logf("host %s: connection ended: %v", t.Name, err)
		close(c.done)
	}()
	interval := t.Keepalive
	if interval == 0 {
		interval = DefaultKeepalive
	}
	if interval > 0 {
		go c.keepalive(interval)
	}
	return c
}

// Target returns the target this connection was dialed for.
func (c *Conn) Target() *Target { return c.target }

// HostKeyFingerprint returns the SHA256 fingerprint of the host key that was
// verified during the handshake ("SHA256:…").
func (c *Conn) HostKeyFingerprint() string { return c.fingerprint }

// Close closes the connection for every caller sharing it; the pool dials
// again on the next Get. Callers normally leave closing to Pool.Close.
func (c *Conn) Close() error {
	err := c.client.Close()
	<-c.done
	return err
}

// isClosed reports whether the connection has ended.
func (c *Conn) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// keepalive sends keepalive@openssh.com requests every interval and closes
// the connection when keepaliveMisses intervals pass without a reply, so that
// operations waiting on a dead peer fail instead of hanging.
func (c *Conn) keepalive(interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	replies := make(chan error, 1)
	pending, missed := false, 0
	for {
		select {
		case <-c.done:
			return
		case err := <-replies:
			if err != nil {
				return
			}
			pending, missed = false, 0
		case <-ticker.C:
			if pending {
				missed++
				if missed >= keepaliveMisses {
					c.lose()
					return
				}
				continue
			}
			pending = true
			go func() {
				// Any reply, even a refusal, proves the peer is alive.
				_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
				replies <- err
			}()
		}
	}
}

// lose records that keepalive found the peer dead and closes the connection.
func (c *Conn) lose() {
	c.lostMu.Lock()
	c.lost = fmt.Errorf("host %s: %w", c.target.Name, ErrConnectionLost)
	c.lostMu.Unlock()
	c.logf("host %s: no keepalive reply, closing connection", c.target.Name)
	c.client.Close()
}

// wrapErr explains an error of an operation on this connection: a lost or
// closed connection is named as such.
func (c *Conn) wrapErr(err error) error {
	c.lostMu.Lock()
	lost := c.lost
	c.lostMu.Unlock()
	switch {
	case lost != nil:
		return fmt.Errorf("%w (%v)", lost, err)
	case c.isClosed():
		return fmt.Errorf("host %s: connection closed: %w", c.target.Name, err)
	default:
		return fmt.Errorf("host %s: %w", c.target.Name, err)
	}
}

// acquireSession takes one of the connection's session slots, waiting for one
// while ctx lasts; the returned function gives it back.
func (c *Conn) acquireSession(ctx context.Context) (func(), error) {
	select {
	case c.sessions <- struct{}{}:
		return func() { <-c.sessions }, nil
	case <-c.done:
		return nil, c.wrapErr(net.ErrClosed)
	case <-ctx.Done():
		return nil, fmt.Errorf("host %s: waiting for a session: %w", c.target.Name, ctx.Err())
	}
}

// openRetry runs open (which opens a session) until it succeeds, fails for
// another reason than a refused session, or ctx ends. sshd frees a closed
// session only after it has handled the messages that arrived along with the
// close, so a session opened right after another one closed can be refused
// ("no more sessions") although fewer than MaxSessions are open; a moment
// later it is accepted.
func (c *Conn) openRetry(ctx context.Context, open func() error) error {
	delay := 5 * time.Millisecond
	deadline := time.Now().Add(sessionRetryFor)
	for {
		err := open()
		var refused *ssh.OpenChannelError
		if err == nil || !errors.As(err, &refused) || time.Now().After(deadline) ||
			(refused.Reason != ssh.Prohibited && refused.Reason != ssh.ConnectionFailed) {
			return err
		}
		c.logf("host %s: session refused (%v), retrying", c.target.Name, err)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		case <-c.done:
			t.Stop()
			return err
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// Dial opens a connection from the target to addr: network "tcp" with
// "host:port" (direct-tcpip) or "unix" with a socket path
// (direct-streamlocal@openssh.com). Tunnels do not count as sessions.
func (c *Conn) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6", "unix":
	default:
		return nil, fmt.Errorf("host %s: dial: unsupported network %q", c.target.Name, network)
	}
	c.counts.tunnels.Add(1)
	nc, err := c.client.DialContext(ctx, network, addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("host %s: dial %s %s on target: %w", c.target.Name, network, addr, ctx.Err())
		}
		return nil, c.wrapErr(fmt.Errorf("dial %s %s on target: %w", network, addr, err))
	}
	return nc, nil
}

// WaitPort dials addr on the target every interval until a connection is
// accepted (it is closed again at once) or ctx ends; the error then says what
// the last attempt saw.
func (c *Conn) WaitPort(ctx context.Context, network, addr string, interval time.Duration) error {
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	start := time.Now()
	var last error
	for {
		nc, err := c.Dial(ctx, network, addr)
		if err == nil {
			nc.Close()
			return nil
		}
		if ctx.Err() == nil {
			last = err
		}
		if c.isClosed() {
			return err
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			if last == nil {
				last = errors.New("no attempt finished")
			}
			return fmt.Errorf("host %s: %s %s not accepting connections after %s: %w (last attempt: %v)",
				c.target.Name, network, addr, time.Since(start).Round(time.Millisecond), ctx.Err(), last)
		case <-t.C:
		}
	}
}

// SFTP returns the connection's SFTP client, creating it on first use. The
// client is shared (it is safe for concurrent use), writes concurrently, and
// holds one of the connection's session slots while it lives; do not close it.
func (c *Conn) SFTP(ctx context.Context) (*sftp.Client, error) {
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	if c.sftp != nil {
		return c.sftp, nil
	}
	release, err := c.acquireSession(ctx)
	if err != nil {
		return nil, err
	}
	type made struct {
		client *sftp.Client
		sess   io.Closer
		err    error
	}
	ch := make(chan made, 1)
	go func() {
		var m made
		m.err = c.openRetry(ctx, func() (err error) {
			m.client, m.sess, err = c.startSFTP()
			return err
		})
		ch <- m
	}()
	select {
	case m := <-ch:
		if m.err != nil {
			release()
			return nil, c.wrapErr(fmt.Errorf("starting sftp: %w", m.err))
		}
		c.sftp = m.client
		c.counts.sftpStarts.Add(1)
		go c.watchSFTP(m.client, m.sess, release)
		return m.client, nil
	case <-ctx.Done():
		go func() {
			if m := <-ch; m.client != nil {
				m.client.Close()
				m.sess.Close()
			}
			release()
		}()
		return nil, fmt.Errorf("host %s: starting sftp: %w", c.target.Name, ctx.Err())
	}
}

// startSFTP opens a session, starts the sftp subsystem in it and returns a client over it that writes
// concurrently, coalesces its requests and counts them, with what ends the session.
func (c *Conn) startSFTP() (*sftp.Client, io.Closer, error) {
	sess, err := c.client.NewSession()
	if err != nil {
		return nil, nil, err
	}
	w, err := sess.StdinPipe()
	if err != nil {
		sess.Close()
		return nil, nil, err
	}
	r, err := sess.StdoutPipe()
	if err != nil {
		sess.Close()
		return nil, nil, err
	}
	if err := sess.RequestSubsystem("sftp"); err != nil {
		sess.Close()
		return nil, nil, err
	}
	in := newCoalescer(w)
	cl, err := sftp.NewClientPipe(r, &packetCounter{WriteCloser: in, n: &c.counts.sftpRequests},
		sftp.UseConcurrentWrites(true),
		sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		in.Close()
		sess.Close()
		return nil, nil, err
	}
	return cl, sftpSession{sess, in}, nil
}

// sftpSession ends an SFTP client's session and its coalescer.
type sftpSession struct {
	*ssh.Session
	in *coalescer
}

func (s sftpSession) Close() error {
	s.in.Close()
	return s.Session.Close()
}

// watchSFTP forgets the SFTP client, closes its session and frees its session slot when it ends, so that the
// next SFTP call starts a new one.
func (c *Conn) watchSFTP(cl *sftp.Client, sess io.Closer, release func()) {
	_ = cl.Wait()
	sess.Close()
	c.sftpMu.Lock()
	if c.sftp == cl {
		c.sftp = nil
	}
	c.sftpMu.Unlock()
	release()
}
