// Package supervisor is a client for supervisord's XML-RPC API that reaches
// supervisord through any dialer.
//
// skiff talks to supervisord on a target host through an SSH connection, so
// the client never dials by itself: it asks a Dialer (declared here, satisfied
// by skiff's SSH connection or by a net.Dialer in tests) for a connection to
// the unix socket or TCP port named by the supervisord URL. Faults keep their
// numeric code (see Fault and IsFault), processes are addressed as
// "group:name", and Restart reports new PIDs or, on failure, why the program
// did not come up.
package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kolo/xmlrpc"
)

// Dialer opens a connection to network/addr ("unix" and a socket path, or
// "tcp" and host:port). It is how the client reaches supervisord: skiff passes
// an SSH connection so the address is resolved on the target host.
type Dialer interface {
	Dial(ctx context.Context, network, addr string) (net.Conn, error)
}

// DialerFunc adapts a plain function, such as (&net.Dialer{}).DialContext, to
// the Dialer interface.
type DialerFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Dial calls f.
func (f DialerFunc) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return f(ctx, network, addr)
}

// Options tunes a Client. The zero value is valid: no authentication and a
// default poll interval.
type Options struct {
	// Username and Password are sent as HTTP basic auth when Username is set.
	// The password never appears in errors.
	Username, Password string
	// PollInterval is how often Start, Stop and Restart look at a process's
	// state while waiting for it to settle. Zero means DefaultPollInterval.
	PollInterval time.Duration
	// CallTimeout bounds each XML-RPC call, whatever the caller's context
	// allows: a supervisord that accepts and never answers fails the call.
	// Zero means DefaultCallTimeout.
	CallTimeout time.Duration
	// DetachLogTail keeps a StartError's log tail in its LogTail field only, out of its message, for
	// callers that show the lines on their own.
	DetachLogTail bool
}

// DefaultCallTimeout bounds one XML-RPC call when Options.CallTimeout is zero.
const DefaultCallTimeout = 30 * time.Second

// DefaultPollInterval is the state polling interval used when
// Options.PollInterval is zero.
const DefaultPollInterval = 100 * time.Millisecond

// maxResponseBytes bounds how much of a response the client reads, so a
// misbehaving endpoint cannot exhaust memory.
const maxResponseBytes = 32 << 20

// ErrAuthFailed is wrapped by errors from calls that supervisord rejected
// with HTTP 401 (missing or wrong username or password).
var ErrAuthFailed = errors.New("authentication failed (401)")

// Client calls supervisord's XML-RPC interface. It is safe for concurrent use;
// calls are not serialised.
type Client struct {
	url       string // display form of the supervisord URL, without credentials
	endpoint  string // URL the HTTP requests are sent to
	username  string
	password  string
	poll      time.Duration
	timeout   time.Duration
	detach    bool // Options.DetachLogTail
	transport *http.Transport
	http      *http.Client
}

// New returns a client for the supervisord at rawURL, reached through d.
// rawURL is either "unix:///path/to/supervisor.sock" (the request goes over
// the socket with Host "localhost" and path /RPC2) or "http://host:port"
// (d dials tcp host:port; the path defaults to /RPC2). Credentials embedded in
// an http URL are used when opts.Username is empty. New does not connect.
func New(d Dialer, rawURL string, opts Options) (*Client, error) {
	if d == nil {
		return nil, errors.New("supervisor: nil dialer")
	}
	a, err := ParseURL(rawURL)
	if err != nil {
		if a.URL != "" {
			return nil, fmt.Errorf("supervisor: URL %s: %w", a.URL, err)
		}
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	c := &Client{username: opts.Username, password: opts.Password, poll: opts.PollInterval, url: a.URL, endpoint: a.Endpoint, detach: opts.DetachLogTail}
	if c.poll <= 0 {
		c.poll = DefaultPollInterval
	}
	if c.timeout = opts.CallTimeout; c.timeout <= 0 {
		c.timeout = DefaultCallTimeout
	}
	if c.username == "" {
		c.username, c.password = a.Username, a.Password
	}
	network, addr := a.Network, a.Addr

	c.transport = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.Dial(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	c.http = &http.Client{Transport: c.transport}
	return c, nil
}

// URL returns the supervisord URL the client talks to, without credentials.
func (c *Client) URL() string { return c.url }

// Close releases idle connections (for skiff, SSH channels) held by the client.
func (c *Client) Close() {
	c.transport.CloseIdleConnections()
}

// fail prefixes err with the supervisord the client talks to.
func (c *Client) fail(err error) error {
	return fmt.Errorf("supervisord at %s: %w", c.url, err)
}

// call invokes method with args and decodes the result into result (which
// may be nil to discard it). Errors name the method and first argument but
// not the supervisord URL; public methods add that with fail.
func (c *Client) call(ctx context.Context, result any, method string, args ...any) error {
	label := strings.TrimPrefix(method, "supervisor.")
	if len(args) > 0 {
		if s, ok := args[0].(string); ok {
			label += " " + s
		}
	}
	if err := c.roundTrip(ctx, result, method, args); err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	return nil
}

func (c *Client) roundTrip(ctx context.Context, result any, method string, args []any) error {
	body, err := xmlrpc.EncodeMethodCall(method, args...)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "text/xml")
	if c.username != "" {
		req.SetBasicAuth(c.username, c.password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error names the internal endpoint (http://localhost/RPC2 for
		// unix sockets), which only confuses; the caller names the real URL.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if len(data) > maxResponseBytes {
		return fmt.Errorf("response larger than %d bytes", maxResponseBytes)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return ErrAuthFailed
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("HTTP %s", resp.Status)
	}
	return decodeResponse(data, result)
}

// redactURLError keeps url.Parse errors from echoing a URL that may carry a
// password.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
