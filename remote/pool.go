package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Defaults applied where Options and Target leave a field at zero.
const (
	DefaultMaxHandshakes  = 8
	DefaultMaxSessions    = 8
	DefaultConnectTimeout = 10 * time.Second
	DefaultKeepalive      = 15 * time.Second
)

// Options configure a Pool: trust, credentials and limits shared by every target.
type Options struct {
	// AcceptNewHostKeys appends keys of hosts that are not in known_hosts to the
	// target's known_hosts file, like OpenSSH StrictHostKeyChecking=accept-new.
	// A key that differs from a recorded one is never accepted.
	AcceptNewHostKeys bool
	// MaxHandshakes caps concurrent handshakes across the pool (default 8), so
	// that sshd's MaxStartups and the local CPU are not overrun however many
	// hosts the caller works on at once.
	MaxHandshakes int
	// MaxSessions caps concurrent sessions per connection (default 8; OpenSSH
	// allows 10). An SFTP client holds one.
	MaxSessions int
	// KeyPEM is a whole private key (CI passes it in SKIFF_SSH_KEY), offered
	// before the identity files.
	KeyPEM []byte
	// Passphrase decrypts encrypted keys (SKIFF_SSH_PASSPHRASE).
	Passphrase []byte
	// KnownHostsData is known_hosts content given whole (SKIFF_KNOWN_HOSTS),
	// trusted in addition to each target's known_hosts file.
	KnownHostsData []byte
	// GlobalKnownHosts is the system-wide known_hosts file, read for every
	// target and never written; "" means GlobalKnownHosts.
	GlobalKnownHosts string
	// AgentSocket is the ssh-agent socket (SSH_AUTH_SOCK); "" means no agent.
	AgentSocket string
	// Logf receives debug messages; nil discards them.
	Logf func(format string, args ...any)
}

// Target describes one host to connect to.
type Target struct {
	// Name identifies the host in messages and in the pool: one connection per name.
	Name string
	// Address is a host name or IP address; Port defaults to 22.
	Address string
	Port    int
	// User defaults to the local user name.
	User string
	// IdentityFiles are private key files; missing ones are skipped.
	IdentityFiles []string
	// KnownHosts is the known_hosts file, DefaultKnownHosts when empty; a
	// missing file counts as empty. Accept-new writes to it.
	KnownHosts string
	// ConnectTimeout bounds the TCP connect and the SSH handshake (default 10s).
	ConnectTimeout time.Duration
	// Keepalive is the interval of keepalive requests (default 15s, negative
	// disables); after 3 unanswered ones the connection is closed.
	Keepalive time.Duration
	// Jump, when set, is the host this one is reached through (ProxyJump).
	Jump *Target
}

// hostport returns the address to dial, "host:port".
func (t *Target) hostport() string {
	port := t.Port
	if port == 0 {
		port = 22
	}
	return net.JoinHostPort(t.Address, strconv.Itoa(port))
}

// validate checks the fields a dial needs and that the jump chain has no loop.
func (t *Target) validate() error {
	seen := map[string]bool{}
	for h := t; h != nil; h = h.Jump {
		switch {
		case h.Name == "":
			return errors.New("target has no name")
		case h.Address == "":
			return fmt.Errorf("host %s: no address", h.Name)
		case h.Port < 0 || h.Port > 65535:
			return fmt.Errorf("host %s: invalid port %d", h.Name, h.Port)
		case seen[h.Name]:
			return fmt.Errorf("host %s: jump hosts form a loop through %s", t.Name, h.Name)
		}
		seen[h.Name] = true
	}
	return nil
}

// Pool dials targets and keeps one connection per target name, shared by every
// caller and by the targets that jump through it. It is safe for concurrent use.
type Pool struct {
	opts       Options
	keys       *keyring
	handshakes chan struct{}
	appendMu   sync.Mutex
	knownHosts knownHostsCache
	ctx        context.Context
	cancel     context.CancelFunc

	dataOnce sync.Once
	dataCB   ssh.HostKeyCallback
	dataFile string
	dataErr  error

	mu      sync.Mutex
	closed  bool
	entries map[string]*entry
}

// entry is one target's connection, or the dial in progress that every
// concurrent Get for the name waits on.
type entry struct {
	target *Target
	done   chan struct{}
	conn   *Conn
	err    error
}

// NewPool returns an empty pool; connections are made by Get.
func NewPool(opts Options) *Pool {
	if opts.MaxHandshakes <= 0 {
		opts.MaxHandshakes = DefaultMaxHandshakes
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool{
		opts:       opts,
		keys:       &keyring{opts: opts},
		handshakes: make(chan struct{}, opts.MaxHandshakes),
		ctx:        ctx,
		cancel:     cancel,
		entries:    map[string]*entry{},
	}
}

// Get returns the connection to t, dialing it (and its jump hosts) if needed.
// Concurrent calls for the same name share one dial; a connection that has
// closed or failed is dialed again. ctx bounds only this caller's wait: the
// dial itself is bounded by t.ConnectTimeout and by Close.
func (p *Pool) Get(ctx context.Context, t *Target) (*Conn, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("remote: pool is closed")
	}
	e := p.entries[t.Name]
	if e != nil {
		select {
		case <-e.done:
			if e.err != nil || e.conn.isClosed() {
				e = nil
			}
		default:
		}
	}
	if e == nil {
		e = &entry{target: t, done: make(chan struct{})}
		p.entries[t.Name] = e
		go p.fill(e, t)
	}
	p.mu.Unlock()

	select {
	case <-e.done:
		return e.conn, e.err
	case <-ctx.Done():
		return nil, fmt.Errorf("host %s: waiting for connection: %w", t.Name, ctx.Err())
	}
}

// fill dials t for entry e and publishes the outcome.
func (p *Pool) fill(e *entry, t *Target) {
	conn, err := p.dial(t)
	p.mu.Lock()
	if err == nil && p.closed {
		conn.Close()
		conn, err = nil, fmt.Errorf("host %s: %w", t.Name, errors.New("remote: pool is closed"))
	}
	e.conn, e.err = conn, err
	close(e.done)
	p.mu.Unlock()
}

// Release closes the connection to t, so that a run over many hosts holds only the connections of the hosts
// still in flight (their buffers here, their sessions and sftp-server on the targets); the next Get dials
// again. A connection that another one goes through (as its jump host), or that one being dialed may go
// through, stays open, as does a dial in progress.
func (p *Pool) Release(t *Target) {
	p.mu.Lock()
	e := p.entries[t.Name]
	if e == nil || !isDone(e.done) {
		p.mu.Unlock()
		return
	}
	for name, o := range p.entries {
		if name != t.Name && (!isDone(o.done) || (o.conn != nil && !o.conn.isClosed())) && jumpsThrough(o.target, t.Name) {
			p.mu.Unlock()
			return
		}
	}
	delete(p.entries, t.Name)
	p.mu.Unlock()
	if e.conn != nil && !e.conn.isClosed() {
		if err := e.conn.Close(); err != nil {
			p.opts.Logf("host %s: close: %v", t.Name, err)
		}
	}
}

// isDone reports whether ch is closed.
func isDone(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// jumpsThrough reports whether t is reached through the host named name.
func jumpsThrough(t *Target, name string) bool {
	for j := t.Jump; j != nil; j = j.Jump {
		if j.Name == name {
			return true
		}
	}
	return false
}

// Close closes every connection and aborts dials in progress.
func (p *Pool) Close() error {
	p.cancel()
	p.mu.Lock()
	p.closed = true
	entries := p.entries
	p.entries = map[string]*entry{}
	p.mu.Unlock()
	var errs []error
	for _, e := range entries {
		select {
		case <-e.done:
			if e.conn != nil && !e.conn.isClosed() {
				if err := e.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
					errs = append(errs, fmt.Errorf("host %s: close: %w", e.conn.target.Name, err))
				}
			}
		default: // fill closes it when the aborted dial returns
		}
	}
	return errors.Join(errs...)
}

// knownHostsData parses Options.KnownHostsData once.
func (p *Pool) knownHostsData() (ssh.HostKeyCallback, string, error) {
	p.dataOnce.Do(func() {
		if len(p.opts.KnownHostsData) > 0 {
			p.dataCB, p.dataFile, p.dataErr = parseKnownHostsData(p.opts.KnownHostsData)
		}
	})
	return p.dataCB, p.dataFile, p.dataErr
}

// dial connects and authenticates to t, through its jump host when it has one.
func (p *Pool) dial(t *Target) (*Conn, error) {
	hostport := t.hostport()
	fail := func(stage string, err error) error {
		return &ConnectError{Host: t.Name, Addr: hostport, Stage: stage, Err: err}
	}
	var jump *Conn
	if t.Jump != nil {
		var err error
		if jump, err = p.Get(p.ctx, t.Jump); err != nil {
			return nil, fail("jump", fmt.Errorf("via %s: %w", t.Jump.Name, err))
		}
	}

	select {
	case p.handshakes <- struct{}{}:
		defer func() { <-p.handshakes }()
	case <-p.ctx.Done():
		return nil, fail("connect", errors.New("pool closed"))
	}
	timeout := t.ConnectTimeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()

	var nc net.Conn
	var err error
	if jump != nil {
		nc, err = jump.client.DialContext(ctx, "tcp", hostport)
		if err != nil {
			err = fmt.Errorf("via %s: %w", t.Jump.Name, jump.wrapErr(err))
		}
	} else {
		var d net.Dialer
		nc, err = d.DialContext(ctx, "tcp", hostport)
	}
	if err != nil {
		if ctx.Err() != nil && p.ctx.Err() == nil {
			err = fmt.Errorf("timed out after %s: %w", timeout, err)
		}
		return nil, fail("connect", err)
	}
	counts := &counters{}
	nc = countingConn{Conn: nc, n: counts}
	client, fingerprint, err := p.handshake(ctx, nc, t, hostport)
	if err != nil {
		var hk *HostKeyError
		if errors.As(err, &hk) {
			return nil, hk
		}
		var ce *ConnectError
		if errors.As(err, &ce) {
			return nil, ce
		}
		var netErr net.Error
		if (ctx.Err() != nil && p.ctx.Err() == nil) || (errors.As(err, &netErr) && netErr.Timeout()) {
			err = fmt.Errorf("timed out after %s: %w", timeout, err)
		}
		return nil, fail("handshake", err)
	}
	p.opts.Logf("host %s (%s): connected, host key %s", t.Name, hostport, fingerprint)
	return newConn(t, client, fingerprint, p.opts, counts), nil
}

// handshake runs the SSH handshake over nc within ctx: the conn's deadline
// covers plain TCP, and closing the conn when ctx ends also covers channels
// through a jump host, which take no deadlines.
func (p *Pool) handshake(ctx context.Context, nc net.Conn, t *Target, hostport string) (*ssh.Client, string, error) {
	if deadline, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })

	dataCB, dataFile, err := p.knownHostsData()
	if err != nil {
		stop()
		nc.Close()
		return nil, "", err
	}
	file := t.KnownHosts
	if file == "" {
		file = DefaultKnownHosts
	}
	global := p.opts.GlobalKnownHosts
	if global == "" {
		global = GlobalKnownHosts
	}
	db, err := loadKnownHosts(&p.knownHosts, expandHome(file), global, dataCB, dataFile)
	if err != nil {
		stop()
		nc.Close()
		return nil, "", err
	}
	known, err := db.knownKeys(hostport)
	if err != nil {
		stop()
		nc.Close()
		return nil, "", err
	}
	checker := &hostKeyChecker{host: t.Name, hostport: hostport, db: db,
		acceptNew: p.opts.AcceptNewHostKeys, appendMu: &p.appendMu, logf: p.opts.Logf}
	auth := p.keys.collect(t)
	defer auth.close()
	for _, note := range auth.notes {
		p.opts.Logf("host %s: %s", t.Name, note)
	}
	name := t.User
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	cfg := &ssh.ClientConfig{
		User: name,
		Auth: []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			return auth.signers, nil
		})},
		HostKeyCallback:   checker.callback,
		HostKeyAlgorithms: hostKeyAlgorithms(known),
	}
	cc, chans, reqs, err := ssh.NewClientConn(nc, hostport, cfg)
	if !stop() {
		// ctx ended: the conn is closed, whatever the handshake says.
		if err == nil {
			cc.Close()
		}
		return nil, "", fmt.Errorf("handshake aborted: %w", ctx.Err())
	}
	if err != nil {
		nc.Close()
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, "", &ConnectError{Host: t.Name, Addr: hostport, Stage: "auth",
				Err: fmt.Errorf("user %s: %s: %w", name, auth.describe(), err)}
		}
		return nil, "", err
	}
	_ = nc.SetDeadline(time.Time{})
	return ssh.NewClient(cc, chans, reqs), checker.fingerprint, nil
}
