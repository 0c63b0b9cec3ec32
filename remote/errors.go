package remote

import (
	"errors"
	"fmt"
)

// ErrConnectionLost is wrapped by the errors of operations that were waiting on
// a connection that keepalive found dead.
var ErrConnectionLost = errors.New("connection lost (keepalive)")

// HostKeyError refuses a host whose key is not in known_hosts (unknown) or
// differs from the one recorded there (changed). The CLI maps it to exit code 4.
type HostKeyError struct {
	Host, Addr string
	// KeyType and Fingerprint describe the key the host presented.
	KeyType, Fingerprint string
	// KnownHostsFile is where the key should be added (unknown), or where the
	// old key was found, with its line number (changed).
	KnownHostsFile string
	// Changed is true when known_hosts holds other keys for this host.
	Changed bool
	// Revoked is true when the presented key is marked @revoked.
	Revoked bool
}

// Error names the presented key's fingerprint and says what to do.
func (e *HostKeyError) Error() string {
	key := e.KeyType + " " + e.Fingerprint
	prefix := fmt.Sprintf("host %s (%s): ", e.Host, e.Addr)
	switch {
	case e.Revoked:
		return prefix + fmt.Sprintf("host key REVOKED (%s) in %s; refusing to connect", key, e.KnownHostsFile)
	case e.Changed:
		return prefix + fmt.Sprintf("host key CHANGED (now %s; known key at %s); refusing to connect: "+
			"this may be a man-in-the-middle attack, or the host was reinstalled (then remove the old line)",
			key, e.KnownHostsFile)
	default:
		file := e.KnownHostsFile
		if file == "" {
			file = "~/.ssh/known_hosts"
		}
		return prefix + fmt.Sprintf("host key unknown (%s); add it to %s or run with --accept-new-host-keys", key, file)
	}
}

// ConnectError reports a host that could not be reached or authenticated.
// Stage is "connect", "handshake", "auth" or "jump". The CLI maps it to exit code 4.
type ConnectError struct {
	Host, Addr string
	Stage      string
	Err        error
}

// Error names the host, its address and the stage that failed.
func (e *ConnectError) Error() string {
	return fmt.Sprintf("host %s (%s): %s: %v", e.Host, e.Addr, e.Stage, e.Err)
}

// Unwrap returns the underlying error.
func (e *ConnectError) Unwrap() error { return e.Err }

// IsConnectError reports whether err, or any error it wraps, is a
// *HostKeyError or a *ConnectError: the host was unreachable, refused our
// credentials, or could not be trusted.
func IsConnectError(err error) bool {
	var hk *HostKeyError
	var ce *ConnectError
	return errors.As(err, &hk) || errors.As(err, &ce)
}
