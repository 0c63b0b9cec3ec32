package supervisor

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
)

// recordingDialer remembers what it was asked to dial and refuses, so New's
// URL handling can be checked without a server.
type recordingDialer struct{ network, addr string }

func (d *recordingDialer) Dial(_ context.Context, network, addr string) (net.Conn, error) {
	d.network, d.addr = network, addr
	return nil, &net.OpError{Op: "dial", Net: network, Err: errRefused}
}

var errRefused = errors.New("connection refused")

func TestNew_URLs(t *testing.T) {
	tests := []struct {
		name        string
		url         string
		wantNetwork string
		wantAddr    string
		wantURL     string
		wantErr     string
	}{
		{name: "unix socket", url: "unix:///var/run/supervisor.sock", wantNetwork: "unix", wantAddr: "/var/run/supervisor.sock", wantURL: "unix:///var/run/supervisor.sock"},
		{name: "http with port", url: "http://127.0.0.1:9001", wantNetwork: "tcp", wantAddr: "127.0.0.1:9001", wantURL: "http://127.0.0.1:9001"},
		{name: "http default port", url: "http://localhost", wantNetwork: "tcp", wantAddr: "localhost:80", wantURL: "http://localhost"},
		{name: "credentials stripped from URL", url: "http://ci:s3cret@127.0.0.1:9001/RPC2", wantNetwork: "tcp", wantAddr: "127.0.0.1:9001", wantURL: "http://127.0.0.1:9001/RPC2"},
		{name: "unix with host", url: "unix://host/sock", wantErr: "must be unix:///absolute/path"},
		{name: "unix without path", url: "unix://", wantErr: "must be unix:///absolute/path"},
		{name: "unix unclean path", url: "unix:///run/../s.sock", wantErr: "must be unix:///absolute/path"},
		{name: "other scheme", url: "ftp://x", wantErr: `must be "unix:///path/to/socket" or "http://host:port"`},
		{name: "http without host", url: "http:///RPC2", wantErr: `must be "unix:///path/to/socket" or "http://host:port"`},
		{name: "unparsable with password", url: "http://u:s3cret@[::1", wantErr: "invalid URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &recordingDialer{}
			c, err := New(d, tc.url, Options{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New() error = %v, want it to contain %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.URL() != tc.wantURL {
				t.Errorf("URL() = %q, want %q", c.URL(), tc.wantURL)
			}
			_, err = c.State(context.Background())
			if err == nil {
				t.Fatal("State() through a refusing dialer succeeded")
			}
			if d.network != tc.wantNetwork || d.addr != tc.wantAddr {
				t.Errorf("dialed %s %s, want %s %s", d.network, d.addr, tc.wantNetwork, tc.wantAddr)
			}
			if want := "supervisord at " + tc.wantURL + ": getState: "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q does not start with %q", err, want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}
