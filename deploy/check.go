package deploy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/skiffdeploy/skiff/inventory"
)

// dialer reaches TCP ports and unix sockets from the target's side of the connection.
type dialer interface {
	Dial(ctx context.Context, network, addr string) (net.Conn, error)
}

// portWaiter is a dialer that can also poll a port until it accepts.
type portWaiter interface {
	dialer
	WaitPort(ctx context.Context, network, addr string, interval time.Duration) error
}

// checkInterval is how often ports and the HTTP check are retried until the check's timeout.
const checkInterval = 200 * time.Millisecond

// CheckApp proves the app answers from the target's point of view: every check port accepts a connection on
// the target's loopback and, when set, the HTTP URL answers 2xx. Everything must pass within chk.Timeout.
func CheckApp(ctx context.Context, c portWaiter, chk inventory.Check) error {
	timeout := chk.Timeout.Duration
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, p := range chk.Ports {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		if err := c.WaitPort(ctx, "tcp", addr, checkInterval); err != nil {
			return fmt.Errorf("check: port %d does not accept connections on the target within %s: %w", p, timeout, err)
		}
	}
	if chk.HTTP != "" {
		if err := waitHTTP(ctx, c, chk.HTTP); err != nil {
			return fmt.Errorf("check: %s: %w (timeout %s)", chk.HTTP, err, timeout)
		}
	}
	return nil
}

// checkPlan says what CheckApp checks, for a dry run.
func checkPlan(chk inventory.Check) string {
	var parts []string
	if len(chk.Ports) > 0 {
		parts = append(parts, fmt.Sprintf("that ports %v accept connections on the target", chk.Ports))
	}
	if chk.HTTP != "" {
		parts = append(parts, fmt.Sprintf("that %s answers 2xx", chk.HTTP))
	}
	return "check " + strings.Join(parts, " and ")
}

// waitHTTP polls url through the connection until it answers 2xx or ctx ends, and reports the last answer.
func waitHTTP(ctx context.Context, d dialer, url string) error {
	client := &http.Client{
		Transport: &http.Transport{DialContext: d.Dial, DisableKeepAlives: true},
		Timeout:   5 * time.Second,
	}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode >= 200 && resp.StatusCode < 300 {
				return nil
			}
			err = fmt.Errorf("answered %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return last
		case <-time.After(checkInterval):
		}
	}
}
