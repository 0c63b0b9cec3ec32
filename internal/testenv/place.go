package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
)

// placement decides where a host listens and how its daemons are started.
// The loopback placement gives each host a 127.0.0.N address and a free port
// and starts daemons as plain children of the test process; the fleet
// placement (fleet.go) gives each host its own network and mount namespace,
// address and port 22 instead.
type placement interface {
	// listenAddr picks the address and port for the index-th host.
	listenAddr(index int) (ip string, port int, err error)
	// boot returns the command that starts the host: argv is sshd's
	// command line, which must end up running in the started process.
	boot(h *Host, argv []string) *exec.Cmd
	// command returns a command that runs argv where the running host lives.
	command(ctx context.Context, h *Host, argv []string) *exec.Cmd
	// close releases what listenAddr set up, once every host has stopped.
	close() error
}

// loopback is the placement on the test machine's own loopback interface.
type loopback struct{}

func (loopback) listenAddr(index int) (string, int, error) {
	ip := fmt.Sprintf("127.0.%d.%d", index/250, index%250+2)
	port, err := freePort(ip)
	if err == nil {
		return ip, port, nil
	}
	port, err2 := freePort("127.0.0.1")
	if err2 != nil {
		return "", 0, fmt.Errorf("testenv: no free port: %w", errors.Join(err, err2))
	}
	return "127.0.0.1", port, nil
}

func (loopback) boot(_ *Host, argv []string) *exec.Cmd {
	return exec.Command(argv[0], argv[1:]...)
}

func (loopback) command(ctx context.Context, _ *Host, argv []string) *exec.Cmd {
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}

func (loopback) close() error { return nil }

// freePort asks the kernel for a port that is free on ip right now.
func freePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
