package remote

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/internal/testenv"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// testCtx returns a context that ends with the test or after 30 s.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newTestPool returns a pool closed at the end of the test, logging to t.
func newTestPool(t *testing.T, opts Options) *Pool {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	p := NewPool(opts)
	t.Cleanup(func() { p.Close() })
	return p
}

// targetFor describes a testenv host with the environment's key and known_hosts.
func targetFor(env *testenv.Env, h *testenv.Host) *Target {
	return &Target{
		Name:           h.Name,
		Address:        h.IP,
		Port:           h.Port,
		User:           env.User,
		IdentityFiles:  []string{env.KeyFile},
		KnownHosts:     env.KnownHosts,
		ConnectTimeout: 10 * time.Second,
	}
}

// connect returns a connection to the first shared host through a fresh pool.
func connect(t *testing.T) (*testenv.Env, *testenv.Host, *Conn) {
	t.Helper()
	env := testenv.Shared(t)
	h := env.Hosts[0]
	c, err := newTestPool(t, Options{}).Get(testCtx(t), targetFor(env, h))
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return env, h, c
}

// writeFile writes content to a new file under the test's temp dir.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// hostPublicKey reads a testenv host's public key from its known_hosts line.
func hostPublicKey(t *testing.T, h *testenv.Host) ssh.PublicKey {
	t.Helper()
	_, _, key, _, _, err := ssh.ParseKnownHosts([]byte(h.KnownHostsLine))
	if err != nil {
		t.Fatalf("parse %q: %v", h.KnownHostsLine, err)
	}
	return key
}

// knownHostsLine renders a known_hosts line for addr ("ip:port").
func knownHostsLine(addr string, key ssh.PublicKey) string {
	return knownhosts.Line([]string{addr}, key) + "\n"
}

// proxy forwards TCP connections to a target address until blackholed, after
// which it silently drops everything in both directions, like a peer that
// vanished without closing its connections.
type proxy struct {
	ln        net.Listener
	to        string
	blackhole atomic.Bool
	mu        sync.Mutex
	conns     []net.Conn
}

// startProxy listens on a free loopback port and forwards to addr until the test ends.
func startProxy(t *testing.T, addr string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, to: addr}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *proxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.to)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

func (p *proxy) pipe(from, to net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 && !p.blackhole.Load() {
			if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// extraSSHD is an sshd started by a test with host keys of several types
// (testenv hosts only have ed25519), to check which key a client negotiates.
type extraSSHD struct {
	addr string
	port int
	keys map[string]ssh.PublicKey // by key type
}

// startMultiKeySSHD starts sshd on a free loopback port with ecdsa, ed25519
// and rsa host keys, accepting env's user key; it is killed when the test ends.
func startMultiKeySSHD(t *testing.T, env *testenv.Env) *extraSSHD {
	t.Helper()
	// sshd reads authorized_keys as the login user: t.TempDir's parent is private.
	dir, err := os.MkdirTemp("", "skiff-remote-sshd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &extraSSHD{keys: map[string]ssh.PublicKey{}}
	var hostKeyLines []string
	for _, typ := range []string{"ecdsa", "ed25519", "rsa"} {
		path := filepath.Join(dir, "host_"+typ)
		args := []string{"-q", "-N", "", "-t", typ, "-f", path}
		if typ == "rsa" {
			args = append(args, "-b", "2048")
		}
		runLocal(t, "ssh-keygen", args...)
		pub, err := os.ReadFile(path + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		key, _, _, _, err := ssh.ParseAuthorizedKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		s.keys[key.Type()] = key
		hostKeyLines = append(hostKeyLines, "HostKey "+path)
	}
	userKey, err := os.ReadFile(env.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(userKey)
	if err != nil {
		t.Fatal(err)
	}
	auth := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(auth, ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	config := strings.Join(append(hostKeyLines,
		"ListenAddress "+s.addr,
		"AuthorizedKeysFile "+auth,
		"AllowUsers "+env.User,
		"PidFile none",
		"StrictModes no",
		"UsePAM no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
	), "\n") + "\n"
	cfg := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	startLocal(t, sshdPath(t), "-D", "-e", "-f", cfg)
	waitListening(t, s.addr)
	return s
}

// waitListening waits until something accepts TCP connections on addr.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort returns a loopback TCP port that nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// loopback formats a 127.0.0.1 address with port.
func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// runLocal runs a local program and fails the test if it fails.
func runLocal(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// startLocal starts a local program that is killed when the test ends.
func startLocal(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
}

// sshdPath finds the sshd binary (testenv has already skipped the test when
// there is none).
func sshdPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("sshd"); err == nil {
		return p
	}
	return "/usr/sbin/sshd"
}
