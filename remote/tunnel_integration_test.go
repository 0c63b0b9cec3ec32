package remote

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serveEcho answers every connection on ln with "echo: " and the first line it reads.
func serveEcho(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			line, _ := bufio.NewReader(c).ReadString('\n')
			io.WriteString(c, "echo: "+line)
		}()
	}
}

func TestDial_TargetSide(t *testing.T) {
	_, h, c := connect(t)
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	go serveEcho(tcp)
	sock := filepath.Join(h.Root, fmt.Sprintf("echo-%d.sock", time.Now().UnixNano()))
	unix, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close()
	if err := os.Chmod(sock, 0o777); err != nil { // sshd connects as the login user
		t.Fatal(err)
	}
	go serveEcho(unix)

	for _, tc := range []struct{ name, network, addr string }{
		{name: "tcp", network: "tcp", addr: tcp.Addr().String()},
		{name: "unix", network: "unix", addr: sock},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := c.Dial(testCtx(t), tc.network, tc.addr)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer nc.Close()
			if _, err := io.WriteString(nc, "hello\n"); err != nil {
				t.Fatal(err)
			}
			got, err := bufio.NewReader(nc).ReadString('\n')
			if err != nil || got != "echo: hello\n" {
				t.Fatalf("read %q, %v", got, err)
			}
		})
	}
}

func TestDial_Refused(t *testing.T) {
	_, _, c := connect(t)
	for _, tc := range []struct{ name, network, addr string }{
		{name: "tcp", network: "tcp", addr: loopback(freePort(t))},
		{name: "unix", network: "unix", addr: "/nonexistent/skiff.sock"},
		{name: "bad network", network: "udp", addr: "127.0.0.1:53"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if nc, err := c.Dial(testCtx(t), tc.network, tc.addr); err == nil {
				nc.Close()
				t.Fatal("Dial succeeded")
			} else if !strings.Contains(err.Error(), "host h1") {
				t.Errorf("error %q does not name the host", err)
			}
		})
	}
}

func TestWaitPort_AcceptsOnceListening(t *testing.T) {
	_, _, c := connect(t)
	port := freePort(t)
	ready := make(chan net.Listener, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		ln, err := net.Listen("tcp", loopback(port))
		if err != nil {
			ready <- nil
			return
		}
		go serveEcho(ln)
		ready <- ln
	}()
	err := c.WaitPort(testCtx(t), "tcp", loopback(port), 50*time.Millisecond)
	if ln := <-ready; ln != nil {
		defer ln.Close()
	} else {
		t.Skip("port was taken meanwhile")
	}
	if err != nil {
		t.Fatalf("WaitPort: %v", err)
	}
}

func TestWaitPort_Deadline(t *testing.T) {
	_, _, c := connect(t)
	addr := loopback(freePort(t))
	ctx, cancel := context.WithTimeout(testCtx(t), 400*time.Millisecond)
	defer cancel()
	err := c.WaitPort(ctx, "tcp", addr, 50*time.Millisecond)
	if err == nil {
		t.Fatal("WaitPort succeeded on a closed port")
	}
	for _, want := range []string{addr, "not accepting connections", "Connection refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if ctx.Err() == nil {
		t.Error("WaitPort returned before its deadline")
	}
}
