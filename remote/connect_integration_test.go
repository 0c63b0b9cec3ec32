package remote

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiffdeploy/skiff/internal/testenv"
	"golang.org/x/crypto/ssh"
)

// otherKey returns a fresh public key that no host has.
func otherKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func TestGet_HostKeyRefused(t *testing.T) {
	env := testenv.Shared(t)
	h := env.StartHost(t, "hk")
	for _, tc := range []struct {
		name        string
		knownHosts  string
		acceptNew   bool
		wantChanged bool
		wantText    []string
	}{
		{name: "unknown", knownHosts: "", wantText: []string{"host key unknown", "--accept-new-host-keys"}},
		{name: "changed", knownHosts: knownHostsLine(h.Addr, otherKey(t)), wantChanged: true, wantText: []string{"CHANGED", ":1"}},
		{name: "changed with accept-new", knownHosts: knownHostsLine(h.Addr, otherKey(t)), acceptNew: true, wantChanged: true, wantText: []string{"CHANGED"}},
		{name: "other port only", knownHosts: knownHostsLine(loopback(22), hostPublicKey(t, h)), wantText: []string{"unknown"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeFile(t, "known_hosts", tc.knownHosts)
			target := targetFor(env, h)
			target.KnownHosts = file
			_, err := newTestPool(t, Options{AcceptNewHostKeys: tc.acceptNew}).Get(testCtx(t), target)
			var hk *HostKeyError
			if !errors.As(err, &hk) {
				t.Fatalf("err = %v, want *HostKeyError", err)
			}
			if !IsConnectError(err) || hk.Changed != tc.wantChanged {
				t.Errorf("IsConnectError %v, Changed %v", IsConnectError(err), hk.Changed)
			}
			msg := err.Error()
			for _, want := range append(tc.wantText, h.HostKeyFingerprint, "host hk ("+h.Addr+")") {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
			if after, _ := os.ReadFile(file); string(after) != tc.knownHosts {
				t.Errorf("known_hosts was modified to %q", after)
			}
		})
	}
}

func TestGet_AcceptNewHostKey(t *testing.T) {
	env := testenv.Shared(t)
	h := env.StartHost(t, "new")
	file := writeFile(t, "known_hosts", "# comment without newline")
	target := targetFor(env, h)
	target.KnownHosts = file
	c, err := newTestPool(t, Options{AcceptNewHostKeys: true}).Get(testCtx(t), target)
	if err != nil {
		t.Fatalf("Get with accept-new: %v", err)
	}
	if c.HostKeyFingerprint() != h.HostKeyFingerprint {
		t.Errorf("fingerprint %s, want %s", c.HostKeyFingerprint(), h.HostKeyFingerprint)
	}
	data, _ := os.ReadFile(file)
	if want := "# comment without newline\n" + knownHostsLine(h.Addr, hostPublicKey(t, h)); string(data) != want {
		t.Errorf("known_hosts = %q, want %q", data, want)
	}
	// A pool that does not accept new keys now trusts the recorded one.
	if _, err := newTestPool(t, Options{}).Get(testCtx(t), target); err != nil {
		t.Errorf("Get after accept-new: %v", err)
	}
}

func TestGet_KnownHostsData(t *testing.T) {
	env := testenv.Shared(t)
	h := env.Hosts[0]
	target := targetFor(env, h)
	target.KnownHosts = ""
	pool := newTestPool(t, Options{KnownHostsData: []byte(h.KnownHostsLine + "\n")})
	if _, err := pool.Get(testCtx(t), target); err != nil {
		t.Fatalf("Get: %v", err)
	}
}

func TestGet_NegotiatesTheKnownKeyType(t *testing.T) {
	env := testenv.Shared(t)
	s := startMultiKeySSHD(t, env)
	for _, typ := range []string{ssh.KeyAlgoED25519, ssh.KeyAlgoRSA, ssh.KeyAlgoECDSA256} {
		t.Run(typ, func(t *testing.T) {
			key := s.keys[typ]
			target := &Target{Name: "multi", Address: "127.0.0.1", Port: s.port, User: env.User,
				IdentityFiles: []string{env.KeyFile},
				KnownHosts:    writeFile(t, "known_hosts", knownHostsLine(s.addr, key))}
			c, err := newTestPool(t, Options{}).Get(testCtx(t), target)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got, want := c.HostKeyFingerprint(), ssh.FingerprintSHA256(key); got != want {
				t.Errorf("fingerprint %s, want %s", got, want)
			}
		})
	}
}

func TestGet_Auth(t *testing.T) {
	env := testenv.Shared(t)
	h := env.Hosts[0]
	userKey, err := os.ReadFile(env.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	stranger := filepath.Join(dir, "stranger")
	runLocal(t, "ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", stranger)
	// The user key, encrypted with a passphrase.
	encrypted := filepath.Join(dir, "encrypted")
	if err := os.WriteFile(encrypted, userKey, 0o600); err != nil {
		t.Fatal(err)
	}
	runLocal(t, "ssh-keygen", "-q", "-p", "-N", "s3cret", "-f", encrypted)
	agentSock := startAgent(t, env.KeyFile)
	for _, tc := range []struct {
		name      string
		files     []string
		opts      Options
		wantStage string
	}{
		{name: "key pem", opts: Options{KeyPEM: userKey}},
		{name: "missing file then good file", files: []string{"/nonexistent/id", env.KeyFile}},
		{name: "agent after unauthorized file", files: []string{stranger}, opts: Options{AgentSocket: agentSock}},
		{name: "encrypted with passphrase", files: []string{encrypted}, opts: Options{Passphrase: []byte("s3cret")}},
		{name: "encrypted without passphrase", files: []string{encrypted}, wantStage: "auth"},
		{name: "unauthorized key", files: []string{stranger}, wantStage: "auth"},
		{name: "no keys", files: []string{"/nonexistent/id"}, wantStage: "auth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := targetFor(env, h)
			target.IdentityFiles = tc.files
			_, err := newTestPool(t, tc.opts).Get(testCtx(t), target)
			if tc.wantStage == "" {
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				return
			}
			var ce *ConnectError
			if !errors.As(err, &ce) || ce.Stage != tc.wantStage {
				t.Fatalf("err = %v, want ConnectError at stage %s", err, tc.wantStage)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error %q shows the passphrase", err)
			}
		})
	}
}

// startAgent starts a real ssh-agent holding keyFile and returns its socket.
func startAgent(t *testing.T, keyFile string) string {
	t.Helper()
	if _, err := exec.LookPath("ssh-agent"); err != nil {
		testenv.SkipOrFail(t, "ssh-agent not installed")
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	startLocal(t, "ssh-agent", "-D", "-a", sock)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ssh-agent did not create its socket")
		}
		time.Sleep(10 * time.Millisecond)
	}
	add := exec.Command("ssh-add", keyFile)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v\n%s", err, out)
	}
	return sock
}

func TestGet_ConnectFailures(t *testing.T) {
	env := testenv.Shared(t)
	// A listener that accepts and never speaks: the handshake must time out.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	for _, tc := range []struct {
		name, addr string
		wantStage  string
		wantText   string
	}{
		{name: "refused", addr: loopback(freePort(t)), wantStage: "connect", wantText: "refused"},
		{name: "silent", addr: silent.Addr().String(), wantStage: "handshake", wantText: "timed out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host, port, _ := net.SplitHostPort(tc.addr)
			target := targetFor(env, env.Hosts[0])
			target.Address = host
			target.Port, _ = strconv.Atoi(port)
			target.ConnectTimeout = 300 * time.Millisecond
			_, err := newTestPool(t, Options{}).Get(testCtx(t), target)
			var ce *ConnectError
			if !errors.As(err, &ce) || ce.Stage != tc.wantStage || !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("err = %v, want ConnectError at stage %s saying %q", err, tc.wantStage, tc.wantText)
			}
		})
	}
}

func TestGet_JumpHost(t *testing.T) {
	env := testenv.Shared(t)
	jump := targetFor(env, env.Hosts[1])
	target := targetFor(env, env.Hosts[2])
	target.Jump = jump
	pool := newTestPool(t, Options{})
	c, err := pool.Get(testCtx(t), target)
	if err != nil {
		t.Fatalf("Get through jump: %v", err)
	}
	if _, err := c.Run(testCtx(t), Command{Argv: []string{"true"}}); err != nil {
		t.Fatalf("Run through jump: %v", err)
	}
	jc, err := pool.Get(testCtx(t), jump)
	if err != nil {
		t.Fatal(err)
	}
	// The target's connection rides on the shared jump connection: closing
	// the latter ends the former.
	jc.Close()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("target connection survived the jump connection")
	}
	if c2, err := pool.Get(testCtx(t), target); err != nil || c2 == c {
		t.Fatalf("Get after the connection ended: %v (same conn: %v)", err, c2 == c)
	}
}

func TestGet_JumpHostRefused(t *testing.T) {
	env := testenv.Shared(t)
	jump := targetFor(env, env.Hosts[1])
	jump.KnownHosts = writeFile(t, "known_hosts", "")
	target := targetFor(env, env.Hosts[2])
	target.Jump = jump
	_, err := newTestPool(t, Options{}).Get(testCtx(t), target)
	var ce *ConnectError
	var hk *HostKeyError
	if !errors.As(err, &ce) || ce.Stage != "jump" || !errors.As(err, &hk) || hk.Host != jump.Name {
		t.Fatalf("err = %v, want a jump ConnectError wrapping the jump host's HostKeyError", err)
	}
}

func TestKeepalive_ClosesDeadConnection(t *testing.T) {
	env := testenv.Shared(t)
	h := env.StartHost(t, "ka")
	p := startProxy(t, h.Addr)
	target := targetFor(env, h)
	target.Address, target.Port = "127.0.0.1", p.port()
	target.Keepalive = 200 * time.Millisecond
	target.KnownHosts = writeFile(t, "known_hosts", knownHostsLine(p.addr(), hostPublicKey(t, h)))
	c, err := newTestPool(t, Options{}).Get(testCtx(t), target)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(testCtx(t), Command{Script: "echo started; exec sleep 30", Stdout: func(string) { close(started) }})
		done <- err
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("Run ended before the connection died: %v", err)
	}
	p.blackhole.Store(true)
	select {
	case err := <-done:
		if !errors.Is(err, ErrConnectionLost) || !strings.Contains(err.Error(), "host ka: connection lost (keepalive)") {
			t.Fatalf("Run error = %v, want connection lost", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still waiting on a dead connection")
	}
	if _, err := c.Run(testCtx(t), Command{Argv: []string{"true"}}); !errors.Is(err, ErrConnectionLost) {
		t.Errorf("Run on the lost connection: %v", err)
	}
}

func TestKeepalive_IdleConnectionStays(t *testing.T) {
	env := testenv.Shared(t)
	target := targetFor(env, env.Hosts[0])
	target.Keepalive = 150 * time.Millisecond
	c, err := newTestPool(t, Options{}).Get(testCtx(t), target)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	time.Sleep(750 * time.Millisecond) // five intervals, each answered
	if _, err := c.Run(testCtx(t), Command{Argv: []string{"true"}}); err != nil {
		t.Fatalf("Run after idling: %v", err)
	}
}

func TestPool_Release_ClosesUnlessAnotherGoesThrough(t *testing.T) {
	env := testenv.Shared(t)
	jump := targetFor(env, env.Hosts[1])
	target := targetFor(env, env.Hosts[2])
	target.Jump = jump
	pool := newTestPool(t, Options{})
	c, err := pool.Get(testCtx(t), target)
	if err != nil {
		t.Fatalf("Get through jump: %v", err)
	}
	jc, err := pool.Get(testCtx(t), jump)
	if err != nil {
		t.Fatal(err)
	}
	pool.Release(jump)
	if jc.isClosed() || c.isClosed() {
		t.Fatal("releasing the jump host closed it while a connection goes through it")
	}
	pool.Release(target)
	if !c.isClosed() {
		t.Fatal("the released connection is still open")
	}
	pool.Release(jump)
	if !jc.isClosed() {
		t.Fatal("the jump host, released once nothing goes through it, is still open")
	}
	c2, err := pool.Get(testCtx(t), target)
	if err != nil || c2 == c {
		t.Fatalf("Get after Release: %v (same conn: %v)", err, c2 == c)
	}
	if _, err := c2.Run(testCtx(t), Command{Argv: []string{"true"}}); err != nil {
		t.Fatalf("Run on the new connection: %v", err)
	}
}
