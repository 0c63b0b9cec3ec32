package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Fleet hosts all look alike from the inside, like the servers of a real
// fleet: the same /srv, the same supervisord addresses and app ports.
const (
	// DefaultFleetSubnet is the IPv4 range fleet hosts take their /30
	// networks from when FleetOptions.Subnet is empty.
	DefaultFleetSubnet = "10.231.0.0/16"
	// FleetSupervisorURL is every fleet host's supervisord unix socket, for
	// an inventory's supervisor.url.
	FleetSupervisorURL = "unix:///srv/run/supervisor.sock"
	// FleetSupervisorInetURL is every fleet host's supervisord inet server,
	// on the host's own loopback, when FleetOptions.SupervisorInet is set.
	FleetSupervisorInetURL = "http://127.0.0.1:9001"
)

// FleetWebProgram is a supervisord program, the same on every fleet host, that runs the example app
// (examples/app/server.py) of /srv/web's live release on port 8088 as the login user; it does not start by
// itself and is not retried, so a release that fails shows at once.
const FleetWebProgram = `
[program:web]
command=/usr/bin/python3 /srv/web/current/server.py --port 8088
directory=/srv
user=` + TestUserName + `
autostart=false
startsecs=1
startretries=0
stopasgroup=true
killasgroup=true
`

// FleetOptions configures StartFleet.
type FleetOptions struct {
	// Hosts is the number of hosts, named h1..hN.
	Hosts int
	// Programs is appended verbatim to every host's supervisord
	// configuration: [program:x] and [group:x] sections, the same on every
	// host. Programs run as root unless they say user=; the login user is
	// TestUserName. For example:
	//	[program:web]
	//	command=/usr/bin/python3 /srv/app/current/server.py --port 8088
	//	user=skiff-test
	//	autostart=false
	Programs string
	// SupervisorInet adds supervisord's inet server on 127.0.0.1:9001
	// inside every host (FleetSupervisorInetURL).
	SupervisorInet bool
	// SupervisorUser and SupervisorPassword, when SupervisorUser is set,
	// protect both of supervisord's servers with HTTP basic auth.
	SupervisorUser, SupervisorPassword string
	// NoSupervisord starts sshd alone on every host, which is several
	// times faster: supervisord's start-up is most of a host's. Programs
	// and the Supervisor options are then ignored.
	NoSupervisord bool
	// Subnet is the IPv4 range the hosts' /30 networks come from; empty
	// means DefaultFleetSubnet. It must not overlap a network the machine
	// routes to. Fleets of parallel test binaries share it safely.
	Subnet string
	// Parallel bounds how many hosts start at once; 0 means a default that
	// suits the machine's CPUs.
	Parallel int
}

// StartFleet starts an environment whose hosts each live in a network and
// mount namespace of their own, as doc.go describes under "Fleet mode". The
// caller must Close it. It needs root: without it, or where namespaces are
// forbidden, it returns ErrNoNamespaces; a missing program (ip, unshare,
// nsenter, sshd, supervisord) is ErrMissingTool.
//
// Each host of Env.Hosts has IP = its namespace's address (10.231.x.y),
// Port = 22, and Root = a directory on the test machine whose "srv"
// subdirectory is bind-mounted over /srv inside the host: a file the host
// writes to /srv/app/x is Root+"/srv/app/x" to the test.
func StartFleet(ctx context.Context, opts FleetOptions) (*Env, error) {
	if opts.Hosts < 0 {
		return nil, fmt.Errorf("testenv: negative host count %d", opts.Hosts)
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("testenv: fleet: %w", ErrNoNamespaces)
	}
	tools, err := findFleetTools()
	if err != nil {
		return nil, err
	}
	if opts.Subnet == "" {
		opts.Subnet = DefaultFleetSubnet
	}
	subnet, err := parseFleetSubnet(opts.Subnet)
	if err != nil {
		return nil, err
	}
	if err := checkSubnetFree(subnet.net); err != nil {
		return nil, err
	}
	if strings.ContainsAny(opts.SupervisorUser, "%:\r\n") || strings.ContainsAny(opts.SupervisorPassword, "\r\n") {
		return nil, errors.New("testenv: fleet: SupervisorUser must not contain % : or newlines, SupervisorPassword no newlines")
	}
	return startEnv(ctx, opts.Hosts, func(e *Env) (placement, error) {
		return newFleet(ctx, e, opts, tools, subnet)
	})
}

// Fleet starts a fleet environment for one test and closes it in
// tb.Cleanup. Without root or namespaces, or with a program missing, the
// test is skipped (failed under CI=true, see SkipOrFail).
func Fleet(tb testing.TB, opts FleetOptions) *Env {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := StartFleet(ctx, opts)
	if errors.Is(err, ErrMissingTool) || errors.Is(err, ErrNoNamespaces) {
		SkipOrFail(tb, err.Error())
		return nil
	}
	if err != nil {
		tb.Fatalf("testenv: start fleet: %v", err)
	}
	tb.Cleanup(func() {
		if err := e.Close(); err != nil {
			tb.Errorf("testenv: close fleet: %v", err)
		}
	})
	return e
}

// SupervisorURL returns the URL of the host's supervisord as the host sees
// it (FleetSupervisorURL) for fleet hosts, and "" for hosts without one:
// loopback hosts and fleets started with NoSupervisord.
func (h *Host) SupervisorURL() string {
	if f, ok := h.env.place.(*fleet); ok && f.conf != "" {
		return FleetSupervisorURL
	}
	return ""
}

// Exec returns a command that runs argv where the host lives, as the test
// process's user (root for fleets): for a fleet host, inside the host's
// network and mount namespaces, so that it sees the host's /srv and reaches
// 127.0.0.1:8088 as the host's own programs do; for a loopback host, on the
// test machine. Processes it starts are killed when the host stops. The
// command fails when the host is not running.
func (h *Host) Exec(ctx context.Context, argv ...string) *exec.Cmd {
	if len(argv) == 0 {
		return exec.CommandContext(ctx, "") // Start reports the missing command.
	}
	return h.env.place.command(ctx, h, argv)
}

// fleetTools are the absolute paths of the programs fleets run.
type fleetTools struct {
	ip, unshare, nsenter string
}

func findFleetTools() (fleetTools, error) {
	var t fleetTools
	for _, tool := range []struct {
		name string
		dst  *string
		pkg  string
	}{
		{"ip", &t.ip, "iproute2"},
		{"unshare", &t.unshare, "util-linux"},
		{"nsenter", &t.nsenter, "util-linux"},
	} {
		p, err := exec.LookPath(tool.name)
		if err != nil {
			p = "/usr/sbin/" + tool.name
			if _, serr := os.Stat(p); serr != nil {
				return t, fmt.Errorf("testenv: %s (%s): %w", tool.name, tool.pkg, ErrMissingTool)
			}
		}
		*tool.dst = p
	}
	if _, err := os.Stat(SupervisordBinary); err != nil {
		return t, fmt.Errorf("testenv: %s (supervisor): %w", SupervisordBinary, ErrMissingTool)
	}
	return t, nil
}
