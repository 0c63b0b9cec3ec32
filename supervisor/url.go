package supervisor

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"strings"
)

// Address is a supervisord URL taken apart: where to dial and what to request.
type Address struct {
	// Network and Addr are what to dial: "unix" and the socket's path, or "tcp" and host:port.
	Network, Addr string
	// Endpoint is the XML-RPC URL requested over that connection.
	Endpoint string
	// URL is the URL without credentials, for messages.
	URL string
	// Username and Password are credentials embedded in an http URL ("" when there are none).
	Username, Password string
}

// Errors of ParseURL, worded to follow the URL in a message.
var (
	errUnixPath = errors.New("must be unix:///absolute/path/to/socket")
	errScheme   = errors.New(`must be "unix:///path/to/socket" or "http://host:port"`)
)

// ParseURL is the one parser of supervisord addresses, used by the inventory to validate, by the client to
// connect and by `skiff check` to probe: "unix:///absolute/socket" (requested as http://localhost/RPC2) or
// "http(s)://[user:pass@]host[:port][/path]" (the port defaults to the scheme's, the path to /RPC2). An
// error comes with the URL (without credentials) when it could be parsed at all, and never shows a password.
func ParseURL(raw string) (Address, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Address{}, fmt.Errorf("invalid URL: %w", err)
	}
	a := Address{}
	if u.User != nil {
		a.Username = u.User.Username()
		a.Password, _ = u.User.Password()
		u.User = nil
	}
	a.URL = u.String()
	switch u.Scheme {
	case "unix":
		p := u.Path
		if u.Host != "" || !strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "/" {
			return Address{URL: a.URL}, errUnixPath
		}
		a.Network, a.Addr, a.Endpoint = "unix", p, "http://localhost/RPC2"
	case "http", "https":
		if u.Hostname() == "" {
			return Address{URL: a.URL}, errScheme
		}
		a.Network, a.Addr = "tcp", u.Host
		if u.Port() == "" {
			port := "80"
			if u.Scheme == "https" {
				port = "443"
			}
			a.Addr = net.JoinHostPort(u.Hostname(), port)
		}
		if u.Path == "" || u.Path == "/" {
			u.Path = "/RPC2"
		}
		a.Endpoint = u.String()
	default:
		return Address{URL: a.URL}, errScheme
	}
	return a, nil
}
